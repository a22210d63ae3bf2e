from enum import StrEnum


class Outcome(StrEnum):
    """Why a campaign did or did not reward an event: one per candidate campaign."""

    REWARDED = "rewarded"
    CONDITION_FALSE = "condition_false"
    ZERO_AMOUNT = "zero_amount"
    BUDGET_EXHAUSTED = "budget_exhausted"
    COUNT_CAP_REACHED = "count_cap_reached"
    USER_CAP_REACHED = "user_cap_reached"
    PERIOD_CAP_REACHED = "period_cap_reached"
    OUTSIDE_SCHEDULE = "outside_schedule"
    SKIPPED_EXCLUSIVE = "skipped_exclusive"
    ERROR = "error"
