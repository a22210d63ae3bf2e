import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from partnerships.models import EndUser, Partnership

from .schemas import validate_context_schema

TRIGGER_NAME_PATTERN = r"^[a-z][a-z0-9_.-]{0,63}$"


def default_context_schema() -> dict:
    return {"type": "object"}


class Trigger(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        ARCHIVED = "archived", "Archived"

    partnership = models.ForeignKey(Partnership, on_delete=models.CASCADE, related_name="triggers")
    name = models.CharField(
        max_length=64,
        validators=[RegexValidator(TRIGGER_NAME_PATTERN, "Lowercase letters, digits, _ . -")],
        help_text="What partners send as trigger_name, e.g. transaction_completed",
    )
    description = models.TextField(blank=True)
    context_schema = models.JSONField(
        default=default_context_schema,
        validators=[validate_context_schema],
        help_text="JSON Schema (draft 2020-12) that transaction_context must match.",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Apps may send it with a user token (issue 12). Users then write its context themselves,
    # so campaigns reading it must bound each user's money (campaigns/client_sendable.py).
    client_sendable = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Client-side apps may send this trigger with a user token. Every campaign "
        "that reads it must have a per-user cap and a bounded amount.",
    )
    # Bumped by every write of its service (config.revisions): the management API's ETag.
    revision = models.PositiveIntegerField(default=1, db_default=1, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["partnership", "name"], name="uniq_trigger_name"),
        ]
        permissions = [("send_test_event", "Can send test events from Pilot")]

    def __str__(self) -> str:
        return self.name


class TriggerEvent(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        QUEUED = "queued", "Queued"
        PROCESSING = "processing", "Processing"
        PROCESSED = "processed", "Processed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class Mode(models.TextChoices):
        LIVE = "live", "Live"
        TEST = "test", "Test"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No single-column FK indexes: the composite indexes below serve every query, and each
    # index is written on every ingest (deleting a trigger or partnership scans instead).
    partnership = models.ForeignKey(
        Partnership, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    trigger = models.ForeignKey(
        Trigger, on_delete=models.PROTECT, related_name="events", db_index=False
    )
    end_user = models.ForeignKey(
        EndUser, on_delete=models.PROTECT, related_name="events", db_index=False
    )
    context = models.JSONField(default=dict)
    # Unique per partnership and mode (a test request never replays a live event); NULL, not
    # "", when absent: NULLs never collide in the unique constraint below.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    # SHA-256 of the canonical request body (the key and mode left out): a replay must match.
    request_hash = models.CharField(max_length=64, blank=True)
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.LIVE)
    tags = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    deliver_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    processed_at = models.DateTimeField(null=True, blank=True)
    # Evaluations attempted, whether they finished, failed or died with their worker (see
    # TriggerEventClaim), and when the last one was: a retry waits from there.
    attempts = models.PositiveSmallIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    # The evaluation trace, written by the processors (the workers: the compact form of
    # campaigns.decisions, one decision per candidate campaign once expanded).
    decisions = models.JSONField(default=list, blank=True)
    # The Pilot operator who sent it ("Send a test event"); None: a partner's key.
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )

    class Meta:
        constraints = [
            # What services/ingest.py looks a conflicting key up by (its ON CONFLICT names none).
            models.UniqueConstraint(
                fields=["partnership", "mode", "idempotency_key"],
                name="uniq_event_mode_idempotency_key",
            ),
        ]
        indexes = [
            # The workers' claim and the scheduler's promotion scan only these small slices.
            # New events only: a backlog waiting to be retried (event_retry_idx) is not in the
            # way of every claim.
            models.Index(
                fields=["deliver_at"],
                condition=Q(status="queued", attempts=0),
                name="event_new_idx",
            ),
            models.Index(
                fields=["deliver_at"], condition=Q(status="scheduled"), name="event_scheduled_idx"
            ),
            # Events waiting to be retried (alone, once their delay has passed).
            models.Index(
                fields=["last_attempt_at"],
                condition=Q(status="queued", attempts__gt=0),
                name="event_retry_idx",
            ),
            models.Index(fields=["partnership", "-received_at"], name="event_partnership_idx"),
            # Per-user facts ("purchases in the last 30 days") as of an event's occurred_at.
            models.Index(
                fields=["end_user", "trigger", "occurred_at"], name="event_user_history_idx"
            ),
        ]

    def __str__(self) -> str:
        return str(self.id)


class TriggerEventClaim(models.Model):
    """A batch a worker is evaluating, written and committed by a second database session before
    the evaluation starts, and deleted by the batch's own transaction. One left behind is an
    attempt that never finished (its worker died): its events are charged it."""

    event_ids = ArrayField(models.UUIDField())
    # The claiming worker's database session: once it is gone, so is the worker's transaction.
    backend_pid = models.PositiveIntegerField()
    claimed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{len(self.event_ids)} events claimed by backend {self.backend_pid}"
