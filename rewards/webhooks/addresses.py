"""The address check. A webhook's host is resolved once per send and every address checked;
the request then goes to a checked address, never resolving the name again (a second lookup
could answer differently: DNS rebinding). The receiver still sees its own name: in the Host
header, in TLS's server name (SNI), and the certificate is verified against it."""

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from django.conf import settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str], list[str]]  # a host name -> its addresses, as text

_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # addresses that stand for IPv4 ones


class WebhookRefused(Exception):
    """The endpoint's address is not one we send to."""


def host_resolve(host: str) -> list[str]:
    return [info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)]


@dataclass(frozen=True)
class Destination:
    url: httpx.URL
    addresses: tuple[Address, ...]  # checked, in the resolver's order of preference

    @property
    def host(self) -> str:
        return self.url.raw_host.decode("ascii")

    @property
    def host_header(self) -> str:
        return self.url.netloc.decode("ascii")

    def url_at(self, address: Address) -> httpx.URL:
        return self.url.copy_with(host=str(address))


def destination_resolve(*, url: str, resolve: Resolver = host_resolve) -> Destination:
    """Resolves the URL's host once. Unless WEBHOOK_ALLOW_PRIVATE_ADDRESSES is set, refuses it
    if any address is loopback, private, link-local or otherwise not public."""
    parts = httpx.URL(url)
    if parts.scheme not in ("http", "https"):
        raise WebhookRefused(f"scheme {parts.scheme!r} is not http(s)")
    host = parts.raw_host.decode("ascii")
    try:
        answers = resolve(host)
    except OSError as exc:
        raise WebhookRefused(f"cannot resolve {host}: {exc}") from exc
    addresses = tuple(dict.fromkeys(ipaddress.ip_address(a.split("%")[0]) for a in answers))
    if not addresses:
        raise WebhookRefused(f"cannot resolve {host}: no address")
    if not settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
        for address in addresses:
            if not _public(address):
                raise WebhookRefused(f"{host} resolves to a non-public address ({address})")
    return Destination(url=parts, addresses=addresses)


def _public(address: Address) -> bool:
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    elif address in _NAT64:
        address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.is_global
