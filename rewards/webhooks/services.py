"""Operators' writes (Pilot): secrets and redelivery."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from .emit import webhook_sender_wake
from .models import WebhookDelivery, WebhookEndpoint
from .signing import webhook_secret_generate

SECRET_OVERLAP = timedelta(hours=24)


def webhook_endpoint_create(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Saves a new (unsaved) endpoint with a fresh signing secret, which it carries."""
    endpoint.secret = webhook_secret_generate()
    endpoint.save()
    return endpoint


def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint) -> str:
    """A new secret; the old one keeps signing too (a second signature) for 24 hours."""
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = timezone.now() + SECRET_OVERLAP
    endpoint.secret = webhook_secret_generate()
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    return endpoint.secret


def webhook_delivery_redeliver(*, delivery: WebhookDelivery) -> bool:
    """Sends a finished delivery again, with a fresh retry schedule; False if it is still
    pending (its sender may be sending it right now: a second send would race it)."""
    redelivered = (
        WebhookDelivery.objects.filter(pk=delivery.pk)
        .exclude(status=WebhookDelivery.Status.PENDING)
        .update(status=WebhookDelivery.Status.PENDING, next_attempt_at=timezone.now(), attempts=0)
    )
    if redelivered:
        transaction.on_commit(webhook_sender_wake)
    return bool(redelivered)
