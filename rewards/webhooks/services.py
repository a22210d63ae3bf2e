"""Operators' writes (Pilot): secrets and redelivery; retiring old deliveries."""

import time
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from config.revisions import revision_bump
from partnerships.services import audit_record, model_changes

from .emit import webhook_sender_wake
from .models import WebhookDelivery, WebhookEndpoint
from .signing import webhook_secret_generate

SECRET_OVERLAP = timedelta(hours=24)


def webhook_endpoint_create(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Saves a new (unsaved) endpoint with a fresh signing secret, which it carries."""
    endpoint.secret = webhook_secret_generate()
    endpoint.save()
    return endpoint


FIELDS = ("url", "event_types", "modes", "active")


@transaction.atomic
def webhook_endpoint_save(
    *, endpoint: WebhookEndpoint, actor, expected_revision: int | None = None
) -> str | None:
    """Validates and writes an endpoint (Pilot's form and the management API; ``ValidationError``
    per field): a new one gets its signing secret, returned once (else None); a saved one only
    if still at ``expected_revision`` (412 otherwise), which is bumped. Audited."""
    endpoint.full_clean(exclude=["secret"])
    if endpoint._state.adding:
        secret = webhook_endpoint_create(endpoint=endpoint).secret
        audit_record(
            actor=actor, action="webhook.create", target=endpoint, partnership=endpoint.partnership
        )
        return secret
    before = WebhookEndpoint.objects.filter(pk=endpoint.pk).values(*FIELDS).first() or {}
    revision_bump(instance=endpoint, expected=expected_revision)
    endpoint.save()
    audit_record(
        actor=actor,
        action="webhook.change",
        target=endpoint,
        partnership=endpoint.partnership,
        changes=model_changes(before, endpoint, FIELDS),
    )
    return None


@transaction.atomic
def webhook_endpoint_remove(
    *, endpoint: WebhookEndpoint, actor, expected_revision: int | None
) -> bool:
    """ "Deletes" an endpoint: really if it never had a delivery; else it is deactivated, so its
    deliveries' history stays. True if deleted. Audited."""
    revision_bump(instance=endpoint, expected=expected_revision)
    # FOR UPDATE (not the bump's NO KEY UPDATE): a delivery being written for it commits
    # first and is seen below, or waits for us and finds the endpoint gone (see trigger_remove).
    WebhookEndpoint.objects.select_for_update().values_list("pk", flat=True).get(pk=endpoint.pk)
    if not endpoint.deliveries.exists():
        audit_record(
            actor=actor, action="webhook.delete", target=endpoint, partnership=endpoint.partnership
        )
        endpoint.delete()
        return True
    endpoint.active = False
    endpoint.save(update_fields=["active", "revision"])
    audit_record(
        actor=actor,
        action="webhook.change",
        target=endpoint,
        partnership=endpoint.partnership,
        changes={"active": ["True", "False"]},
    )
    return False


@transaction.atomic
def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint, actor=None) -> str:
    """A new secret; the old one keeps signing too (a second signature) for 24 hours. The row
    is read under its lock: of two rotations at once, the second keeps the first's new secret
    as the previous one (the one shown to the first operator goes on verifying for the day),
    never the copy both loaded. Audited (``webhook.secret_rotate``) in the same transaction."""
    locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    locked.previous_secret = locked.secret
    locked.previous_secret_expires_at = timezone.now() + SECRET_OVERLAP
    locked.secret = webhook_secret_generate()
    revision_bump(instance=locked, expected=None)
    locked.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    audit = {"action": "webhook.secret_rotate", "target": locked}
    audit_record(actor=actor, partnership=locked.partnership, **audit)
    for name in ("secret", "previous_secret", "previous_secret_expires_at", "revision"):
        setattr(endpoint, name, getattr(locked, name))
    return locked.secret


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


# Done deliveries created before the cutoff, oldest first (delivery_done_idx), a batch at a time.
_RETIRE = """
WITH doomed AS (
    SELECT id FROM rewards_webhookdelivery
     WHERE created_at < %(cutoff)s AND status <> %(pending)s
     ORDER BY created_at
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
)
DELETE FROM rewards_webhookdelivery w USING doomed d WHERE w.id = d.id
"""
_COUNT_RETIRABLE = """
SELECT count(*) FROM rewards_webhookdelivery WHERE created_at < %(cutoff)s AND status <> %(pending)s
"""


def webhook_deliveries_retire(
    *, cutoff: datetime, batch_size: int, deadline: float, dry_run: bool = False
) -> tuple[int, bool]:
    """Deletes the deliveries created before ``cutoff`` that are done (succeeded, failed,
    cancelled; a pending one is never retired), ``batch_size`` per transaction, until none is
    left or ``time.monotonic()`` reaches ``deadline``: (how many, whether none is left). Dry:
    how many would go. A delivery a sender or a redelivery holds is left for the next run."""
    params = {"cutoff": cutoff, "pending": WebhookDelivery.Status.PENDING, "limit": batch_size}
    retired = 0
    with connection.cursor() as cursor:
        if dry_run:
            cursor.execute(_COUNT_RETIRABLE, params)
            return cursor.fetchone()[0], True
        while time.monotonic() < deadline:
            with transaction.atomic():
                cursor.execute(_RETIRE, params)
                deleted = cursor.rowcount
            retired += deleted
            if deleted < batch_size:
                return retired, True
    return retired, False
