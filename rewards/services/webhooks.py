"""Signed webhooks: deliveries are written in the transaction that issues or reverses a
reward (an outbox), then sent by Celery after commit, retried with backoff for about a day.

Each request carries ``Webhook-Id`` (the delivery id, for the receiver's dedup),
``Webhook-Timestamp`` (unix seconds) and ``Webhook-Signature: v1=<hex>``, the HMAC-SHA256 of
``f"{timestamp}.{body}"`` with the endpoint's secret. See docs/webhooks.md.
"""

import hashlib
import hmac
import ipaddress
import logging
import secrets
import socket
import time
import uuid
from datetime import timedelta
from decimal import Decimal

import httpx
import orjson
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from config.localcache import config_cache

from ..models import Reward, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

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


def webhook_secret_generate() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


SECRET_OVERLAP = timedelta(hours=24)


def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint) -> str:
    """A new secret; the old one keeps signing too (a second signature) for 24 hours."""
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = timezone.now() + SECRET_OVERLAP
    endpoint.secret = webhook_secret_generate()
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    return endpoint.secret


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def _endpoints(partnership_id, event_type: str) -> list[tuple]:
    def load() -> list[tuple]:
        return list(
            WebhookEndpoint.objects.filter(partnership_id=partnership_id, active=True).values_list(
                "id", "event_types"
            )
        )

    rows = config_cache.get(("webhooks", partnership_id), load)
    return [endpoint_id for endpoint_id, types in rows if event_type in types]


def reward_payload(reward) -> dict:
    """The reward as partners see it; ``reward`` is a model or an evaluation row."""
    amount, reversed_amount = reward.amount, getattr(reward, "reversed_amount", Decimal(0))
    if isinstance(reward, Reward):
        step = reward.partnership.unit_step
        amount, reversed_amount = amount.quantize(step), reversed_amount.quantize(step)
    return {
        "reward_id": str(reward.id),
        "campaign_id": str(reward.campaign_id),
        "trigger_event_id": str(reward.trigger_event_id),
        "user_uuid": str(reward.end_user_id),
        "amount": str(amount),
        "reversed_amount": str(reversed_amount),
        "unit": reward.unit,
        "mode": reward.mode,
        "status": getattr(reward, "status", Reward.Status.ISSUED),
        "issued_at": reward.issued_at.isoformat(),
    }


def webhook_deliveries_create(*, event_type: str, rewards=(), objects: list[tuple] = ()) -> int:
    """Outbox rows for every subscribed endpoint; wakes the sender after commit.

    ``rewards``: reward-like rows (model instances or the evaluation's tuples);
    ``objects``: (partnership_id, payload) pairs for other event types.
    """
    now = timezone.now()
    items = [(reward.partnership_id, reward_payload(reward)) for reward in rewards]
    items += list(objects)
    deliveries = []
    for partnership_id, data in items:
        for endpoint_id in _endpoints(partnership_id, event_type):
            delivery_id = uuid.uuid4()
            deliveries.append(
                WebhookDelivery(
                    id=delivery_id,
                    endpoint_id=endpoint_id,
                    event_type=event_type,
                    payload={
                        "id": str(delivery_id),
                        "type": event_type,
                        "created_at": now.isoformat(),
                        "data": data,
                    },
                    next_attempt_at=now,
                    created_at=now,
                )
            )
    if deliveries:
        WebhookDelivery.objects.bulk_create(deliveries)
        transaction.on_commit(_wake_sender)
    return len(deliveries)


def _wake_sender() -> None:
    from ..tasks import send_due_webhooks

    try:
        send_due_webhooks.apply_async(retry=False)
    except Exception:
        logger.warning("Could not wake the webhook sender; the scheduler will", exc_info=True)


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


def webhook_delivery_send(*, delivery: WebhookDelivery, client: httpx.Client) -> bool:
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
        status_code, text = _post(client, delivery.endpoint.url, body, headers, started)
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


class WebhookRefused(Exception):
    """The endpoint's address is not one we send to."""


def _check_address(url: str) -> None:
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


def _post(client: httpx.Client, url: str, body: bytes, headers: dict, started: float):
    """POSTs; reads at most 2 KB of the answer, and gives up on a receiver that trickles it
    past the timeout (httpx's timeouts bound each read, not the whole response)."""
    _check_address(url)
    deadline = started + 2 * settings.WEBHOOK_TIMEOUT_SECONDS
    with client.stream("POST", url, content=body, headers=headers) as response:
        read = b""
        for chunk in response.iter_bytes():
            read += chunk
            if len(read) >= _MAX_RESPONSE_BYTES:
                break
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout("the receiver took too long to answer")
        return response.status_code, read[:_MAX_RESPONSE_BYTES].decode(errors="replace")


def webhook_deliveries_send_due(*, limit: int = 100) -> int:
    """Sends what is due; returns how many were attempted."""
    due = webhook_deliveries_claim(limit=limit)
    if due:
        with httpx.Client(timeout=settings.WEBHOOK_TIMEOUT_SECONDS) as client:
            for delivery in due:
                webhook_delivery_send(delivery=delivery, client=client)
    return len(due)


def webhook_delivery_redeliver(*, delivery: WebhookDelivery) -> bool:
    """Sends a finished delivery again, with a fresh retry schedule; False if it is still
    pending (its sender may be sending it right now: a second send would race it)."""
    redelivered = (
        WebhookDelivery.objects.filter(pk=delivery.pk)
        .exclude(status=WebhookDelivery.Status.PENDING)
        .update(status=WebhookDelivery.Status.PENDING, next_attempt_at=timezone.now(), attempts=0)
    )
    if redelivered:
        transaction.on_commit(_wake_sender)
    return bool(redelivered)
