"""A campaign's configuration as a version keeps it (a JSON snapshot), and the difference
between two of them, as Pilot shows it ("budget: 100 -> 500").

Values are stored in one canonical form (decimals without trailing zeros, times in UTC), so
that a form's ``500`` and the database's ``500.000000`` are the same value, not a change.
"""

from datetime import UTC, datetime
from decimal import Decimal

from .models import Campaign

# What describes the campaign to people, not what the workers evaluate: changed at once.
DESCRIPTIVE = ("name", "slug", "description")
# Caps: lowering one (or adding one) only restricts what may be issued.
LIMITS = (
    "budget",
    "max_rewards",
    "max_rewards_per_user",
    "max_rewards_per_user_per_period",
    "max_amount_per_user",
)
CONFIGURATION = (
    *DESCRIPTIVE,
    "trigger_id",
    "starts_at",
    "ends_at",
    "priority",
    "exclusive",
    "condition",
    "facts",
    "reward_type",
    "reward_value",
    "reward_field",
    "reward_expression",
    "reward_min",
    "reward_max",
    "rounding",
    *LIMITS,
    "period",
)


def _canonical(value):
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


def campaign_snapshot(*, campaign: Campaign) -> dict:
    """Everything a version keeps: rule, reward, schedule, priority, exclusivity, limits."""
    return {field: _canonical(getattr(campaign, field)) for field in CONFIGURATION}


def snapshot_diff(before: dict | None, after: dict) -> dict[str, list]:
    """Field -> [before, after] for each field that differs. A field an old snapshot did not
    record (before the snapshot held it) is not reported as a change."""
    if before is None:
        return {}
    return {
        field: [before[field], after.get(field)]
        for field in CONFIGURATION
        if field in before and field in after and before[field] != after[field]
    }


def diff_lines(changes: dict[str, list]) -> list[str]:
    """``changes`` in words, one line per field: ``budget: 100 -> 500``."""

    def shown(value) -> str:
        return "(none)" if value in (None, "") else str(value)

    return [
        f"{field}: {shown(before)} -> {shown(after)}" for field, (before, after) in changes.items()
    ]


def needs_approval(changes: dict[str, list]) -> bool:
    """Whether a change of an approved campaign must be approved before it goes live: all
    but its description and lowering (or adding) a cap."""
    return any(
        field not in DESCRIPTIVE and not (field in LIMITS and _lowers(before, after))
        for field, (before, after) in changes.items()
    )


def _lowers(before: str | int | None, after: str | int | None) -> bool:
    if after is None:
        return False  # removing a cap raises it
    return before is None or Decimal(str(after)) <= Decimal(str(before))


def snapshot_apply(*, campaign: Campaign, snapshot: dict, fields) -> None:
    """Sets ``fields`` of ``campaign`` (in memory) to their values in ``snapshot``."""
    for name in fields:
        field = Campaign._meta.get_field(name.removesuffix("_id"))
        setattr(campaign, field.attname, field.to_python(snapshot[name]))
