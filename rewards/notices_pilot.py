"""Pilot's notice on a campaign's page: its budget exhausted, running low (with when it runs
out at the current burn rate) or the campaign ended, as partners hear it by webhook
(``services/notices.py``), in each mode it runs in."""

from datetime import datetime
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.utils import timezone

from campaigns.models import Campaign

from .selectors import BudgetOutlook, budget_running_low, campaign_budget_outlooks


def campaign_notices(*, campaign: Campaign, now: datetime | None = None) -> list[tuple[int, str]]:
    """(message level, text) of each notice the campaign's page shows now."""
    if campaign.status == Campaign.Status.ENDED:
        return [(messages.INFO, "This campaign has ended: it rewards no more events.")]
    now = now or timezone.now()
    notices = []
    for outlook in campaign_budget_outlooks(campaign=campaign, now=now):
        if outlook.exhausted:
            notices.append((messages.ERROR, _exhausted(campaign, outlook)))
        elif campaign.status == Campaign.Status.ACTIVE and budget_running_low(
            campaign=campaign, runs_out_at=outlook.runs_out_at, now=now
        ):
            notices.append((messages.WARNING, _running_low(campaign, outlook)))
    return notices


def _exhausted(campaign: Campaign, outlook: BudgetOutlook) -> str:
    text = (
        f"Budget exhausted ({outlook.mode}): {_money(campaign, outlook.spent)} of "
        f"{_money(campaign, outlook.budget)} spent, {_money(campaign, outlook.left)} left; it "
        "pays no reward larger than what is left until the budget is raised."
    )
    if outlook.exhausted_at:
        text += f" Partners were told on {_when(campaign, outlook.exhausted_at)}."
    return text


def _running_low(campaign: Campaign, outlook: BudgetOutlook) -> str:
    return (
        f"Budget running low ({outlook.mode}): {_money(campaign, outlook.left)} left of "
        f"{_money(campaign, outlook.budget)}; at the current burn rate "
        f"({_money(campaign, outlook.burn_per_hour)} an hour) it runs out around "
        f"{_when(campaign, outlook.runs_out_at)}."
    )


def _money(campaign: Campaign, amount) -> str:
    partnership = campaign.partnership
    return f"{amount.quantize(partnership.unit_step)} {partnership.reward_unit}"


def _when(campaign: Campaign, at: datetime) -> str:
    zone = campaign.partnership.time_zone
    return f"{at.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} ({zone})"


class CampaignNoticesAdminMixin:
    """Shows the notices at the top of the campaign's page (on reading it, not on saving)."""

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "GET":
            campaign = self.get_object(request, unquote(object_id))
            if campaign is not None:
                for level, text in campaign_notices(campaign=campaign):
                    messages.add_message(request, level, text)
        return super().change_view(request, object_id, form_url, extra_context)
