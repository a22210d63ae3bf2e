"""Every figure a report shows, read from the aggregates (``models``) in one mode.

A report covers local days of the partnership's current time zone: ``[start, end)`` in UTC,
an exact union of 15-minute buckets. Amounts are per unit, never added across units.
"""

import math
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from campaigns.models import Campaign
from config.errors import ApplicationError, ErrorCode, field_error
from partnerships.models import Partnership

from ..models import CampaignCounter, Reward, RewardAdjustment
from .calendar import local_midnight
from .days import MONEY_METRICS, Figure, day_figures, fetch_all
from .maintain import bucket_of, reports_received_through
from .models import DECISION_PREFIX, LIABILITY_SIGN, Metric, Movement

MAX_REPORT_DAYS = 366
MODES = ("live", "test")
LOW_BUDGET_SHARE = Decimal("0.05")  # less than 5% left
LOW_BUDGET_DAYS = 7  # or projected to run out within a week
BURN_WINDOW_DAYS = 7
PROJECTION_HORIZON_DAYS = 3650  # a budget that would last longer has no exhaustion date


@dataclass(frozen=True)
class ReportScope:
    """What a report covers: one partnership, one mode, local days, optional filters."""

    partnership: Partnership
    mode: str
    first_day: date
    last_day: date
    campaign_ids: frozenset = frozenset()
    trigger_ids: frozenset = frozenset()

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.partnership.time_zone)

    @cached_property
    def start(self) -> datetime:
        return local_midnight(self.first_day, self.zone)

    @cached_property
    def end(self) -> datetime:
        return local_midnight(self.last_day + timedelta(days=1), self.zone)

    @property
    def days(self) -> list[date]:
        count = (self.last_day - self.first_day).days + 1
        return [self.first_day + timedelta(days=n) for n in range(count)]

    @cached_property
    def day_starts(self) -> list[datetime]:
        """Each day's first moment, then the end: the bounds a bucket's day is looked up in
        (from Python's tz data only, so the database's cannot disagree)."""
        return [local_midnight(day, self.zone) for day in self.days] + [self.end]


def report_scope(
    *,
    partnership: Partnership,
    mode: str,
    first_day: date,
    last_day: date,
    campaign_ids: Iterable = (),
    trigger_ids: Iterable = (),
) -> ReportScope:
    """A scope, or a 422 for a range that ends before it starts or is too long."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if last_day < first_day:
        raise ApplicationError(
            422,
            ErrorCode.INVALID_RANGE,
            "The range ends before it starts",
            errors=[field_error("to", "before_from", "`to` must not be before `from`")],
        )
    if (last_day - first_day).days + 1 > MAX_REPORT_DAYS:
        raise ApplicationError(
            422,
            ErrorCode.RANGE_TOO_LONG,
            f"A report covers at most {MAX_REPORT_DAYS} days",
            errors=[field_error("to", "max_days", f"At most {MAX_REPORT_DAYS} days from `from`")],
        )
    if first_day <= date.min + timedelta(days=1) or last_day >= date.max - timedelta(days=1):
        raise ApplicationError(
            422,
            ErrorCode.INVALID_RANGE,
            "The range is out of the calendar's bounds",
            errors=[field_error("from", "out_of_range", "Use dates between years 1 and 9999")],
        )
    return ReportScope(
        partnership,
        mode,
        first_day,
        last_day,
        frozenset(uuid.UUID(str(pk)) for pk in campaign_ids),
        frozenset(int(pk) for pk in trigger_ids),
    )


# --- Value objects ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Money:
    """One unit's figures."""

    unit: str
    issued_count: int = 0
    issued_amount: Decimal = Decimal(0)
    reversed_count: int = 0
    reversed_amount: Decimal = Decimal(0)

    @property
    def net_amount(self) -> Decimal:
        return self.issued_amount - self.reversed_amount


@dataclass(frozen=True)
class Activity:
    events_received: int = 0
    events_evaluated: int = 0
    events_rewarded: int = 0
    events_failed: int = 0

    @property
    def conversion(self) -> Decimal | None:
        """Events rewarded per event evaluated (None before any was evaluated)."""
        if not self.events_evaluated:
            return None
        return Decimal(self.events_rewarded) / Decimal(self.events_evaluated)


@dataclass(frozen=True)
class DayRow:
    day: date
    money: tuple[Money, ...]
    activity: Activity


@dataclass(frozen=True)
class CampaignRow:
    campaign_id: uuid.UUID
    name: str
    money: tuple[Money, ...]
    decisions: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Totals:
    money: tuple[Money, ...]
    activity: Activity
    unique_users: int | None  # None when not asked for (it scans the range's rewards)
    decisions: dict[str, int]
    received_through: datetime | None


# --- Reading the figures ---------------------------------------------------------------------

# What rows are grouped by: the local day (its 1-based index in the scope's days), the
# campaign, or nothing.
_LOCAL_DAY, _CAMPAIGN, _ALL = "day", "campaign", "all"


def _group(figure: Figure, group: str):
    if group == _LOCAL_DAY:
        return figure.day
    return figure.campaign_id if group == _CAMPAIGN else 1


def _figures(scope: ReportScope) -> list[Figure]:
    """The scope's figures per day, its trigger filter applied (``days.day_figures``): read
    once per scope, so that a page's totals and rows come from one reading."""
    if "_figures" not in scope.__dict__:
        figures = day_figures(scope)
        if scope.trigger_ids:
            figures = [f for f in figures if f.trigger_id in scope.trigger_ids]
        scope.__dict__["_figures"] = figures
    return scope.__dict__["_figures"]


def _money_rows(scope: ReportScope, group: str) -> list[tuple]:
    """(group value, unit, kind, count, amount) rows of the scope's campaigns."""
    sums: dict[tuple, list] = {}
    for figure in _figures(scope):
        if figure.metric not in MONEY_METRICS:
            continue
        if scope.campaign_ids and figure.campaign_id not in scope.campaign_ids:
            continue
        key = (_group(figure, group), figure.unit, figure.metric)
        entry = sums.setdefault(key, [0, Decimal(0)])
        entry[0] += figure.count
        entry[1] += figure.amount
    return [(*key, count, amount) for key, (count, amount) in sums.items()]


def _activity_rows(scope: ReportScope, group: str) -> list[tuple]:
    """(group value, campaign id, metric, count) rows: events of the scope's triggers and
    decisions of its campaigns; with a campaign filter, events of the triggers these campaigns
    judged events of in the range (not their current trigger: moving a campaign must not
    rewrite its past)."""
    figures = [f for f in _figures(scope) if f.metric not in MONEY_METRICS]
    if scope.campaign_ids:
        judged = {f.trigger_id for f in figures if f.campaign_id in scope.campaign_ids}
        figures = [
            f
            for f in figures
            if f.campaign_id in scope.campaign_ids
            or (f.campaign_id is None and f.trigger_id in judged)
        ]
    counts: dict[tuple, int] = defaultdict(int)
    for figure in figures:
        counts[(_group(figure, group), figure.campaign_id, figure.metric)] += figure.count
    return [(*key, count) for key, count in counts.items()]


class _MoneyTally:
    def __init__(self, default_unit: str) -> None:
        self.default_unit = default_unit
        self.figures: dict[str, dict] = {}

    def add(self, unit: str, kind: str, count: int, amount: Decimal) -> None:
        figures = self.figures.setdefault(unit, {})
        before = figures.get(kind, (0, Decimal(0)))
        figures[kind] = (before[0] + count, before[1] + amount)

    def money(self) -> tuple[Money, ...]:
        units = set(self.figures) | {self.default_unit}
        return tuple(
            Money(
                unit,
                *self.figures.get(unit, {}).get(Movement.ISSUED, (0, Decimal(0))),
                *self.figures.get(unit, {}).get(Movement.REVERSED, (0, Decimal(0))),
            )
            for unit in sorted(units)
        )


def _activity(metrics: dict[str, int], campaign_filtered: bool) -> Activity:
    """With a campaign filter, events evaluated and rewarded are those campaigns' decisions."""
    if campaign_filtered:
        evaluated = sum(n for m, n in metrics.items() if m.startswith(DECISION_PREFIX))
        rewarded = metrics.get(DECISION_PREFIX + "rewarded", 0)
    else:
        evaluated = metrics.get(Metric.EVENT_EVALUATED, 0)
        rewarded = metrics.get(Metric.EVENT_REWARDED, 0)
    return Activity(
        metrics.get(Metric.EVENT_RECEIVED, 0),
        evaluated,
        rewarded,
        metrics.get(Metric.EVENT_FAILED, 0),
    )


def _decisions(metrics: dict[str, int]) -> dict[str, int]:
    return {
        metric.removeprefix(DECISION_PREFIX): count
        for metric, count in sorted(metrics.items())
        if metric.startswith(DECISION_PREFIX)
    }


def report_days(*, scope: ReportScope) -> list[DayRow]:
    """One row per local day of the scope, days without activity included."""
    days = scope.days
    tallies = {day: _MoneyTally(scope.partnership.reward_unit) for day in days}
    for index, unit, kind, count, amount in _money_rows(scope, _LOCAL_DAY):
        tallies[days[index - 1]].add(unit, kind, count, amount)
    metrics: dict[date, dict[str, int]] = {day: defaultdict(int) for day in days}
    for index, _, metric, count in _activity_rows(scope, _LOCAL_DAY):
        metrics[days[index - 1]][metric] += count
    filtered = bool(scope.campaign_ids)
    return [
        DayRow(day, tallies[day].money(), _activity(metrics[day], filtered)) for day in scope.days
    ]


def report_outcomes_by_day(*, scope: ReportScope) -> list[tuple[date, dict[str, int]]]:
    """Decisions by outcome, per local day."""
    days = scope.days
    metrics: dict[date, dict[str, int]] = {day: defaultdict(int) for day in days}
    for index, campaign_id, metric, count in _activity_rows(scope, _LOCAL_DAY):
        if campaign_id is not None:
            metrics[days[index - 1]][metric] += count
    return [(day, _decisions(metrics[day])) for day in scope.days]


def report_campaigns(*, scope: ReportScope) -> list[CampaignRow]:
    """Per campaign: money and decisions; campaigns with any activity in the scope, and the
    scope's named campaigns."""
    tallies: dict[uuid.UUID, _MoneyTally] = defaultdict(
        lambda: _MoneyTally(scope.partnership.reward_unit)
    )
    for campaign_id, unit, kind, count, amount in _money_rows(scope, _CAMPAIGN):
        tallies[campaign_id].add(unit, kind, count, amount)
    decisions: dict[uuid.UUID, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for _, campaign_id, metric, count in _activity_rows(scope, _ALL):
        if campaign_id is not None and (
            not scope.campaign_ids or campaign_id in scope.campaign_ids
        ):
            decisions[campaign_id][metric] += count
    ids = set(tallies) | set(decisions) | set(scope.campaign_ids)
    names = dict(
        Campaign.objects.filter(pk__in=ids, partnership=scope.partnership).values_list("id", "name")
    )
    rows = [
        CampaignRow(
            campaign_id,
            names.get(campaign_id, "(deleted campaign)"),
            tallies[campaign_id].money(),
            _decisions(decisions[campaign_id]),
        )
        for campaign_id in ids
    ]
    return sorted(rows, key=lambda row: (row.name, str(row.campaign_id)))


def report_totals(*, scope: ReportScope, unique_users: bool = True) -> Totals:
    metrics: dict[str, int] = defaultdict(int)
    for _, _, metric, count in _activity_rows(scope, _ALL):
        metrics[metric] += count
    return Totals(
        report_totals_money(scope=scope),
        _activity(metrics, bool(scope.campaign_ids)),
        report_unique_users(scope=scope) if unique_users else None,
        _decisions(metrics),
        reports_received_through(),
    )


def _rewards_in(scope: ReportScope) -> QuerySet[Reward]:
    rewards = Reward.objects.filter(
        partnership=scope.partnership,
        mode=scope.mode,
        issued_at__gte=scope.start,
        issued_at__lt=scope.end,
    )
    if scope.campaign_ids:
        rewards = rewards.filter(campaign_id__in=scope.campaign_ids)
    if scope.trigger_ids:
        rewards = rewards.filter(trigger_event__trigger_id__in=scope.trigger_ids)
    return rewards


def report_unique_users(*, scope: ReportScope) -> int:
    """Users with at least one reward issued in the scope, counted exactly (not per day)."""
    return _rewards_in(scope).values("end_user_id").distinct().count()


def report_top_users(*, scope: ReportScope, limit: int = 10) -> list[dict]:
    """The users issued the most in the scope: external id, rewards, amount (per unit)."""
    return list(
        _rewards_in(scope)
        .values("end_user_id", "end_user__external_user_id", "unit")
        .annotate(rewards=Count("id"), amount=Sum("amount"))
        .order_by("-amount", "end_user__external_user_id")[:limit]
    )


# --- Liability --------------------------------------------------------------------------------

_LIABILITY_BUCKETS = """
SELECT unit, kind, sum(amount) FROM rewards_moneybucket
 WHERE partnership_id = %(partnership)s AND mode = %(mode)s AND bucket < %(bucket)s
 GROUP BY 1, 2
"""


def liability_at(*, partnership: Partnership, mode: str, at: datetime) -> dict[str, Decimal]:
    """What is owed per unit as of ``at`` (aware): issued at or before it, less what was
    reversed at or before it. Whole buckets before ``at``'s bucket, and the rows of its own
    bucket up to it, read in one snapshot. (A moment within the last second or so is
    provisional: a batch stamps its rewards' time just before it commits.)"""
    if timezone.is_naive(at):
        raise ValueError("liability_at needs an aware datetime")
    if connection.in_atomic_block:
        return _liability(partnership, mode, at)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        return _liability(partnership, mode, at)


def _liability(partnership: Partnership, mode: str, at: datetime) -> dict[str, Decimal]:
    bucket = bucket_of(at)
    owed: dict[str, Decimal] = defaultdict(Decimal)
    params = {"partnership": partnership.pk, "mode": mode, "bucket": bucket}
    for unit, kind, amount in fetch_all(_LIABILITY_BUCKETS, params):
        owed[unit] += LIABILITY_SIGN[kind] * amount
    recent = Reward.objects.filter(partnership=partnership, mode=mode)
    for unit, amount in (
        recent.filter(issued_at__gte=bucket, issued_at__lte=at)
        .values_list("unit")
        .annotate(total=Sum("amount"))
    ):
        owed[unit] += amount
    for unit, amount in (
        RewardAdjustment.objects.filter(
            reward__partnership=partnership,
            reward__mode=mode,
            created_at__gte=bucket,
            created_at__lte=at,
        )
        .values_list("reward__unit")
        .annotate(total=Sum("amount"))
    ):
        owed[unit] -= amount
    if partnership.reward_unit not in owed:
        owed[partnership.reward_unit] = Decimal(0)
    return dict(sorted(owed.items()))


# --- Budgets -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetState:
    campaign_id: uuid.UUID
    name: str
    budget: Decimal | None
    spent: Decimal
    left: Decimal | None
    burn_per_day: Decimal  # net spend per day over the last BURN_WINDOW_DAYS local days
    projected_exhaustion: date | None
    low: bool

    @property
    def share_left(self) -> Decimal | None:
        if not self.budget:
            return None
        return max(self.left, Decimal(0)) / self.budget


def campaign_budget_state(
    *, campaign: Campaign, mode: str, today: date | None = None, now: datetime | None = None
) -> BudgetState:
    """Spent (the live counter), what is left, the burn rate (net issued in the partnership's
    unit over the 7 x 24 hours before ``now``, per day) and the day the budget runs out at that
    rate (none beyond ten years). ``today`` alone means the end of that local day."""
    partnership = campaign.partnership
    zone = ZoneInfo(partnership.time_zone)
    if now is None:
        now = local_midnight(today + timedelta(days=1), zone) if today else timezone.now()
    if today is None:
        today = now.astimezone(zone).date()
    counter = CampaignCounter.objects.filter(campaign=campaign, mode=mode).first()
    spent = counter.spent if counter else Decimal(0)
    burn = max(_net_issued(campaign, mode, now), Decimal(0)) / BURN_WINDOW_DAYS
    left = None if campaign.budget is None else campaign.budget - spent
    projected = None
    if left is not None and burn > 0:
        days_left = max(0, math.ceil(left / burn))
        if days_left <= PROJECTION_HORIZON_DAYS:
            projected = today + timedelta(days=days_left)
    low = False
    if campaign.budget is not None and left is not None:
        low = left < campaign.budget * LOW_BUDGET_SHARE or (
            projected is not None and projected <= today + timedelta(days=LOW_BUDGET_DAYS)
        )
    return BudgetState(
        campaign.pk, campaign.name, campaign.budget, spent, left, burn, projected, low
    )


_NET_ISSUED = """
SELECT coalesce(sum(CASE kind WHEN 'issued' THEN amount ELSE -amount END), 0)
  FROM rewards_moneybucket
 WHERE partnership_id = %(partnership)s AND mode = %(mode)s AND campaign_id = %(campaign)s
   AND unit = %(unit)s AND bucket >= %(start)s AND bucket < %(end)s
"""


def _net_issued(campaign: Campaign, mode: str, now: datetime) -> Decimal:
    """Issued less reversed in the partnership's unit over the burn window before ``now``."""
    params = {
        "partnership": campaign.partnership_id,
        "mode": mode,
        "campaign": campaign.pk,
        "unit": campaign.partnership.reward_unit,
        "start": bucket_of(now - timedelta(days=BURN_WINDOW_DAYS)),
        "end": now,
    }
    return fetch_all(_NET_ISSUED, params)[0][0]


# The current burn rate (campaign.budget_low and Pilot's notice): the faster of these windows'.
BURN_RATE_WINDOWS = (timedelta(hours=1), timedelta(hours=24))
_NET_ISSUED_PER_BUCKET = """
SELECT bucket, sum(CASE kind WHEN 'issued' THEN amount ELSE -amount END)
  FROM rewards_moneybucket
 WHERE partnership_id = %(partnership)s AND mode = %(mode)s AND campaign_id = %(campaign)s
   AND unit = %(unit)s AND bucket >= %(start)s AND bucket <= %(now)s
 GROUP BY bucket
"""


def campaign_burn_per_hour(*, campaign: Campaign, mode: str, now: datetime) -> Decimal:
    """What the campaign spends per hour now: net issued (issued less reversed) in the
    partnership's unit, at the faster of the last hour's and the last day's rates
    (``BURN_RATE_WINDOWS``), each over its 15-minute buckets from the first one it touches to
    ``now``. A surge shows within the hour; a campaign that pays in bursts keeps its day's
    rate between them. Never negative."""
    starts = [bucket_of(now - window) for window in BURN_RATE_WINDOWS]
    params = {
        "partnership": campaign.partnership_id,
        "mode": mode,
        "campaign": campaign.pk,
        "unit": campaign.partnership.reward_unit,
        "start": min(starts),
        "now": now,
    }
    rows = fetch_all(_NET_ISSUED_PER_BUCKET, params)
    rates = [Decimal(0)]
    for start in starts:
        net = sum((amount for bucket, amount in rows if bucket >= start), Decimal(0))
        rates.append(net * 3600 / Decimal(str((now - start).total_seconds())))
    return max(rates)


def report_totals_money(*, scope: ReportScope) -> tuple[Money, ...]:
    """Only the money of a scope (cheaper than the totals)."""
    tally = _MoneyTally(scope.partnership.reward_unit)
    for _, unit, kind, count, amount in _money_rows(scope, _ALL):
        tally.add(unit, kind, count, amount)
    return tally.money()


def _running(partnerships) -> QuerySet[Campaign]:
    return Campaign.objects.filter(
        partnership__in=partnerships, status=Campaign.Status.ACTIVE
    ).select_related("partnership")


def campaigns_low_on_budget(*, partnerships, mode: str) -> list[BudgetState]:
    """Active campaigns with a budget that have < 5% left or would run out within a week."""
    states = [
        campaign_budget_state(campaign=campaign, mode=mode)
        for campaign in _running(partnerships).filter(budget__isnull=False)
    ]
    return sorted(
        (state for state in states if state.low),
        key=lambda s: (s.projected_exhaustion or date.max, s.name),
    )


def campaigns_ending_soon(*, partnerships, days: int = 7) -> QuerySet[Campaign]:
    """Active campaigns whose end is within ``days`` from now."""
    now = timezone.now()
    return (
        _running(partnerships)
        .filter(Q(ends_at__gte=now) & Q(ends_at__lte=now + timedelta(days=days)))
        .order_by("ends_at")
    )
