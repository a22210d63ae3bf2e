"""A campaign compiled for evaluation: schedule, condition, facts, reward amount, limits.

Pure: no database. What a check reads (the event's variables, the counters) is passed in.
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from functools import cached_property
from typing import Any, NamedTuple

from .decisions import Outcome, decision_message, params
from .native import NativeRules, native_compile
from .rules import Problem, RuleEnvironment, evaluate

# Rewards are stored as numeric(18, 6): anything from here up cannot be stored at all.
MAX_AMOUNT = Decimal(10) ** 12
_STEPS = {places: Decimal(1).scaleb(-places) for places in range(7)}  # the unit's step


@dataclass(frozen=True)
class FactSpec:
    name: str
    aggregate: str  # "count" | "sum"
    trigger_id: int
    field: str  # for sums: the numeric context field
    window_days: int


@dataclass(frozen=True)
class Limits:
    budget: Decimal | None = None
    max_rewards: int | None = None
    max_rewards_per_user: int | None = None
    max_rewards_per_user_per_period: int | None = None
    period: str = ""
    max_amount_per_user: Decimal | None = None

    @classmethod
    def of(cls, campaign) -> "Limits":
        """A campaign's limits, from a Campaign."""
        return cls(
            budget=campaign.budget,
            max_rewards=campaign.max_rewards,
            max_rewards_per_user=campaign.max_rewards_per_user,
            max_rewards_per_user_per_period=campaign.max_rewards_per_user_per_period,
            period=campaign.period,
            max_amount_per_user=campaign.max_amount_per_user,
        )

    @cached_property  # read for every reward
    def per_user(self) -> bool:
        return any(
            limit is not None
            for limit in (
                self.max_rewards_per_user,
                self.max_rewards_per_user_per_period,
                self.max_amount_per_user,
            )
        )


class Usage(NamedTuple):
    """A campaign's counters before one more reward: the campaign's (in the event's mode), and
    the user's, lifetime and in the event's period, where its limits read them."""

    rewards: int
    spent: Decimal
    user_rewards: int = 0
    user_amount: Decimal = Decimal(0)
    period_rewards: int = 0


def limits_check(limits: Limits, usage: Usage, amount: Decimal) -> Outcome | None:
    """The limit one more reward of ``amount`` would break, or None if it fits."""
    if limits.max_rewards is not None and usage.rewards + 1 > limits.max_rewards:
        return Outcome.COUNT_CAP_REACHED
    if limits.budget is not None and usage.spent + amount > limits.budget:
        return Outcome.BUDGET_EXHAUSTED
    if (
        limits.max_rewards_per_user is not None
        and usage.user_rewards + 1 > limits.max_rewards_per_user
    ) or (
        limits.max_amount_per_user is not None
        and usage.user_amount + amount > limits.max_amount_per_user
    ):
        return Outcome.USER_CAP_REACHED
    if (
        limits.max_rewards_per_user_per_period is not None
        and usage.period_rewards + 1 > limits.max_rewards_per_user_per_period
    ):
        return Outcome.PERIOD_CAP_REACHED
    return None


def candidate_until(ends_at: datetime | None, grace_days: int) -> datetime | None:
    """A campaign judges the events that reach us before its end plus the lateness allowed
    (``grace_days``): a late event for its last day still counts, a backdated one later not."""
    if ends_at is None:
        return None
    try:
        return ends_at + timedelta(days=grace_days)
    except OverflowError:  # an end near year 9999 (saved before dates were bounded): never
        return datetime.max.replace(tzinfo=UTC)


def period_key(period: str, at: datetime, zone: tzinfo = UTC) -> str:
    """The calendar period an event falls in, in the partnership's time zone:
    2026-11-23, 2026-W47, 2026-11."""
    day: date = at.astimezone(zone).date()
    if period == "day":
        return day.isoformat()
    if period == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{day.year}-{day.month:02d}"


@dataclass(frozen=True)
class CompiledCampaign:
    id: uuid.UUID
    key: str  # str(id), as decisions store it
    slug: str
    priority: int
    exclusive: bool
    starts_at: datetime | None
    ends_at: datetime | None
    version: int
    env: RuleEnvironment
    condition: Any  # compiled CEL, or None for "always"
    reward_type: str
    reward_value: Decimal | None
    reward_field: str
    reward_expression: Any
    reward_min: Decimal | None
    reward_max: Decimal | None
    rounding: str
    limits: Limits
    facts: tuple[FactSpec, ...]
    candidate_until: datetime | None = None
    # (context field, string) pairs the condition requires equal (``rules.condition_guards``):
    # an event whose string field differs does not meet it, without evaluating it.
    guards: tuple[tuple[str, str], ...] = ()

    @cached_property
    def native(self) -> NativeRules | None:
        """Its expressions as Python for a replay's ``event_judge(native=True)``, or None if
        one is beyond ``campaigns.native``'s subset."""
        facts = {spec.name: spec for spec in self.facts}
        condition = reward = None
        if self.condition is not None:
            condition = native_compile(self.condition, facts)
            if condition is None:
                return None
        if self.reward_expression is not None:
            reward = native_compile(self.reward_expression, facts)
            if reward is None:
                return None
        return NativeRules(condition, reward)

    def in_schedule(self, at: datetime) -> bool:
        return (self.starts_at is None or self.starts_at <= at) and (
            self.ends_at is None or at < self.ends_at
        )

    def matches(self, activation: Any) -> tuple[bool, str]:
        """(matched, the absent variable's message if one made it unmet); raises
        RuleRuntimeError for a rule that fails."""
        if self.condition is None:
            return True, ""
        problem, value = evaluate(self.condition, activation)
        if problem == Problem.ABSENT:
            return False, value
        if problem == Problem.ERROR:
            raise RuleRuntimeError("condition_failed", detail=value)
        if not isinstance(value, bool):
            raise RuleRuntimeError("condition_not_bool", value=repr(value))
        return value, ""

    def amount(
        self, activation: Any, context: dict, places: int, evaluated: tuple | None = None
    ) -> Decimal:
        """The reward for one event, clamped to min/max and rounded; raises RuleRuntimeError.
        ``evaluated``: the reward expression's ``evaluate`` result, when already known."""
        if self.reward_type == "fixed":
            raw = self.reward_value
        elif self.reward_type == "percentage":
            base = context.get(self.reward_field)
            if not isinstance(base, int | float) or isinstance(base, bool):
                raise RuleRuntimeError("field_not_number", field=self.reward_field)
            raw = Decimal(str(base)) * self.reward_value / 100
        else:
            problem, value = evaluated or evaluate(self.reward_expression, activation)
            if problem is not None or not isinstance(value, int | float) or isinstance(value, bool):
                raise RuleRuntimeError("expression_failed", detail=str(value))
            try:
                raw = Decimal(str(value))
            except InvalidOperation as exc:
                raise RuleRuntimeError("expression_not_number", value=repr(value)) from exc
            if not raw.is_finite():
                raise RuleRuntimeError("expression_not_number", value=repr(value))
        if abs(raw) >= MAX_AMOUNT:
            raise RuleRuntimeError("amount_too_large", amount=str(raw), largest=str(MAX_AMOUNT))
        step = _STEPS.get(places) or Decimal(1).scaleb(-places)
        amount = raw.quantize(step, rounding=self.rounding)
        # Bounds apply after rounding, themselves in whole steps of the unit, so that
        # "up to 2.505" can never pay 2.51, nor a minimum finer than the unit round to zero.
        if self.reward_min is not None:
            amount = max(amount, self.reward_min.quantize(step, rounding=ROUND_CEILING))
        if self.reward_max is not None:
            amount = min(amount, self.reward_max.quantize(step, rounding=ROUND_FLOOR))
        return amount


@dataclass(frozen=True)
class InvalidCampaign:
    """A candidate campaign that does not compile (saved before a schema change, or around
    the checks): it judges every event it is a candidate for as ``campaign_invalid``."""

    id: uuid.UUID
    key: str
    slug: str
    priority: int
    exclusive: bool  # still holds for a reward it issued before (a re-evaluation)
    errors: Mapping[str, str]  # field -> message
    candidate_until: datetime | None = None


class RuleRuntimeError(Exception):
    """A campaign's rule failed on one event: that campaign's decision is ``error``, with
    ``params`` (a ``reason`` code and its values) for the message."""

    def __init__(self, reason: str, **values: str) -> None:
        self.params = params(reason=reason, **values)
        super().__init__(decision_message(Outcome.ERROR, self.params))
