import base64
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import orjson
from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.selectors import trigger_event_decisions
from config.errors import field_error, validation_error
from partnerships.models import EndUser
from triggers.models import TriggerEvent
from triggers.selectors import trigger_event_get

from .models import CampaignCounter, Reversal, Reward, RewardAdjustment, WebhookDelivery
from .reports.selectors import campaign_burn_per_hour


def trigger_event_get_with_rewards(
    *, partnership_id: uuid.UUID, mode: str, event_id: str
) -> TriggerEvent | None:
    event = trigger_event_get(partnership_id=partnership_id, mode=mode, event_id=event_id)
    if event is not None:
        event.decision_list = trigger_event_decisions(event=event)
        event.reward_list = list(
            Reward.objects.filter(trigger_event=event)
            .select_related("campaign", "partnership")
            .order_by("issued_at", "id")
        )
        event.reversal_list = list(
            Reversal.objects.filter(trigger_event=event)
            .prefetch_related("adjustments__reward__campaign", "adjustments__reward__partnership")
            .order_by("created_at")
        )
    return event


def end_user_get(*, partnership_id: uuid.UUID, external_user_id: str) -> EndUser | None:
    """The user with this external id; never an erased one (its pseudonym names nothing)."""
    return EndUser.objects.filter(
        partnership_id=partnership_id, external_user_id=external_user_id, erased_at__isnull=True
    ).first()


@dataclass(frozen=True)
class RewardPage:
    rewards: list[Reward]
    next_cursor: str | None


def _encode_cursor(reward: Reward) -> str:
    raw = orjson.dumps([reward.issued_at.isoformat(), str(reward.id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        issued_at, reward_id = orjson.loads(raw)
        if not (isinstance(issued_at, str) and isinstance(reward_id, str)):
            raise ValueError("not a cursor")
        at = datetime.fromisoformat(issued_at)
        if at.tzinfo is None:
            raise ValueError("not a cursor")
        return at, uuid.UUID(reward_id)
    except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
        raise validation_error([field_error("cursor", "invalid", "Not a cursor we gave")]) from exc


def reward_list_for_user(
    *,
    user: EndUser,
    mode: str,
    limit: int,
    cursor: str | None = None,
    campaign: str | None = None,
    status: str | None = None,
    issued_after: datetime | None = None,
    issued_before: datetime | None = None,
) -> RewardPage:
    """Newest first, by keyset on (issued_at, id): pages neither repeat nor skip a reward
    while new ones arrive (they land before the first page)."""
    rewards = (
        Reward.objects.filter(end_user=user, mode=mode)
        .select_related("campaign", "partnership")
        .order_by("-issued_at", "-id")
    )
    if campaign:
        by_id = Q(campaign_id=campaign) if _is_uuid(campaign) else Q()
        rewards = rewards.filter(by_id | Q(campaign__slug=campaign))
    if status:
        rewards = rewards.filter(status=status)
    if issued_after:
        rewards = rewards.filter(issued_at__gte=issued_after)
    if issued_before:
        rewards = rewards.filter(issued_at__lt=issued_before)
    if cursor:
        issued_at, reward_id = _decode_cursor(cursor)
        rewards = rewards.filter(
            Q(issued_at__lt=issued_at) | Q(issued_at=issued_at, id__lt=reward_id)
        )
    page = list(rewards[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return RewardPage(page, _encode_cursor(page[-1]) if more else None)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _user_unit_sums(*, user: EndUser, mode: str) -> list[dict]:
    """Per unit, in one mode: the user's rewards counted, their amounts and reversed amounts
    summed, each sum and their difference as exact strings at the unit's places."""
    rows = (
        Reward.objects.filter(end_user=user, mode=mode)
        .values("unit")
        .annotate(count=Count("id"), earned=Sum("amount"), reversed=Sum("reversed_amount"))
        .order_by("unit")
    )
    step = user.partnership.unit_step
    return [
        {
            "unit": row["unit"],
            "count": row["count"],
            "earned": str(row["earned"].quantize(step)),
            "reversed": str(row["reversed"].quantize(step)),
            "net": str((row["earned"] - row["reversed"]).quantize(step)),
        }
        for row in rows
    ]


def reward_balance_for_user(*, user: EndUser, mode: str) -> list[dict]:
    """Per unit: earned (all issued), reversed (clawed back) and net."""
    return [
        {"unit": s["unit"], "earned": s["earned"], "reversed": s["reversed"], "net": s["net"]}
        for s in _user_unit_sums(user=user, mode=mode)
    ]


def reversal_get(*, reversal_id: uuid.UUID) -> Reversal:
    return Reversal.objects.prefetch_related(
        "adjustments__reward__campaign", "adjustments__reward__partnership"
    ).get(pk=reversal_id)


# --- Pilot's campaign report: the reversals behind its numbers ---------------------------------


def campaign_adjustments(
    *, campaign_id: uuid.UUID, mode: str, start: datetime, end: datetime
) -> QuerySet[RewardAdjustment]:
    """The reversals (full or partial) of a campaign's rewards made in [start, end), newest
    first."""
    return (
        RewardAdjustment.objects.filter(
            reward__campaign_id=campaign_id,
            reward__mode=mode,
            created_at__gte=start,
            created_at__lt=end,
        )
        .select_related("reversal", "reward__end_user", "reward__partnership")
        .order_by("-created_at", "-id")
    )


# --- Pilot's event and user pages ------------------------------------------------------------


def trigger_event_webhook_deliveries(
    *, event: TriggerEvent, limit: int = 50
) -> QuerySet[WebhookDelivery]:
    """The webhooks sent about an event (its rewards issued or reversed, its failure): those
    of its partnership's endpoints, in its mode, since it was received, whose payload names
    it. (Deliveries have no column for the event: the endpoint's index narrows the scan.)"""
    return (
        WebhookDelivery.objects.filter(
            endpoint__partnership_id=event.partnership_id,
            mode=event.mode,
            created_at__gte=event.received_at,
            payload__data__trigger_event_id=str(event.id),
        )
        .select_related("endpoint")
        .order_by("created_at", "id")[:limit]
    )


def end_user_recent_events(*, user: EndUser, limit: int = 20) -> list[TriggerEvent]:
    """A user's latest events, both modes (the (end_user, trigger, occurred_at) index)."""
    return list(
        TriggerEvent.objects.filter(end_user=user)
        .select_related("trigger")
        .order_by("-occurred_at", "-received_at")[:limit]
    )


def end_user_recent_rewards(*, user: EndUser, limit: int = 20) -> list[Reward]:
    """A user's latest rewards, both modes (the (end_user, -issued_at) index)."""
    return list(
        Reward.objects.filter(end_user=user)
        .select_related("campaign", "partnership")
        .order_by("-issued_at", "-id")[:limit]
    )


def end_user_totals(*, user: EndUser, mode: str) -> list[dict]:
    """Per unit, in one mode: rewards issued (count, amount), reversed, and the balance."""
    return [
        {
            "unit": s["unit"],
            "rewards_count": s["count"],
            "amount": s["earned"],
            "reversed": s["reversed"],
            "balance": s["net"],
        }
        for s in _user_unit_sums(user=user, mode=mode)
    ]


# --- Budgets as partners are told about them (services/notices.py) ----------------------------

# A budget that would last longer than this has no run-out time.
RUN_OUT_HORIZON = timedelta(days=3650)


@dataclass(frozen=True)
class BudgetOutlook:
    """A campaign's budget in one mode now: what is spent, the current burn rate and when the
    budget runs out at it, and what partners were told about this budget."""

    mode: str
    budget: Decimal
    spent: Decimal
    burn_per_hour: Decimal
    runs_out_at: datetime | None  # at the current burn rate; None if it burns nothing
    exhausted_at: datetime | None  # when campaign.budget_exhausted announced this budget
    low_warned_at: datetime | None  # when campaign.budget_low announced it

    @property
    def left(self) -> Decimal:
        return max(self.budget - self.spent, Decimal(0))

    @property
    def exhausted(self) -> bool:
        return self.spent >= self.budget or self.exhausted_at is not None


def budget_runs_out_at(
    *, budget: Decimal, spent: Decimal, burn_per_hour: Decimal, now: datetime
) -> datetime | None:
    if burn_per_hour <= 0:
        return None
    hours = max(budget - spent, Decimal(0)) / burn_per_hour
    if hours * 3600 > Decimal(RUN_OUT_HORIZON.total_seconds()):
        return None
    return now + timedelta(hours=float(hours))


def budget_running_low(*, campaign: Campaign, runs_out_at: datetime | None, now: datetime) -> bool:
    """Runs out within ``CAMPAIGN_BUDGET_LOW_HOURS`` at the current burn rate, before the
    campaign's own end (a campaign that ends first never runs out)."""
    return (
        runs_out_at is not None
        and runs_out_at <= now + timedelta(hours=settings.CAMPAIGN_BUDGET_LOW_HOURS)
        and (campaign.ends_at is None or runs_out_at < campaign.ends_at)
    )


def campaign_budget_outlook(
    *, counter: CampaignCounter, campaign: Campaign, now: datetime
) -> BudgetOutlook:
    """``counter``'s budget (``campaign``'s, which must have one, its partnership loaded)."""
    budget = campaign.budget
    burn = campaign_burn_per_hour(campaign=campaign, mode=counter.mode, now=now)
    return BudgetOutlook(
        counter.mode,
        budget,
        counter.spent,
        burn,
        budget_runs_out_at(budget=budget, spent=counter.spent, burn_per_hour=burn, now=now),
        _announced(budget, counter.exhausted_budget, counter.exhausted_at),
        _announced(budget, counter.low_warned_budget, counter.low_warned_at),
    )


def _announced(budget: Decimal, announced: Decimal | None, at: datetime | None):
    """When this budget was announced: None if none was, or a smaller one (it was raised)."""
    return at if announced is not None and announced >= budget else None


def campaign_budget_outlooks(*, campaign: Campaign, now: datetime | None = None) -> list:
    """The outlook of the campaign's budget in each mode it has a counter in (Pilot's notice);
    none without a budget."""
    if campaign.budget is None:
        return []
    now = now or timezone.now()
    counters = CampaignCounter.objects.filter(campaign=campaign).order_by("mode")
    return [campaign_budget_outlook(counter=c, campaign=campaign, now=now) for c in counters]
