import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from campaigns.models import Campaign
from partnerships.models import EndUser, Partnership
from triggers.models import TriggerEvent

# Reports and webhooks live in their own packages; imported here so Django registers their
# models under this app.
from .reports.models import (  # noqa: F401
    ActivityBucket,
    ClosedDay,
    DayFigure,
    MoneyBucket,
    ReportWatermark,
)
from .simulation.models import Backtest  # noqa: F401
from .webhooks.models import WebhookDelivery, WebhookEndpoint  # noqa: F401

MODES = [("live", "Live"), ("test", "Test")]


class Reward(models.Model):
    class Status(models.TextChoices):
        ISSUED = "issued", "Issued"
        REVERSED = "reversed", "Reversed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    partnership = models.ForeignKey(Partnership, on_delete=models.PROTECT, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="rewards")
    trigger_event = models.ForeignKey(
        TriggerEvent, on_delete=models.PROTECT, related_name="rewards"
    )
    end_user = models.ForeignKey(EndUser, on_delete=models.PROTECT, related_name="rewards")
    amount = models.DecimalField(max_digits=18, decimal_places=6)
    # Clawed back so far (partial reversals); status becomes reversed when it reaches amount.
    reversed_amount = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    unit = models.CharField(max_length=40)
    mode = models.CharField(max_length=8, choices=MODES)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ISSUED)
    issued_at = models.DateTimeField()
    occurred_at = models.DateTimeField(help_text="When the rewarded event happened.")
    # With the campaign, names the CampaignVersion (rule and spec) that issued it.
    campaign_version = models.PositiveIntegerField()
    # The per-user counters this reward was counted in ("" = lifetime, else a period such as
    # "2026-W48"), as the campaign's limits stood when it was issued: a reversal gives back
    # exactly these, even if the limits have changed since.
    user_periods = ArrayField(models.CharField(max_length=16), default=list, blank=True)

    class Meta:
        constraints = [
            # Exactly once: whatever retries, duplicates or races happen upstream.
            models.UniqueConstraint(
                fields=["campaign", "trigger_event"], name="uniq_reward_per_campaign_event"
            ),
        ]
        indexes = [
            models.Index(fields=["end_user", "-issued_at"], name="reward_user_idx"),
            models.Index(fields=["campaign", "mode", "status"], name="reward_campaign_idx"),
            # Reports: unique users of a range from the index alone; exports page by key.
            models.Index(
                fields=["partnership", "mode", "issued_at", "id"],
                include=["end_user", "campaign"],
                name="reward_report_idx",
            ),
        ]
        permissions = [("reverse_reward", "Can reverse rewards")]

    def __str__(self) -> str:
        return f"{self.amount} {self.unit}"

    @property
    def remaining(self):
        return self.amount - self.reversed_amount


class CampaignCounter(models.Model):
    """What a campaign has issued, per mode: the row locked to reserve budget and caps."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="counters")
    mode = models.CharField(max_length=8, choices=MODES)
    reward_count = models.PositiveIntegerField(default=0)
    spent = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    # What partners were told about this budget (rewards.services.notices), written under this
    # row's lock: the budget whose exhaustion (campaign.budget_exhausted) and whose running low
    # (campaign.budget_low) were announced, and when. A budget raised above it is a new one,
    # announced again.
    exhausted_budget = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    exhausted_at = models.DateTimeField(null=True, blank=True)
    low_warned_budget = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    low_warned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "mode"], name="uniq_campaign_counter"),
            models.CheckConstraint(condition=models.Q(spent__gte=0), name="counter_spent_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id} {self.mode}: {self.reward_count} rewards, {self.spent} spent"


class UserCounter(models.Model):
    """A user's rewards from a campaign in a period ("" = all time), per mode."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    mode = models.CharField(max_length=8, choices=MODES)
    end_user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="+")
    period = models.CharField(max_length=16, blank=True)
    reward_count = models.PositiveIntegerField(default=0)
    amount = models.DecimalField(max_digits=18, decimal_places=6, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "mode", "end_user", "period"], name="uniq_user_counter"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.end_user_id} {self.period or 'all time'}: {self.reward_count}"


class Reversal(models.Model):
    """A partner's reversal of one trigger event (a refund): cancels it or claws rewards back."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    partnership = models.ForeignKey(Partnership, on_delete=models.PROTECT, related_name="+")
    trigger_event = models.ForeignKey(
        TriggerEvent, on_delete=models.PROTECT, related_name="reversals"
    )
    # The mode of the key that asked, always its event's: the scope of its idempotency key.
    mode = models.CharField(max_length=8, choices=MODES)
    reason = models.CharField(max_length=500, blank=True)
    requested_amount = models.DecimalField(
        max_digits=18,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="Partial clawback; empty reverses everything.",
    )
    cancelled_event = models.BooleanField(default=False)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    request_hash = models.CharField(max_length=64, blank=True)
    # The Pilot operator who asked (None: a partner's key, through the API).
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["partnership", "mode", "idempotency_key"],
                name="uniq_reversal_mode_idempotency_key",
            ),
        ]

    def __str__(self) -> str:
        return f"reversal of {self.trigger_event_id}"


class RewardAdjustment(models.Model):
    """A negative adjustment of one reward by one reversal (the whole reward or a part)."""

    reversal = models.ForeignKey(Reversal, on_delete=models.CASCADE, related_name="adjustments")
    reward = models.ForeignKey(Reward, on_delete=models.PROTECT, related_name="adjustments")
    amount = models.DecimalField(max_digits=18, decimal_places=6)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["created_at"], name="adjustment_created_idx")]

    def __str__(self) -> str:
        return f"-{self.amount} on {self.reward_id}"
