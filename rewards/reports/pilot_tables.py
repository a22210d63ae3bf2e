"""What Pilot's report pages show, as plain values: table cells (text and the link to the rows
behind the number), chart data (Chart.js JSON) and the daily table the CSV repeats.

The links carry explicit bounds: a local day of the partnership's zone, e.g.
``issued_at__gte=2026-11-30T00:00:00+01:00&issued_at__lt=2026-12-01T00:00:00+01:00``.
"""

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.urls import reverse
from django.utils.formats import date_format

from campaigns.decisions import Outcome, outcome_label
from rewards.selectors import campaign_adjustments

from .pilot_filters import local_today
from .selectors import (
    BudgetState,
    DayRow,
    Money,
    ReportScope,
    Totals,
    local_day_bounds,
    report_top_users,
)

ISSUED_COLOR = "#7c3aed"
REVERSED_COLOR = "#f97316"
LEFT_COLOR = "#0ea5e9"
PROJECTED_COLOR = "#94a3b8"
ADJUSTMENTS_SHOWN = 50
# Chart.js options of the report charts (unfold's defaults overlap the bars and hide the legend
# and the y axis): bars side by side, a legend, amounts on the y axis, no animation.
CHART_OPTIONS = json.dumps(
    {
        "responsive": True,
        "maintainAspectRatio": False,
        "animation": False,
        "datasets": {
            "bar": {"maxBarThickness": 16, "borderRadius": 3},
            "line": {"borderWidth": 2, "pointRadius": 0, "spanGaps": False},
        },
        "plugins": {"legend": {"display": True, "align": "end"}},
        "scales": {"y": {"beginAtZero": True}, "x": {"ticks": {"maxTicksLimit": 16}}},
    }
)


@dataclass(frozen=True)
class Cell:
    text: str
    url: str | None = None
    figure: str = ""  # the page's data-figure name, e.g. "day:2026-11-30:Points:issued_count"


@dataclass(frozen=True)
class DailyTable:
    header: list[str]
    keys: list[str]  # one per column: the page's data-figure names
    rows: list[list[Cell]] = field(default_factory=list)

    @property
    def csv_header(self) -> list[str]:
        return self.header

    @property
    def csv_rows(self) -> list[list[str]]:
        return [[cell.text for cell in row] for row in self.rows]


# --- Formats ----------------------------------------------------------------------------------


def amount_text(amount: Decimal, places: int) -> str:
    """Exact: at least the partnership's decimal places, never a digit dropped."""
    step = Decimal(1).scaleb(-places)
    shown = amount.quantize(step)
    return str(shown if shown == amount else amount.normalize())


def conversion_text(conversion: Decimal | None) -> str:
    return "—" if conversion is None else f"{conversion * 100:.1f}%"


def local_text(at: datetime, zone: ZoneInfo) -> str:
    return date_format(at.astimezone(zone), "Y-m-d H:i T")


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """A local day's [start, end), shown in its zone (offsets included in links)."""
    start, end = local_day_bounds(day, zone)
    return start.astimezone(zone), end.astimezone(zone)


# --- Links to the rows behind a number --------------------------------------------------------


def _url(name: str, params: dict) -> str:
    return f"{reverse(name)}?{urlencode(params)}"


def _only(ids: frozenset) -> object | None:
    return next(iter(ids)) if len(ids) == 1 else None


def _money_rows_url(
    name: str, scope: ReportScope, start: datetime, end: datetime, at: str, via: str = ""
) -> str:
    """A changelist of rewards (``via=""``) or of reversals (``via="reward__"``) in the scope,
    with ``at`` (their time field) in [start, end)."""
    params = {
        f"{via}partnership__id__exact": scope.partnership.pk,
        f"{via}mode__exact": scope.mode,
        f"{at}__gte": start.isoformat(),
        f"{at}__lt": end.isoformat(),
    }
    if campaign := _only(scope.campaign_ids):
        params[f"{via}campaign__id__exact"] = campaign
    if trigger := _only(scope.trigger_ids):
        params[f"{via}campaign__trigger__id__exact"] = trigger
    return _url(name, params)


def rewards_url(scope: ReportScope, start: datetime, end: datetime) -> str:
    """The Reward changelist: the scope's rewards issued in [start, end)."""
    return _money_rows_url("admin:rewards_reward_changelist", scope, start, end, "issued_at")


def adjustments_url(scope: ReportScope, start: datetime, end: datetime) -> str:
    """The reversals (adjustments) of the scope's rewards made in [start, end)."""
    return _money_rows_url(
        "admin:rewards_rewardadjustment_changelist", scope, start, end, "created_at", "reward__"
    )


def events_url(scope: ReportScope, start: datetime, end: datetime) -> str | None:
    """The events evaluated in [start, end); None for a campaign's report (events belong to
    triggers, not campaigns)."""
    if scope.campaign_ids:
        return None
    params = {
        "partnership__id__exact": scope.partnership.pk,
        "mode__exact": scope.mode,
        "processed_at__gte": start.isoformat(),
        "processed_at__lt": end.isoformat(),
    }
    if trigger := _only(scope.trigger_ids):
        params["trigger__id__exact"] = trigger
    return _url("admin:triggers_triggerevent_changelist", params)


# --- Totals -----------------------------------------------------------------------------------


def _money_cells(
    scope: ReportScope, money: Money, start: datetime, end: datetime, prefix: str
) -> list[Cell]:
    """Issued, reversed and net of one unit, each count (but 0) linked to its rows."""
    places = scope.partnership.reward_decimal_places
    issued = rewards_url(scope, start, end) if money.issued_count else None
    reversed_ = adjustments_url(scope, start, end) if money.reversed_count else None
    texts = {
        "issued_count": (str(money.issued_count), issued),
        "issued_amount": (amount_text(money.issued_amount, places), None),
        "reversed_count": (str(money.reversed_count), reversed_),
        "reversed_amount": (amount_text(money.reversed_amount, places), None),
        "net_amount": (amount_text(money.net_amount, places), None),
    }
    return [Cell(text, url, f"{prefix}:{money.unit}:{key}") for key, (text, url) in texts.items()]


def totals_view(*, scope: ReportScope, totals: Totals) -> dict:
    start, end = scope.start.astimezone(scope.zone), scope.end.astimezone(scope.zone)
    activity = totals.activity
    return {
        "money": [
            (money.unit, _money_cells(scope, money, start, end, "total")) for money in totals.money
        ],
        "events_received": activity.events_received,
        "events_evaluated": Cell(
            str(activity.events_evaluated), events_url(scope, start, end), "total:events_evaluated"
        ),
        "events_rewarded": activity.events_rewarded,
        "events_failed": activity.events_failed,
        "conversion": conversion_text(activity.conversion),
        "unique_users": totals.unique_users,
        "received_through": (
            local_text(totals.received_through, scope.zone)
            if totals.received_through
            else "— (the counting job has not run yet)"
        ),
        "range": f"{scope.first_day} to {scope.last_day} ({scope.zone.key})",
    }


def outcome_rows(decisions: dict[str, int]) -> list[dict]:
    """Decisions by outcome, in words, most frequent first; every known outcome listed."""
    counts = {str(outcome): 0 for outcome in Outcome} | dict(decisions)
    total = sum(counts.values())
    rows = [
        {
            "code": code,
            "label": outcome_label(code),
            "count": count,
            "share": f"{100 * count / total:.1f}%" if total else "—",
        }
        for code, count in counts.items()
    ]
    return sorted(rows, key=lambda row: (-row["count"], row["label"]))


def campaign_row(*, scope: ReportScope, row, query) -> dict:
    places = scope.partnership.reward_decimal_places
    url = reverse("pilot-reports-campaign", args=[row.campaign_id])
    return {
        "name": row.name,
        "url": f"{url}?{query(partnership='', campaign='', trigger='')}",
        "money": [
            {
                "unit": money.unit,
                "issued_count": money.issued_count,
                "issued_amount": amount_text(money.issued_amount, places),
                "reversed_amount": amount_text(money.reversed_amount, places),
                "net_amount": amount_text(money.net_amount, places),
            }
            for money in row.money
        ],
        "decisions": sum(row.decisions.values()),
        "rewarded": row.decisions.get(Outcome.REWARDED, 0),
    }


# --- The daily table, its chart, its CSV ------------------------------------------------------

MONEY_COLUMNS = {
    "issued_count": "Issued",
    "issued_amount": "Issued amount",
    "reversed_count": "Reversed",
    "reversed_amount": "Reversed amount",
    "net_amount": "Net amount",
}
EVENT_COLUMNS = {
    "events_received": "Events received",
    "events_evaluated": "Events evaluated",
    "events_rewarded": "Events rewarded",
    "conversion": "Conversion",
}


def daily_table(*, scope: ReportScope, days: list[DayRow]) -> DailyTable:
    """One row per day and unit. A campaign's report has no event columns (events belong to
    triggers); with several units the events stand on the first unit's row only."""
    with_events = not scope.campaign_ids
    columns = {
        "day": "Day",
        "unit": "Unit",
        **MONEY_COLUMNS,
        **(EVENT_COLUMNS if with_events else {}),
    }
    table = DailyTable(list(columns.values()), list(columns))
    for row in days:
        start, end = day_bounds(row.day, scope.zone)
        for index, money in enumerate(row.money):
            prefix = f"day:{row.day.isoformat()}"
            line = [
                Cell(row.day.isoformat(), None, f"{prefix}:{money.unit}:day"),
                Cell(money.unit, None, f"{prefix}:{money.unit}:unit"),
                *_money_cells(scope, money, start, end, prefix),
            ]
            if with_events:
                events = _event_cells(scope, row, start, end, f"{prefix}:{money.unit}")
                line += events if index == 0 else [Cell("", None, c.figure) for c in events]
            table.rows.append(line)
    return table


def _event_cells(
    scope: ReportScope, row: DayRow, start: datetime, end: datetime, prefix: str
) -> list[Cell]:
    activity = row.activity
    return [
        Cell(str(activity.events_received), None, f"{prefix}:events_received"),
        Cell(
            str(activity.events_evaluated),
            events_url(scope, start, end) if activity.events_evaluated else None,
            f"{prefix}:events_evaluated",
        ),
        Cell(str(activity.events_rewarded), None, f"{prefix}:events_rewarded"),
        Cell(conversion_text(activity.conversion), None, f"{prefix}:conversion"),
    ]


def daily_chart(*, days: list[DayRow]) -> str:
    """Issued vs reversed amounts per day, one pair of bars per unit (Chart.js data)."""
    units = list(dict.fromkeys(money.unit for row in days for money in row.money))
    datasets = []
    for unit in units:
        by_day = [{m.unit: m for m in row.money}.get(unit) for row in days]
        datasets += [
            {
                "label": f"Issued ({unit})",
                "data": [float(m.issued_amount) if m else 0 for m in by_day],
                "backgroundColor": ISSUED_COLOR,
            },
            {
                "label": f"Reversed ({unit})",
                "data": [float(m.reversed_amount) if m else 0 for m in by_day],
                "backgroundColor": REVERSED_COLOR,
            },
        ]
    return json.dumps({"labels": [row.day.isoformat() for row in days], "datasets": datasets})


def net_by_unit(days: list[DayRow]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for row in days:
        for money in row.money:
            totals[money.unit] = totals.get(money.unit, Decimal(0)) + money.net_amount
    return totals


# --- A campaign: budget, burn-down, top users, reversals -------------------------------------


def budget_view(*, scope: ReportScope, state: BudgetState) -> dict:
    places = scope.partnership.reward_decimal_places
    view = {
        "campaign_id": state.campaign_id,
        "name": state.name,
        "budget": None if state.budget is None else amount_text(state.budget, places),
        "spent": amount_text(state.spent, places),
        "left": None if state.left is None else amount_text(state.left, places),
        "burn_per_day": str(state.burn_per_day.quantize(Decimal(1).scaleb(-places))),
        "projected_exhaustion": state.projected_exhaustion,
        "low": state.low,
        "percent_spent": None,
    }
    if state.budget:
        view["percent_spent"] = min(100, round(100 * state.spent / state.budget))
    return view


def burn_down(
    *,
    scope: ReportScope,
    state: BudgetState,
    days: list[DayRow],
    later: dict[str, Decimal] | None,
) -> str | None:
    """The budget left at the end of each day (Chart.js data), and from today a straight line
    to the projected exhaustion date at the current burn rate. None without a budget, or when
    the range ended more than a year ago (``later`` is None)."""
    if state.budget is None or later is None:
        return None
    unit = scope.partnership.reward_unit
    today = local_today(scope.partnership)
    spent = state.spent - later.get(unit, Decimal(0))  # spent at the end of the last day
    left_by_day: dict[date, float | None] = {}
    for row in reversed(days):
        net = sum((m.net_amount for m in row.money if m.unit == unit), Decimal(0))
        left_by_day[row.day] = None if row.day > today else float(state.budget - spent)
        spent -= net
    labels = [row.day for row in days]
    exhaustion = state.projected_exhaustion
    if exhaustion and labels and labels[-1] < exhaustion <= labels[-1] + timedelta(days=90):
        labels += [
            labels[-1] + timedelta(days=n + 1) for n in range((exhaustion - labels[-1]).days)
        ]
    projected = [None] * len(labels)
    if exhaustion and state.left is not None and today in labels:
        span = max((exhaustion - today).days, 1)
        for index, day in enumerate(labels):
            if today <= day <= exhaustion:
                projected[index] = float(state.left) * (1 - (day - today).days / span)
    data = {
        "labels": [day.isoformat() for day in labels],
        "datasets": [
            {
                "label": f"Budget left ({unit})",
                "data": [left_by_day.get(day) for day in labels],
                "borderColor": LEFT_COLOR,
                "backgroundColor": LEFT_COLOR,
            },
            {
                "label": "Projected at the current burn rate",
                "data": projected,
                "borderColor": PROJECTED_COLOR,
                "backgroundColor": PROJECTED_COLOR,
                "borderDash": [6, 4],
            },
        ],
    }
    return json.dumps(data)


def top_users(*, scope: ReportScope) -> list[dict]:
    places = scope.partnership.reward_decimal_places
    rows = report_top_users(scope=scope)
    start, end = scope.start.astimezone(scope.zone), scope.end.astimezone(scope.zone)
    base = rewards_url(scope, start, end)
    return [
        {
            "user": row["end_user__external_user_id"],
            "rewards": row["rewards"],
            "amount": amount_text(row["amount"], places),
            "unit": row["unit"],
            "url": f"{base}&{urlencode({'end_user__exact': row['end_user_id']})}",
        }
        for row in rows
    ]


def reversals(*, scope: ReportScope) -> dict:
    adjustments = campaign_adjustments(
        campaign_id=_only(scope.campaign_ids), mode=scope.mode, start=scope.start, end=scope.end
    )
    places = scope.partnership.reward_decimal_places
    shown = list(adjustments[:ADJUSTMENTS_SHOWN])
    start, end = scope.start.astimezone(scope.zone), scope.end.astimezone(scope.zone)
    return {
        "rows": [
            {
                "at": local_text(adjustment.created_at, scope.zone),
                "user": adjustment.reward.end_user.external_user_id,
                "amount": amount_text(adjustment.amount, places),
                "unit": adjustment.reward.unit,
                "reason": adjustment.reversal.reason,
                "reward_url": reverse("admin:rewards_reward_change", args=[adjustment.reward_id]),
            }
            for adjustment in shown
        ],
        "more": len(shown) == ADJUSTMENTS_SHOWN,
        "all_url": adjustments_url(scope, start, end),
    }
