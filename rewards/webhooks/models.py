"""Webhook endpoints and their deliveries; registered under app ``rewards`` (rewards.models
imports them), so their tables stay ``rewards_webhookendpoint`` and ``rewards_webhookdelivery``."""

import uuid

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models

from partnerships.models import Partnership
from triggers.models import TriggerEvent


class WebhookEventType(models.TextChoices):
    REWARD_ISSUED = "reward.issued", "reward.issued"
    REWARD_REVERSED = "reward.reversed", "reward.reversed"
    TRIGGER_EVENT_FAILED = "trigger_event.failed", "trigger_event.failed"
    # About a campaign in one mode (rewards.services.notices): once per occurrence each.
    CAMPAIGN_BUDGET_EXHAUSTED = "campaign.budget_exhausted", "campaign.budget_exhausted"
    CAMPAIGN_BUDGET_LOW = "campaign.budget_low", "campaign.budget_low"
    CAMPAIGN_ENDED = "campaign.ended", "campaign.ended"


class WebhookEndpoint(models.Model):
    class Modes(models.TextChoices):
        """Which events an endpoint hears about: those sent with live keys, test keys, or both."""

        LIVE = "live", "Live only"
        TEST = "test", "Test only"
        BOTH = "both", "Live and test"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    partnership = models.ForeignKey(Partnership, on_delete=models.CASCADE, related_name="+")
    url = models.URLField(max_length=500)
    # Kept (not hashed): every delivery is signed with it. Shown once in Pilot; rotatable.
    secret = models.CharField(max_length=100, editable=False)
    # After a rotation the old secret still signs (a second signature) until it expires, so
    # the partner can deploy the new one without failing deliveries meanwhile.
    previous_secret = models.CharField(max_length=100, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    event_types = ArrayField(
        models.CharField(max_length=40, choices=WebhookEventType.choices),
        default=list,
        help_text="reward.issued, reward.reversed, trigger_event.failed, "
        "campaign.budget_exhausted, campaign.budget_low, campaign.ended",
    )
    # Endpoints made before this field existed heard both (their migration says so).
    modes = models.CharField(max_length=8, choices=Modes.choices, default=Modes.LIVE)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Bumped by every write of its services (config.revisions): the management API's ETag.
    revision = models.PositiveIntegerField(default=1, db_default=1, editable=False)

    def __str__(self) -> str:
        return self.url

    def clean(self) -> None:
        if len(set(self.event_types or [])) != len(self.event_types or []):
            raise ValidationError({"event_types": "Each event type once"})

    @classmethod
    def receives(cls, modes: str, mode: str) -> bool:
        return modes in (mode, cls.Modes.BOTH)

    def signing_secrets(self, now) -> list[str]:
        secrets = [self.secret]
        if (
            self.previous_secret
            and self.previous_secret_expires_at
            and now < self.previous_secret_expires_at
        ):
            secrets.append(self.previous_secret)
        return secrets


class WebhookDelivery(models.Model):
    """One message to one endpoint (an outbox row): written with what it reports, sent after."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed (gave up)"
        # Its endpoint stopped receiving its event type or mode before it was sent.
        CANCELLED = "cancelled", "Cancelled (no longer subscribed)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_type = models.CharField(max_length=40)
    # Its subject's (the reward's or the event's): checked against the endpoint's modes when sent.
    mode = models.CharField(max_length=8, choices=TriggerEvent.Mode.choices)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # One entry per attempt: {"at", "status_code", "error", "ms"}.
    history = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="pending"),
                name="delivery_due_idx",
            ),
            # Retention: the deliveries that are done, oldest first (services.py).
            models.Index(
                fields=["created_at"],
                condition=~models.Q(status="pending"),
                name="delivery_done_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} -> {self.endpoint_id}"
