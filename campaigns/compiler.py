"""A campaign's spec and its partnership's trigger schemas in, a compiled campaign out.

Pure: no database. ``campaigns.selectors`` loads the values (``campaign_spec``,
``trigger_schemas``); the workers, the save-time checks and a trigger's schema-change check
all compile through here, so they agree on what compiles.
"""

import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from .engine import CompiledCampaign, FactSpec, InvalidCampaign, Limits, candidate_until
from .models import FACT_NAME, Campaign
from .rules import Position, RuleEnvironment, RuleError, condition_guards, context_fields

_FACT_NAME = re.compile(FACT_NAME)
NUMERIC = ("number", "integer")


@dataclass(frozen=True)
class TriggerSchema:
    """A trigger as campaigns read it: its name (facts name triggers) and context schema."""

    id: int
    name: str
    context_schema: dict


@dataclass(frozen=True)
class CampaignSpec:
    """What a campaign says, as saved (or about to be): the input of the compiler."""

    id: uuid.UUID
    partnership_id: uuid.UUID
    trigger_id: int
    slug: str
    priority: int
    exclusive: bool
    starts_at: datetime | None
    ends_at: datetime | None
    version: int
    condition: str
    facts: Any  # JSON as saved: a list of fact objects, if valid
    reward_type: str
    reward_value: Decimal | None
    reward_field: str
    reward_expression: str
    reward_min: Decimal | None
    reward_max: Decimal | None
    rounding: str
    limits: Limits
    grace_days: int = 0  # how long after ends_at it still judges late events
    # The partnership's user-attribute schema: rules' ``user.<name>`` are typed from it.
    user_schema: dict = field(default_factory=dict)


class CampaignInvalid(RuleError):
    """The campaign does not compile; ``errors`` maps each field to its problem, and
    ``positions`` each expression field to where in it the problem is (Pilot marks it)."""

    def __init__(
        self, errors: dict[str, str], positions: dict[str, Position] | None = None
    ) -> None:
        self.errors = errors
        self.positions = positions or {}
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))


def compile_campaign(
    spec: CampaignSpec, schemas: Iterable[TriggerSchema], envs: dict | None = None
) -> CompiledCampaign:
    """Raises CampaignInvalid. ``schemas``: the triggers of the campaign's partnership.
    ``envs`` shares one CEL environment between campaigns with the same trigger and facts, so
    that they can share one activation per event."""
    trigger, facts, env = _environment(spec, schemas, {} if envs is None else envs)
    errors: dict[str, str] = {}
    positions: dict[str, Position] = {}
    condition = expression = None
    if spec.condition.strip():
        try:
            condition = env.compile(spec.condition, returns=("bool",))
        except RuleError as exc:
            errors["condition"] = str(exc)
            if exc.position:
                positions["condition"] = exc.position
    if spec.reward_type == Campaign.RewardType.EXPRESSION:
        try:
            expression = env.compile(spec.reward_expression, returns=("double", "int"))
        except RuleError as exc:
            errors["reward_expression"] = str(exc)
            if exc.position:
                positions["reward_expression"] = exc.position
    elif spec.reward_value is None or spec.reward_value <= 0:
        errors["reward_value"] = "A positive amount or percentage"
    percentage = spec.reward_type == Campaign.RewardType.PERCENTAGE
    if percentage and _types(trigger).get(spec.reward_field) not in NUMERIC:
        errors["reward_field"] = "A numeric property of the trigger's context schema"
    low, high = spec.reward_min, spec.reward_max
    if low is not None and high is not None and low > high:
        errors["reward_max"] = "Must not be below the minimum"
    if bool(spec.limits.max_rewards_per_user_per_period) != bool(spec.limits.period):
        errors["period"] = "A per-period cap needs a period, and a period needs a cap"
    if spec.starts_at and spec.ends_at and spec.ends_at <= spec.starts_at:
        errors["ends_at"] = "Must be after the start"
    if errors:
        raise CampaignInvalid(errors, positions)
    return CompiledCampaign(
        id=spec.id,
        key=str(spec.id),
        slug=spec.slug,
        priority=spec.priority,
        exclusive=spec.exclusive,
        starts_at=spec.starts_at,
        ends_at=spec.ends_at,
        version=spec.version,
        env=env,
        condition=condition,
        reward_type=spec.reward_type,
        reward_value=spec.reward_value,
        reward_field=spec.reward_field,
        reward_expression=expression,
        reward_min=low,
        reward_max=high,
        rounding=spec.rounding,
        limits=spec.limits,
        facts=tuple(facts),
        candidate_until=candidate_until(spec.ends_at, spec.grace_days),
        guards=condition_guards(spec.condition, env.fields) if condition is not None else (),
    )


def campaign_environment(
    spec: CampaignSpec, schemas: Iterable[TriggerSchema]
) -> tuple[RuleEnvironment, list[FactSpec]]:
    """What the campaign's rules may read, as compiling it declares it (Pilot lists it beside
    the rule). Raises CampaignInvalid for a trigger or facts that do not compile."""
    _, facts, env = _environment(spec, schemas, {})
    return env, facts


def _environment(
    spec: CampaignSpec, schemas: Iterable[TriggerSchema], envs: dict
) -> tuple[TriggerSchema, list[FactSpec], RuleEnvironment]:
    by_id = {schema.id: schema for schema in schemas}
    trigger = by_id.get(spec.trigger_id)
    if trigger is None:
        raise CampaignInvalid({"trigger": "The trigger belongs to another partnership"})
    facts, problem = _fact_specs(spec, trigger, {s.name: s for s in by_id.values()})
    if problem:
        raise CampaignInvalid({"facts": problem})
    env_key = (trigger.id, tuple(facts), _canonical(spec.user_schema))
    if env_key not in envs:
        envs[env_key] = RuleEnvironment(
            trigger.context_schema,
            {fact.name: fact.aggregate for fact in facts},
            spec.user_schema,
        )
    return trigger, facts, envs[env_key]


def compile_or_invalid(
    spec: CampaignSpec, schemas: Iterable[TriggerSchema], envs: dict | None = None
) -> CompiledCampaign | InvalidCampaign:
    """For the workers: a campaign that does not compile still judges, as invalid."""
    try:
        return compile_campaign(spec, schemas, envs)
    except CampaignInvalid as exc:
        return InvalidCampaign(
            id=spec.id,
            key=str(spec.id),
            slug=spec.slug,
            priority=spec.priority,
            exclusive=spec.exclusive,
            errors=exc.errors,
            candidate_until=candidate_until(spec.ends_at, spec.grace_days),
        )


def _canonical(schema: Any) -> str:
    return json.dumps(schema, sort_keys=True, default=str)


def _types(trigger: TriggerSchema) -> dict[str, str | None]:
    return {f.name: f.json_type for f in context_fields(trigger.context_schema)}


def _fact_specs(
    spec: CampaignSpec, own: TriggerSchema, by_name: dict[str, TriggerSchema]
) -> tuple[list[FactSpec], str | None]:
    """The campaign's facts, or an error message naming the first problem."""
    if not isinstance(spec.facts, list):
        return [], "A list of facts"
    specs, names = [], set()
    for index, fact in enumerate(spec.facts):
        where = f"fact {index + 1}"
        if not isinstance(fact, dict):
            return [], f"{where}: an object"
        unknown = set(fact) - {"name", "aggregate", "trigger", "field", "window_days"}
        if unknown:
            return [], f"{where}: unknown keys {sorted(unknown)}"
        name, aggregate = fact.get("name"), fact.get("aggregate")
        if not isinstance(name, str) or not _FACT_NAME.match(name) or name in names:
            return [], f"{where}: a unique name matching {FACT_NAME}"
        if aggregate not in ("count", "sum"):
            return [], f'{where}: "aggregate" is "count" or "sum"'
        window = fact.get("window_days")
        if not isinstance(window, int) or isinstance(window, bool) or not 1 <= window <= 366:
            return [], f'{where}: "window_days" is a whole number of days from 1 to 366'
        if not isinstance(fact.get("trigger"), str | None):
            return [], f'{where}: "trigger" is the name of a trigger'
        trigger = own
        if fact.get("trigger") not in (None, own.name):
            trigger = by_name.get(fact["trigger"])
            if trigger is None:
                return [], f"{where}: no trigger {fact['trigger']!r} in this partnership"
        field = fact.get("field", "")
        if not isinstance(field, str):
            return [], f'{where}: "field" is the name of a numeric context property'
        if aggregate == "sum" and _types(trigger).get(field) not in NUMERIC:
            return [], f'{where}: "field" must be a numeric property of {trigger.name}'
        names.add(name)
        specs.append(FactSpec(name, aggregate, trigger.id, field, window))
    return specs, None
