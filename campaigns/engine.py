"""A campaign compiled for evaluation: schedule, condition, facts, reward amount, limits."""

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from .rules import Outcome, RuleEnvironment, evaluate

# Rewards are stored as numeric(18, 6): anything from here up cannot be stored at all.
MAX_AMOUNT = Decimal(10) ** 12


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
        """A campaign's limits (a Campaign, or a migration's historical model of it)."""
        return cls(
            budget=campaign.budget,
            max_rewards=campaign.max_rewards,
            max_rewards_per_user=campaign.max_rewards_per_user,
            max_rewards_per_user_per_period=campaign.max_rewards_per_user_per_period,
            period=campaign.period,
            max_amount_per_user=campaign.max_amount_per_user,
        )

    @property
    def per_user(self) -> bool:
        return any(
            limit is not None
            for limit in (
                self.max_rewards_per_user,
                self.max_rewards_per_user_per_period,
                self.max_amount_per_user,
            )
        )


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

    def in_schedule(self, at: datetime) -> bool:
        return (self.starts_at is None or self.starts_at <= at) and (
            self.ends_at is None or at < self.ends_at
        )

    def matches(self, activation: Any) -> tuple[bool, str]:
        """(matched, why not); raises RuleRuntimeError for a rule that fails."""
        if self.condition is None:
            return True, ""
        problem, value = evaluate(self.condition, activation)
        if problem == Outcome.ABSENT:
            return False, f"condition not met: {value}"
        if problem == Outcome.ERROR:
            raise RuleRuntimeError(f"condition failed: {value}")
        if not isinstance(value, bool):
            raise RuleRuntimeError(f"condition gave {value!r}, not a bool")
        return value, "" if value else "condition is false"

    def amount(self, activation: Any, context: dict, places: int) -> Decimal:
        """The reward for one event, clamped to min/max and rounded; raises RuleRuntimeError."""
        if self.reward_type == "fixed":
            raw = self.reward_value
        elif self.reward_type == "percentage":
            base = context.get(self.reward_field)
            if not isinstance(base, int | float) or isinstance(base, bool):
                raise RuleRuntimeError(f"context.{self.reward_field} is not a number")
            raw = Decimal(str(base)) * self.reward_value / 100
        else:
            problem, value = evaluate(self.reward_expression, activation)
            if problem is not None or not isinstance(value, int | float) or isinstance(value, bool):
                raise RuleRuntimeError(f"reward expression failed: {value}")
            try:
                raw = Decimal(str(value))
            except InvalidOperation as exc:
                raise RuleRuntimeError(f"reward expression gave {value!r}") from exc
            if not raw.is_finite():
                raise RuleRuntimeError(f"reward expression gave {value!r}")
        if abs(raw) >= MAX_AMOUNT:
            raise RuleRuntimeError(f"reward of {raw} is beyond the largest amount, {MAX_AMOUNT}")
        step = Decimal(1).scaleb(-places)
        amount = raw.quantize(step, rounding=self.rounding)
        # Bounds apply after rounding, themselves in whole steps of the unit, so that
        # "up to 2.505" can never pay 2.51, nor a minimum finer than the unit round to zero.
        if self.reward_min is not None:
            amount = max(amount, self.reward_min.quantize(step, rounding=ROUND_CEILING))
        if self.reward_max is not None:
            amount = min(amount, self.reward_max.quantize(step, rounding=ROUND_FLOOR))
        return amount


class RuleRuntimeError(Exception):
    """A campaign's rule failed on one event: that campaign's decision is ``error``."""
