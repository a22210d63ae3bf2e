import ipaddress
import socket

import httpx
from django.conf import settings


class WebhookRefused(Exception):
    """The endpoint's address is not one we send to."""


def address_check(url: str) -> None:
    """Refuses URLs whose host resolves to a non-public address (unless allowed). Checked at
    each send, since DNS answers change."""
    if settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
        return
    parts = httpx.URL(url)
    if parts.scheme not in ("http", "https"):
        raise WebhookRefused(f"scheme {parts.scheme!r} is not http(s)")
    try:
        infos = socket.getaddrinfo(parts.host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise WebhookRefused(f"cannot resolve {parts.host}: {exc}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global:
            raise WebhookRefused(f"{parts.host} resolves to a non-public address ({address})")
