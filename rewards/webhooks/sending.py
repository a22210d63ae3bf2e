"""Sending due deliveries: claimed in a short transaction, POSTed signed, retried with backoff
for about a day. Each request carries ``Webhook-Id`` (the delivery id, for the receiver's
dedup), ``Webhook-Timestamp`` (unix seconds) and ``Webhook-Signature`` (see signing.py).

A claim is a lease: the delivery's ``attempts`` and ``next_attempt_at`` as the claim left them.
Each delivery of a batch is leased again right before it is sent, and its outcome written, only
while that claim holds: once a lease has run out another sender may claim the delivery (which
changes both), and the first sender then neither sends it nor overwrites what the other wrote.
"""

import contextlib
import logging
import time
from datetime import timedelta

import httpx
import orjson
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from config.logs import events_logged
from config.metrics import webhook_failed

from .addresses import Destination, Resolver, destination_resolve, host_resolve
from .models import WebhookDelivery, WebhookEndpoint
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
logger = logging.getLogger(__name__)


def _lease() -> timedelta:
    """How long a claimed delivery is this sender's; then another sender may claim it (its
    sender may have died mid-request). Longer than a send (see webhook_delivery_send)."""
    return timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)


def webhook_deliveries_claim(*, limit: int) -> list[WebhookDelivery]:
    """Due deliveries of active endpoints, leased to this sender (a short transaction: no lock
    while sending). The attempt is counted here, so a send cut off mid-request still counts,
    and a delivery whose attempts are all spent fails instead of being sent again. A delivery
    its endpoint no longer receives (the event type or the mode was dropped since it was
    written) is cancelled; those of a disabled endpoint wait until it is enabled again."""
    now = timezone.now()
    with transaction.atomic():
        due = list(
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                status=WebhookDelivery.Status.PENDING,
                next_attempt_at__lte=now,
                endpoint__active=True,
            )
            .select_related("endpoint")
            .order_by("next_attempt_at")[:limit]
        )
        unwanted = {d.pk: reason for d in due if (reason := _unwanted(d))}
        for pk, reason in unwanted.items():
            WebhookDelivery.objects.filter(pk=pk).update(
                status=WebhookDelivery.Status.CANCELLED, last_error=reason
            )
        due = [d for d in due if d.pk not in unwanted]
        spent = [d.pk for d in due if d.attempts >= len(RETRY_SCHEDULE) + 1]
        if spent:
            WebhookDelivery.objects.filter(pk__in=spent).update(
                status=WebhookDelivery.Status.FAILED
            )
        due = [d for d in due if d.pk not in spent]
        if due:
            leased_until = now + _lease()
            WebhookDelivery.objects.filter(pk__in=[d.pk for d in due]).update(
                next_attempt_at=leased_until, attempts=F("attempts") + 1
            )
            for delivery in due:
                delivery.attempts += 1
                delivery.next_attempt_at = leased_until
    return due


def _unwanted(delivery: WebhookDelivery) -> str:
    """Why the delivery's endpoint no longer receives it; "" if it does."""
    endpoint = delivery.endpoint
    if delivery.event_type not in endpoint.event_types:
        return f"Cancelled: the endpoint no longer receives {delivery.event_type}"
    if not WebhookEndpoint.receives(endpoint.modes, delivery.mode):
        return (
            f"Cancelled: a {delivery.mode} delivery, and the endpoint hears "
            f"{endpoint.get_modes_display()}"
        )
    return ""


def _claimed(delivery: WebhookDelivery):
    """The delivery, if this sender's claim on it still holds: not claimed by another sender
    since (an attempt more, another lease), not finished, not redelivered."""
    return WebhookDelivery.objects.filter(
        pk=delivery.pk,
        status=WebhookDelivery.Status.PENDING,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at,
    )


def _lease_renew(delivery: WebhookDelivery) -> bool:
    """Leases a claimed delivery again, from now: a whole lease for its send, however long
    the batch's earlier sends took. False if the claim was lost meanwhile."""
    leased_until = timezone.now() + _lease()
    if not _claimed(delivery).update(next_attempt_at=leased_until):
        return False
    delivery.next_attempt_at = leased_until
    return True


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
    """Sends a delivery this sender claimed (webhook_deliveries_claim) and records the outcome;
    True if the receiver took it. A lost claim is not sent, and an outcome that comes after
    the claim was lost is not recorded: the sender that took the delivery over records its own.

    One send takes at most about three timeouts (WEBHOOK_TIMEOUT_SECONDS): nothing starts
    waiting after a deadline of two (the lookup included), and no wait lasts longer than one
    (the body is small: writing it does not wait). The lease (WEBHOOK_LEASE_SECONDS) is longer.
    """
    if not _lease_renew(delivery):
        logger.info("Webhook delivery %s was claimed by another sender: not sent", delivery.id)
        return False
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
    deadline = started + 2 * settings.WEBHOOK_TIMEOUT_SECONDS
    try:
        destination = destination_resolve(url=delivery.endpoint.url, resolve=resolve)
        client = clients.for_host(destination.host)
        status_code, text = _post(client, destination, body, headers, deadline)
        ok = 200 <= status_code < 300
        error = "" if ok else text[:500]
    except Exception as exc:  # any failure to deliver is this delivery's, not the batch's
        status_code, error, ok = None, f"{type(exc).__name__}: {exc}"[:500], False
    now = timezone.now()
    outcome = {
        "last_status_code": status_code,
        "last_error": error,
        "history": [
            *delivery.history,
            {
                "at": now.isoformat(),
                "status_code": status_code,
                "error": error[:200],
                "ms": round((time.monotonic() - started) * 1000),
            },
        ],
    }
    if ok:
        outcome.update(status=WebhookDelivery.Status.SUCCEEDED, delivered_at=now)
    elif delivery.attempts > len(RETRY_SCHEDULE):
        outcome.update(status=WebhookDelivery.Status.FAILED)
    else:
        outcome.update(next_attempt_at=now + RETRY_SCHEDULE[delivery.attempts - 1])
    if not ok:  # the answer's status, or the error's type (its text may quote the URL)
        webhook_failed(final=outcome.get("status") == WebhookDelivery.Status.FAILED)
        why = status_code or error.partition(":")[0]
        logger.info("Webhook delivery %s failed: %s", delivery.id, why)
    if not _claimed(delivery).update(**outcome):
        logger.warning(
            "Webhook delivery %s: the lease ran out during the send; its outcome (%s) is not "
            "recorded, the sender that claimed it since records its own",
            delivery.id,
            status_code or error,
        )
    return ok


_MAX_RESPONSE_BYTES = 2048


def _post(client: httpx.Client, destination: Destination, body, headers, deadline: float):
    """POSTs to the first checked address that takes the connection (IPv6 then IPv4, say)."""
    headers = {**headers, "Host": destination.host_header}
    *others, last = destination.addresses
    for address in others:
        try:
            return _post_to(client, destination, address, body, headers, deadline)
        except (httpx.ConnectError, httpx.ConnectTimeout):  # nothing was sent: try the next
            pass
    return _post_to(client, destination, last, body, headers, deadline)


def _post_to(client, destination: Destination, address, body, headers, deadline: float):
    """Reads at most 2 KB of the answer, and gives up on a receiver that trickles it past the
    deadline (httpx's timeouts bound each read, not the whole response). Each wait (connect,
    write, read) is bounded by the time left, and by one timeout."""
    timeout = min(settings.WEBHOOK_TIMEOUT_SECONDS, deadline - time.monotonic())
    if timeout <= 0:
        raise httpx.ConnectTimeout(f"no time left to connect to {address}")
    with client.stream(
        "POST",
        destination.url_at(address),
        content=body,
        headers=headers,
        timeout=timeout,
        extensions={"sni_hostname": destination.host},  # TLS: also the certificate's name
    ) as response:
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout("the receiver took too long to answer")
        read = b""
        for chunk in response.iter_bytes():
            read += chunk
            if len(read) >= _MAX_RESPONSE_BYTES:
                break
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout("the receiver took too long to answer")
        return response.status_code, read[:_MAX_RESPONSE_BYTES].decode(errors="replace")


def _events_of(delivery: WebhookDelivery) -> list[str]:
    """The trigger event a delivery is about (every payload's data names one), for the logs."""
    event_id = (delivery.payload.get("data") or {}).get("trigger_event_id")
    return [event_id] if event_id else []


def webhook_deliveries_send_due(*, limit: int = 100, resolve: Resolver = host_resolve) -> int:
    """Sends what is due; returns how many were attempted. ``resolve``: host name lookups."""
    due = webhook_deliveries_claim(limit=limit)
    if due:
        with contextlib.closing(Clients()) as clients:
            for delivery in due:
                with events_logged(_events_of(delivery)):
                    webhook_delivery_send(delivery=delivery, clients=clients, resolve=resolve)
    return len(due)
