"""Sending due deliveries: claimed in a short transaction, POSTed signed, retried with backoff
for about a day. Each request carries ``Webhook-Id`` (the delivery id, for the receiver's
dedup), ``Webhook-Timestamp`` (unix seconds) and ``Webhook-Signature`` (see signing.py)."""

import contextlib
import time
from datetime import timedelta

import httpx
import orjson
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .addresses import Destination, Resolver, destination_resolve, host_resolve
from .models import WebhookDelivery
from .signing import signature

# Waits after attempts 1, 2, ...: about a day in all, then the delivery is failed.
RETRY_SCHEDULE = [
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=2),
    timedelta(hours=4),
    timedelta(hours=8),
    timedelta(hours=8),
]
LEASE = timedelta(minutes=2)  # a claimed delivery is retried if its sender dies mid-request


def webhook_deliveries_claim(*, limit: int) -> list[WebhookDelivery]:
    """Due deliveries of active endpoints, leased to this sender (a short transaction: no lock
    while sending). The attempt is counted here, so a send cut off mid-request still counts,
    and a delivery whose attempts are all spent fails instead of being sent again."""
    with transaction.atomic():
        due = list(
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                status=WebhookDelivery.Status.PENDING,
                next_attempt_at__lte=timezone.now(),
                endpoint__active=True,
            )
            .select_related("endpoint")
            .order_by("next_attempt_at")[:limit]
        )
        spent = [d.pk for d in due if d.attempts >= len(RETRY_SCHEDULE) + 1]
        if spent:
            WebhookDelivery.objects.filter(pk__in=spent).update(
                status=WebhookDelivery.Status.FAILED
            )
        due = [d for d in due if d.pk not in spent]
        if due:
            WebhookDelivery.objects.filter(pk__in=[d.pk for d in due]).update(
                next_attempt_at=timezone.now() + LEASE, attempts=F("attempts") + 1
            )
            for delivery in due:
                delivery.attempts += 1
    return due


class Clients:
    """The HTTP clients of one batch, one per host name. Requests name an address, so a client
    pools connections by address: shared, it could send one host's request down a TLS
    connection whose certificate was checked for another host at that address."""

    def __init__(self) -> None:
        self._ssl_context = httpx.create_ssl_context()  # loading the CAs: once per batch
        self._clients: dict[str, httpx.Client] = {}

    def for_host(self, host: str) -> httpx.Client:
        if host not in self._clients:
            # No proxies from the environment: a proxy would resolve the name again, past the
            # address check, and NO_PROXY would match the address instead of the name.
            self._clients[host] = httpx.Client(
                timeout=settings.WEBHOOK_TIMEOUT_SECONDS, verify=self._ssl_context, trust_env=False
            )
        return self._clients[host]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


def webhook_delivery_send(
    *, delivery: WebhookDelivery, clients: Clients, resolve: Resolver = host_resolve
) -> bool:
    body = orjson.dumps(delivery.payload)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "CampaignRewards-Webhooks/1",
        "Webhook-Id": str(delivery.id),
        "Webhook-Timestamp": str(timestamp),
        "Webhook-Signature": " ".join(
            signature(secret, timestamp, body)
            for secret in delivery.endpoint.signing_secrets(timezone.now())
        ),
    }
    started = time.monotonic()
    try:
        destination = destination_resolve(url=delivery.endpoint.url, resolve=resolve)
        client = clients.for_host(destination.host)
        status_code, text = _post(client, destination, body, headers, started)
        delivery.last_status_code = status_code
        ok = 200 <= status_code < 300
        delivery.last_error = "" if ok else text[:500]
    except Exception as exc:  # any failure to deliver is this delivery's, not the batch's
        delivery.last_status_code = None
        delivery.last_error = f"{type(exc).__name__}: {exc}"[:500]
        ok = False
    now = timezone.now()
    delivery.history = [
        *delivery.history,
        {
            "at": now.isoformat(),
            "status_code": delivery.last_status_code,
            "error": delivery.last_error[:200],
            "ms": round((time.monotonic() - started) * 1000),
        },
    ]
    if ok:
        delivery.status, delivery.delivered_at = WebhookDelivery.Status.SUCCEEDED, now
    elif delivery.attempts > len(RETRY_SCHEDULE):
        delivery.status = WebhookDelivery.Status.FAILED
    else:
        delivery.next_attempt_at = now + RETRY_SCHEDULE[delivery.attempts - 1]
    delivery.save(
        update_fields=[
            "attempts",
            "status",
            "delivered_at",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "history",
        ]
    )
    return ok


_MAX_RESPONSE_BYTES = 2048


def _post(client: httpx.Client, destination: Destination, body, headers, started: float):
    """POSTs to the first checked address that takes the connection (IPv6 then IPv4, say)."""
    deadline = started + 2 * settings.WEBHOOK_TIMEOUT_SECONDS
    headers = {**headers, "Host": destination.host_header}
    *others, last = destination.addresses
    for address in others:
        try:
            return _post_to(client, destination, address, body, headers, deadline)
        except (httpx.ConnectError, httpx.ConnectTimeout):  # nothing was sent: try the next
            if time.monotonic() > deadline:
                raise
    return _post_to(client, destination, last, body, headers, deadline)


def _post_to(client, destination: Destination, address, body, headers, deadline: float):
    """Reads at most 2 KB of the answer, and gives up on a receiver that trickles it past the
    deadline (httpx's timeouts bound each read, not the whole response)."""
    with client.stream(
        "POST",
        destination.url_at(address),
        content=body,
        headers=headers,
        extensions={"sni_hostname": destination.host},  # TLS: also the certificate's name
    ) as response:
        read = b""
        for chunk in response.iter_bytes():
            read += chunk
            if len(read) >= _MAX_RESPONSE_BYTES:
                break
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout("the receiver took too long to answer")
        return response.status_code, read[:_MAX_RESPONSE_BYTES].decode(errors="replace")


def webhook_deliveries_send_due(*, limit: int = 100, resolve: Resolver = host_resolve) -> int:
    """Sends what is due; returns how many were attempted. ``resolve``: host name lookups."""
    due = webhook_deliveries_claim(limit=limit)
    if due:
        with contextlib.closing(Clients()) as clients:
            for delivery in due:
                webhook_delivery_send(delivery=delivery, clients=clients, resolve=resolve)
    return len(due)
