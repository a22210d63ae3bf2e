import uuid

from django.conf import settings
from django.db import models

from campaigns.models import Campaign
from triggers.models import TriggerEvent


class Backtest(models.Model):
    """One backtest of a campaign as given (``spec``: its unsaved values included), over the
    events of a mode received in ``[window_start, window_end)``; kept with the campaign."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        TIMED_OUT = "timed_out", "Timed out (partial results)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="backtests")
    # The campaign as backtested (campaigns.compiler.CampaignSpec, see backtest.spec_to_json).
    spec = models.JSONField()
    mode = models.CharField(max_length=8, choices=TriggerEvent.Mode.choices)
    days = models.PositiveSmallIntegerField()
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    events_done = models.PositiveIntegerField(default=0)
    events_total = models.PositiveIntegerField(null=True, blank=True)
    results = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["campaign", "-created_at"], name="backtest_campaign_idx")]

    def __str__(self) -> str:
        return f"backtest of {self.campaign_id} over {self.days} days ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED, self.Status.TIMED_OUT)
