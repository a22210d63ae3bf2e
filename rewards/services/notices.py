"""What partners are told about a campaign in one mode (docs/webhooks.md), each once per
occurrence, through ``webhook_event_emit`` in the transaction that causes it:

- ``campaign.budget_exhausted``: the budget ran out (a reward an event earned was refused for
  it, or nothing is left), found by the Ledger where issuance counts the budget, under the
  counter's lock (``campaign_budgets_exhausted_record``);
- ``campaign.budget_low``: at the current burn rate the budget runs out within
  ``CAMPAIGN_BUDGET_LOW_HOURS`` (beat, ``campaign_budgets_low_warn``);
- ``campaign.ended``: the campaign ended (``campaigns.signals.campaigns_ended``).

An occurrence of the first two is one budget: the counter keeps the budget announced
(``exhausted_budget``, ``low_warned_budget``), written under its row lock with the webhook, so
concurrent workers and beats announce it once; a budget raised above it is a new occurrence.
Ending is final, so ``campaign.ended`` is sent once per campaign and mode.
"""

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Q
from django.dispatch import receiver
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.signals import campaigns_ended

from ..locks import campaign_counters_lock_ids
from ..models import CampaignCounter
from ..reports.selectors import campaign_burn_per_hour
from ..selectors import budget_running_low, budget_runs_out_at
from ..webhooks import CampaignNotice, WebhookEventType, webhook_event_emit


def campaign_budgets_exhausted_record(
    *, exhausted: list[tuple[CampaignCounter, Decimal]], at: datetime
) -> int:
    """Announces the budgets a batch ran out of (``Ledger.exhausted``: counters and the budget
    each ran out of). Must run in the batch's transaction, under the Ledger's counter locks,
    after its counters are written. Returns how many deliveries it wrote."""
    campaigns = Campaign.objects.select_related("partnership").in_bulk(
        {counter.campaign_id for counter, _ in exhausted}
    )
    for counter, budget in exhausted:
        counter.exhausted_budget, counter.exhausted_at = budget, at
    CampaignCounter.objects.bulk_update(
        [counter for counter, _ in exhausted], ["exhausted_budget", "exhausted_at"]
    )
    return webhook_event_emit(
        event_type=WebhookEventType.CAMPAIGN_BUDGET_EXHAUSTED,
        subjects=[
            _notice(campaigns[counter.campaign_id], counter, budget, exhausted_at=at.isoformat())
            for counter, budget in exhausted
        ],
    )


def campaign_budgets_low_warn(*, now: datetime | None = None) -> int:
    """Beat: announces every running campaign's budget, per mode, that runs out within
    ``CAMPAIGN_BUDGET_LOW_HOURS`` at the current burn rate (and before the campaign ends),
    unless this budget was announced low or exhausted already. Returns how many deliveries.

    Reads without locks, then locks the counters it would announce (kind 3 of
    ``rewards.locks``, nothing else) and decides again under the locks with their current
    figures, so a second beat or a worker exhausting the budget meanwhile never makes it twice."""
    now = now or timezone.now()
    due = []
    for counter in _low_candidates(now):
        burn = campaign_burn_per_hour(campaign=counter.campaign, mode=counter.mode, now=now)
        if _running_low(counter.campaign, counter, burn, now):
            due.append((counter, burn))
    if not due:
        return 0
    with transaction.atomic():
        locked = {c.pk: c for c in campaign_counters_lock_ids(ids=[c.pk for c, _ in due])}
        # As they are now (a budget approved, a pause or an end meanwhile), after the lock.
        campaigns = Campaign.objects.select_related("partnership").in_bulk(
            {counter.campaign_id for counter, _ in due}
        )
        notices, warned = [], []
        for seen, burn in due:
            campaign, counter = campaigns.get(seen.campaign_id), locked.get(seen.pk)
            if campaign is None or counter is None:
                continue  # deleted meanwhile
            if not _unannounced(counter, campaign.budget) or not _running_low(
                campaign, counter, burn, now
            ):
                continue
            counter.low_warned_budget, counter.low_warned_at = campaign.budget, now
            warned.append(counter)
            notices.append(_low_notice(campaign, counter, burn, now))
        CampaignCounter.objects.bulk_update(warned, ["low_warned_budget", "low_warned_at"])
        return webhook_event_emit(event_type=WebhookEventType.CAMPAIGN_BUDGET_LOW, subjects=notices)


def _low_notice(campaign: Campaign, counter: CampaignCounter, burn: Decimal, now) -> CampaignNotice:
    runs_out_at = budget_runs_out_at(
        budget=campaign.budget, spent=counter.spent, burn_per_hour=burn, now=now
    )
    return _notice(
        campaign,
        counter,
        campaign.budget,
        burn_rate_per_hour=str(burn.quantize(campaign.partnership.unit_step)),
        projected_exhaustion_at=runs_out_at.isoformat(),
        warned_at=now.isoformat(),
    )


def _low_candidates(now: datetime) -> list[CampaignCounter]:
    """Counters of running campaigns with budget left that was not announced low or exhausted."""
    budget = F("campaign__budget")
    return list(
        CampaignCounter.objects.filter(
            campaign__status=Campaign.Status.ACTIVE,
            campaign__budget__isnull=False,
            spent__lt=budget,
        )
        .filter(Q(campaign__starts_at__isnull=True) | Q(campaign__starts_at__lte=now))
        .filter(Q(low_warned_budget__isnull=True) | Q(low_warned_budget__lt=budget))
        .filter(Q(exhausted_budget__isnull=True) | Q(exhausted_budget__lt=budget))
        .select_related("campaign__partnership")
        .order_by("id")
    )


def _unannounced(counter: CampaignCounter, budget: Decimal | None) -> bool:
    return budget is not None and all(
        announced is None or announced < budget
        for announced in (counter.low_warned_budget, counter.exhausted_budget)
    )


def _running_low(campaign: Campaign, counter: CampaignCounter, burn: Decimal, now) -> bool:
    if campaign.status != Campaign.Status.ACTIVE or campaign.budget is None:
        return False
    if counter.spent >= campaign.budget:
        return False  # exhausted: the Ledger announces that
    runs_out_at = budget_runs_out_at(
        budget=campaign.budget, spent=counter.spent, burn_per_hour=burn, now=now
    )
    return budget_running_low(campaign=campaign, runs_out_at=runs_out_at, now=now)


@receiver(campaigns_ended, dispatch_uid="rewards.campaign_ended")
def campaigns_ended_notify(*, campaigns: list[Campaign], ended_at: datetime, by, **kwargs) -> int:
    """``campaign.ended``, in the transaction that ends ``campaigns``: once for each mode a
    campaign was evaluated in (it has a counter there: a campaign only ever sent test events is
    a test campaign, heard by test endpoints only), in live if it saw no event at all."""
    counters: dict = {}
    for counter in CampaignCounter.objects.filter(campaign__in=campaigns).order_by("mode"):
        counters.setdefault(counter.campaign_id, []).append(counter)
    notices = [
        _notice(
            campaign,
            counter,
            campaign.budget,
            ended_at=ended_at.isoformat(),
            ended_by=str(by),
            ends_at=campaign.ends_at.isoformat() if campaign.ends_at else None,
        )
        for campaign in campaigns
        for counter in counters.get(campaign.pk) or [_no_counter(campaign)]
    ]
    return webhook_event_emit(event_type=WebhookEventType.CAMPAIGN_ENDED, subjects=notices)


def _no_counter(campaign: Campaign) -> CampaignCounter:
    return CampaignCounter(campaign=campaign, mode="live", reward_count=0, spent=Decimal(0))


def _notice(campaign: Campaign, counter: CampaignCounter, budget, **details) -> CampaignNotice:
    return CampaignNotice(
        campaign, counter.mode, budget, counter.spent, counter.reward_count, details
    )
