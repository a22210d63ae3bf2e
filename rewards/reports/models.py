"""The aggregates reports read; registered under app ``rewards`` (rewards.models imports them).

Every figure is counted into a 15-minute UTC bucket by the transaction that made it happen
(``maintain``), so a report is as current as the rows it sums, and a local day in any time zone
(every tzdb offset is a multiple of 15 minutes) is an exact union of buckets. Campaign and
trigger are plain ids, not foreign keys: upserting an aggregate must not lock their rows, and
the figures outlive a deleted campaign.
"""

from django.db import models

from partnerships.models import Partnership

BUCKET_MINUTES = 15


class Movement(models.TextChoices):
    """A kind of movement of reward value, with the sign it has on what is owed. Redemption
    and expiry will be kinds too: new rows, not new columns."""

    ISSUED = "issued", "Issued"
    REVERSED = "reversed", "Reversed (clawed back)"


# What each kind does to the outstanding liability.
LIABILITY_SIGN = {Movement.ISSUED: 1, Movement.REVERSED: -1}


class MoneyBucket(models.Model):
    """Reward value moved, per campaign and unit, in one 15-minute bucket."""

    partnership = models.ForeignKey(
        Partnership, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    mode = models.CharField(max_length=8)
    bucket = models.DateTimeField(help_text="Start of the 15-minute UTC bucket.")
    trigger_id = models.BigIntegerField()
    campaign_id = models.UUIDField()
    unit = models.CharField(max_length=40)
    kind = models.CharField(max_length=16, choices=Movement.choices)
    count = models.BigIntegerField(default=0)
    amount = models.DecimalField(max_digits=24, decimal_places=6, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "partnership",
                    "mode",
                    "bucket",
                    "trigger_id",
                    "campaign_id",
                    "unit",
                    "kind",
                ],
                name="uniq_money_bucket",
            ),
        ]
        permissions = [("view_reports", "Can view reward reports and exports")]

    def __str__(self) -> str:
        return f"{self.bucket:%Y-%m-%d %H:%M} {self.kind} {self.count} / {self.amount} {self.unit}"


class Metric(models.TextChoices):
    """What an activity bucket counts. Decisions are ``decision.<outcome>`` (any
    ``campaigns.decisions.Outcome``: outcomes are data, so new ones need no migration)."""

    EVENT_RECEIVED = "event.received", "Events received"
    EVENT_EVALUATED = "event.evaluated", "Events evaluated"
    EVENT_REWARDED = "event.rewarded", "Events rewarded"
    EVENT_FAILED = "event.failed", "Events failed"


DECISION_PREFIX = "decision."


class ActivityBucket(models.Model):
    """Events and decisions counted in one 15-minute bucket: per trigger for events (campaign
    empty), per campaign for decisions."""

    partnership = models.ForeignKey(
        Partnership, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    mode = models.CharField(max_length=8)
    bucket = models.DateTimeField(help_text="Start of the 15-minute UTC bucket.")
    trigger_id = models.BigIntegerField()
    campaign_id = models.UUIDField(null=True, blank=True)
    metric = models.CharField(max_length=48)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["partnership", "mode", "bucket", "trigger_id", "campaign_id", "metric"],
                name="uniq_activity_bucket",
                nulls_distinct=False,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.bucket:%Y-%m-%d %H:%M} {self.metric} {self.count}"


class ReportWatermark(models.Model):
    """How far a job that counts after the fact has counted: everything before ``through``."""

    name = models.CharField(max_length=40, primary_key=True)
    through = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} through {self.through:%Y-%m-%d %H:%M:%S}"
