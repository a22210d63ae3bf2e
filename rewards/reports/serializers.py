"""A report's figures as the partner API shows them: JSON (serializers, for the docs too) and
CSV tables. Amounts are exact decimal strings per unit (``exact_amount``)."""

from decimal import ROUND_HALF_EVEN, Decimal

from rest_framework import serializers

from campaigns.decisions import Outcome
from campaigns.models import Campaign
from config.csv_output import CsvTable
from config.timestamps import DayField, TimestampField

from ..apis import ModeFilterSerializer
from ..serializers import exact_amount
from .selectors import MAX_REPORT_DAYS, Activity, CampaignRow, DayRow, Money, ReportScope, Totals

CONVERSION_STEP = Decimal("0.0001")


class FromFieldMixin:
    """``from`` is a Python keyword: a field declared as ``from_`` is named "from"."""

    def get_fields(self):
        fields = super().get_fields()
        return {("from" if name == "from_" else name): field for name, field in fields.items()}


# --- Input ----------------------------------------------------------------------------------


class ReportRangeSerializer(FromFieldMixin, ModeFilterSerializer):
    from_ = DayField(help_text="First day, inclusive: a local day in the partnership's time zone")
    to = DayField(help_text=f"Last day, inclusive; at most {MAX_REPORT_DAYS} days in all")
    campaign = serializers.CharField(
        required=False, trim_whitespace=False, help_text="Only this campaign: its id or slug"
    )
    trigger = serializers.CharField(
        required=False, trim_whitespace=False, help_text="Only this trigger's events: its name"
    )


class RewardReportFilterSerializer(ReportRangeSerializer):
    group_by = serializers.ChoiceField(choices=["day", "campaign"], default="day")
    format = serializers.ChoiceField(
        choices=["json", "csv"],
        required=False,
        help_text="csv: the rows as a CSV table (or send `Accept: text/csv`); default json",
    )
    unique_users = serializers.BooleanField(
        default=False,
        help_text="true: count the users rewarded in the range, exactly (reads the range's "
        "rewards: slower than the rest of the report); default: `unique_users` is null",
    )


class LiabilityFilterSerializer(ModeFilterSerializer):
    at = TimestampField(required=False, help_text="The moment (RFC 3339); default: now")


# --- JSON -----------------------------------------------------------------------------------


class MoneySerializer(serializers.Serializer):
    unit = serializers.CharField()
    issued_count = serializers.IntegerField()
    issued_amount = serializers.CharField(help_text="Exact decimal string")
    reversed_count = serializers.IntegerField(help_text="Reversals, partial ones included")
    reversed_amount = serializers.CharField()
    net_amount = serializers.CharField(help_text="issued_amount - reversed_amount")


class EventsSerializer(serializers.Serializer):
    events_received = serializers.IntegerField(help_text="Exact up to received_through")
    events_evaluated = serializers.IntegerField()
    events_rewarded = serializers.IntegerField(help_text="Evaluated events with >= 1 reward")
    events_failed = serializers.IntegerField()
    conversion = serializers.CharField(
        allow_null=True, help_text="events_rewarded / events_evaluated, 4 decimals; null if 0"
    )


DECISIONS = serializers.DictField(
    child=serializers.IntegerField(), help_text=f"Outcome -> count. Outcomes: {', '.join(Outcome)}"
)


class TotalsSerializer(serializers.Serializer):
    money = MoneySerializer(many=True, help_text="One per unit")
    events = EventsSerializer()
    unique_users = serializers.IntegerField(
        allow_null=True,
        help_text="Users with >= 1 reward issued in the range; null unless asked for with "
        "`unique_users=true`",
    )
    decisions = DECISIONS


class DaySerializer(serializers.Serializer):
    day = serializers.DateField(help_text="A local day in the partnership's time zone")
    money = MoneySerializer(many=True)
    events = EventsSerializer()


class CampaignSerializer(serializers.Serializer):
    campaign_id = serializers.UUIDField()
    campaign = serializers.CharField(help_text="The campaign's slug")
    name = serializers.CharField()
    money = MoneySerializer(many=True)
    decisions = DECISIONS


class RewardReportSerializer(FromFieldMixin, serializers.Serializer):
    mode = serializers.CharField(help_text="The key's mode: the figures are of it only")
    from_ = serializers.DateField()
    to = serializers.DateField()
    time_zone = serializers.CharField(help_text="The partnership's: it draws the days")
    group_by = serializers.ChoiceField(choices=["day", "campaign"])
    campaign = serializers.CharField(allow_null=True, help_text="The campaign filter, as sent")
    trigger = serializers.CharField(allow_null=True, help_text="The trigger filter, as sent")
    received_through = serializers.DateTimeField(
        allow_null=True,
        help_text="events_received counts the events received before this moment (the lag of "
        "a watermark job, bounded); null until it first ran",
    )
    totals = TotalsSerializer()
    days = DaySerializer(many=True, allow_null=True, help_text="group_by=day, else null")
    campaigns = CampaignSerializer(
        many=True, allow_null=True, help_text="group_by=campaign, else null"
    )


class OutstandingSerializer(serializers.Serializer):
    unit = serializers.CharField()
    outstanding = serializers.CharField(
        help_text="Issued (issued_at <= at) minus reversed (reversed at <= at): exact decimal"
    )


class LiabilitySerializer(serializers.Serializer):
    mode = serializers.CharField(help_text="The key's mode: the figures are of it only")
    at = serializers.DateTimeField(help_text="The moment of the figures")
    liability = OutstandingSerializer(many=True, help_text="One per unit")


def liability_json(*, partnership, mode: str, at, outstanding: dict) -> dict:
    """The partnership's unit always, at zero when nothing was issued in it."""
    places = partnership.reward_decimal_places
    per_unit = {partnership.reward_unit: Decimal(0), **outstanding}
    return {
        "mode": mode,
        "at": at,
        "liability": [
            {"unit": unit, "outstanding": exact_amount(amount, places)}
            for unit, amount in sorted(per_unit.items())
        ],
    }


def _money(money: Money, places: int) -> dict:
    return {
        "unit": money.unit,
        "issued_count": money.issued_count,
        "issued_amount": exact_amount(money.issued_amount, places),
        "reversed_count": money.reversed_count,
        "reversed_amount": exact_amount(money.reversed_amount, places),
        "net_amount": exact_amount(money.net_amount, places),
    }


def _conversion(activity: Activity) -> str | None:
    ratio = activity.conversion
    return None if ratio is None else str(Decimal(ratio).quantize(CONVERSION_STEP, ROUND_HALF_EVEN))


def _events(activity: Activity) -> dict:
    return {
        "events_received": activity.events_received,
        "events_evaluated": activity.events_evaluated,
        "events_rewarded": activity.events_rewarded,
        "events_failed": activity.events_failed,
        "conversion": _conversion(activity),
    }


def _slugs(rows: list[CampaignRow]) -> dict:
    ids = [row.campaign_id for row in rows]
    return dict(Campaign.objects.filter(pk__in=ids).values_list("pk", "slug"))


def report_json(
    *,
    scope: ReportScope,
    totals: Totals,
    group_by: str,
    rows: list,
    filters: dict,
) -> dict:
    places = scope.partnership.reward_decimal_places
    days = rows if group_by == "day" else None
    campaigns = rows if group_by == "campaign" else None
    slugs = _slugs(campaigns or [])
    return {
        "mode": scope.mode,
        "from": scope.first_day,
        "to": scope.last_day,
        "time_zone": scope.partnership.time_zone,
        "group_by": group_by,
        "campaign": filters.get("campaign"),
        "trigger": filters.get("trigger"),
        "received_through": totals.received_through,
        "totals": {
            "money": [_money(money, places) for money in totals.money],
            "events": _events(totals.activity),
            "unique_users": totals.unique_users,
            "decisions": totals.decisions,
        },
        "days": None
        if days is None
        else [
            {
                "day": row.day,
                "money": [_money(money, places) for money in row.money],
                "events": _events(row.activity),
            }
            for row in days
        ],
        "campaigns": None
        if campaigns is None
        else [
            {
                "campaign_id": row.campaign_id,
                "campaign": slugs.get(row.campaign_id, ""),
                "name": row.name,
                "money": [_money(money, places) for money in row.money],
                "decisions": row.decisions,
            }
            for row in campaigns
        ],
    }


# --- CSV ------------------------------------------------------------------------------------

MONEY_COLUMNS = (
    "unit",
    "issued_count",
    "issued_amount",
    "reversed_count",
    "reversed_amount",
    "net_amount",
)
EVENT_COLUMNS = (
    "events_received",
    "events_evaluated",
    "events_rewarded",
    "events_failed",
    "conversion",
)


def _money_cells(money: Money, places: int) -> list:
    shown = _money(money, places)
    return [shown[column] for column in MONEY_COLUMNS]


def days_table(*, scope: ReportScope, days: list[DayRow]) -> list[list]:
    """One row per day and unit (a day with two units has two rows, its events repeated)."""
    places = scope.partnership.reward_decimal_places
    rows = []
    for row in days:
        events = _events(row.activity)
        for money in row.money:
            cells = [row.day.isoformat(), *_money_cells(money, places)]
            rows.append(cells + ["" if events[c] is None else events[c] for c in EVENT_COLUMNS])
    return [["day", *MONEY_COLUMNS, *EVENT_COLUMNS], *rows]


def campaigns_table(*, scope: ReportScope, campaigns: list[CampaignRow]) -> list[list]:
    """One row per campaign and unit; a ``decisions_<outcome>`` column per outcome."""
    places = scope.partnership.reward_decimal_places
    seen = {outcome for row in campaigns for outcome in row.decisions}
    outcomes = [*Outcome, *sorted(seen - set(Outcome))]
    slugs = _slugs(campaigns)
    rows = []
    for row in campaigns:
        decisions = [row.decisions.get(outcome, 0) for outcome in outcomes]
        for money in row.money:
            cells = [str(row.campaign_id), slugs.get(row.campaign_id, "")]
            rows.append(cells + _money_cells(money, places) + decisions)
    header = ["campaign_id", "campaign", *MONEY_COLUMNS, *(f"decisions_{o}" for o in outcomes)]
    return [header, *rows]


def report_csv(*, scope: ReportScope, totals: Totals, group_by: str, rows: list) -> CsvTable:
    table = (
        days_table(scope=scope, days=rows)
        if group_by == "day"
        else campaigns_table(scope=scope, campaigns=rows)
    )
    name = f"rewards-{scope.mode}-{scope.first_day}-{scope.last_day}-by-{group_by}.csv"
    received = totals.received_through
    return CsvTable(
        columns=table[0],
        rows=table[1:],
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Report-Mode": scope.mode,
            "X-Report-Time-Zone": scope.partnership.time_zone,
            "X-Report-Received-Through": received.isoformat() if received else "",
        },
    )
