import uuid
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from partnerships.models import Partnership
from triggers.models import Trigger

FACT_NAME = r"^[a-z][a-z0-9_]{0,39}$"


class Campaign(models.Model):
    """When (condition), what (reward spec) and how much at most (limits), for one trigger."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted for approval"
        # Approved: shown as "scheduled" before its start (``display_status``). The workers
        # read this status only.
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        ENDED = "ended", "Ended"

    class RewardType(models.TextChoices):
        FIXED = "fixed", "Fixed amount"
        PERCENTAGE = "percentage", "Percentage of a context field"
        EXPRESSION = "expression", "CEL expression"

    class Rounding(models.TextChoices):
        HALF_UP = ROUND_HALF_UP, "Half up"
        HALF_EVEN = ROUND_HALF_EVEN, "Half even (banker's)"
        DOWN = ROUND_DOWN, "Down (truncate)"

    class Period(models.TextChoices):
        DAY = "day", "Day"
        WEEK = "week", "Week (ISO, Monday first)"
        MONTH = "month", "Month"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    partnership = models.ForeignKey(Partnership, on_delete=models.CASCADE, related_name="campaigns")
    trigger = models.ForeignKey(Trigger, on_delete=models.PROTECT, related_name="campaigns")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    priority = models.IntegerField(default=0, help_text="Higher priorities are evaluated first.")
    exclusive = models.BooleanField(
        default=False, help_text="When it rewards an event, lower-priority campaigns skip it."
    )

    condition = models.TextField(
        blank=True, help_text="CEL, e.g. context.amount >= 20.0. Empty: always true."
    )
    facts = models.JSONField(
        default=list,
        blank=True,
        help_text='Per-user aggregates for the condition, e.g. [{"name": "purchases_30d", '
        '"aggregate": "count", "window_days": 30}] or {"aggregate": "sum", "field": "amount"}.',
    )

    reward_type = models.CharField(
        max_length=16, choices=RewardType.choices, default=RewardType.FIXED
    )
    reward_value = models.DecimalField(
        max_digits=18,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="The fixed amount, or the percentage (5 = 5%).",
    )
    reward_field = models.CharField(
        max_length=64, blank=True, help_text="For percentage: the numeric context field."
    )
    reward_expression = models.TextField(
        blank=True,
        help_text="For expression: CEL giving a number, e.g. context.amount * "
        '(user.tier == "gold" ? 0.1 : 0.05)',
    )
    reward_min = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    reward_max = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    rounding = models.CharField(max_length=20, choices=Rounding.choices, default=ROUND_HALF_UP)

    budget = models.DecimalField(
        max_digits=18,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="Total amount the campaign may issue.",
    )
    max_rewards = models.PositiveIntegerField(null=True, blank=True)
    max_rewards_per_user = models.PositiveIntegerField(null=True, blank=True)
    max_rewards_per_user_per_period = models.PositiveIntegerField(null=True, blank=True)
    period = models.CharField(max_length=8, choices=Period.choices, blank=True)
    max_amount_per_user = models.DecimalField(
        max_digits=18, decimal_places=6, null=True, blank=True
    )

    version = models.PositiveIntegerField(default=1, editable=False)
    # Unlike ``version`` (the approved configuration), bumped by every write: edits, proposals,
    # lifecycle actions (config.revisions). The management API's ETag; Pilot's forms carry it.
    revision = models.PositiveIntegerField(default=1, db_default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-priority", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["partnership", "slug"], name="uniq_campaign_slug"),
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True)
                | Q(starts_at__isnull=True)
                | Q(ends_at__gt=models.F("starts_at")),
                name="campaign_ends_after_start",
            ),
        ]
        indexes = [models.Index(fields=["trigger", "status"], name="campaign_trigger_idx")]
        permissions = [("approve_campaign", "Can approve campaigns and their changes")]

    def __str__(self) -> str:
        return self.name

    @property
    def display_status(self) -> str:
        if self.status == self.Status.ACTIVE and self.starts_at and self.starts_at > timezone.now():
            return "scheduled"
        return self.status

    def clean(self) -> None:
        from .services import campaign_validate

        errors = campaign_validate(campaign=self)
        if errors:
            raise ValidationError(errors)


class CampaignVersion(models.Model):
    """One change of a campaign: who made it, what (``changes``: field -> [before, after]),
    the whole configuration it gives (``snapshot``) and where it stands in approval.

    A version with a number is, or was, the campaign row's configuration: rewards name it
    (``Reward.campaign_version``). A change of an approved campaign waits here unnumbered
    (``proposed``) and changes nothing live until approved (``campaigns.lifecycle``)."""

    class State(models.TextChoices):
        DRAFT = "draft", "Draft (saved in place, not approved)"
        PROPOSED = "proposed", "Awaiting approval"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        SUPERSEDED = "superseded", "Superseded"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.APPROVED)
    snapshot = models.JSONField()
    changes = models.JSONField(default=dict, blank=True)
    base_version = models.PositiveIntegerField(
        null=True, blank=True, help_text="The live version a proposed change was made against."
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    rejected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    rejected_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True, help_text="Why it was rejected, or applied at once.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "version"], name="uniq_campaign_version"),
            models.UniqueConstraint(
                fields=["campaign"],
                condition=Q(state="proposed"),
                name="one_pending_change_per_campaign",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id} v{self.version or '(pending)'}"


class CandidateList(models.Model):
    """The campaigns an event was judged against, in order, stored once for every event judged
    against the same ones: an event's compact decisions (``campaigns.decisions``) name it and
    list only what was not the common ``condition_false``. Written once, never changed; a
    campaign deleted since keeps its id here (its decisions read with no slug, as before)."""

    digest = models.CharField(max_length=64, unique=True)  # of the ids and fact names
    campaign_ids = ArrayField(models.UUIDField())
    # Per campaign, the names of its facts whose values the event keeps once for all
    # (``"facts"``); None for a campaign whose decisions keep their facts themselves.
    fact_names = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{len(self.campaign_ids)} campaigns"
