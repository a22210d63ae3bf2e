import re
from decimal import Decimal

from django.db import transaction

from triggers.models import Trigger

from .engine import CompiledCampaign, FactSpec, Limits
from .models import FACT_NAME, Campaign, CampaignVersion
from .rules import RuleEnvironment, RuleError, context_fields

_FACT_NAME = re.compile(FACT_NAME)
NUMERIC = ("number", "integer")


def _fact_specs(campaign: Campaign) -> tuple[list[FactSpec], str | None]:
    """The campaign's facts, or an error message naming the first problem."""
    if not isinstance(campaign.facts, list):
        return [], "A list of facts"
    specs, names = [], set()
    for index, fact in enumerate(campaign.facts):
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
        trigger = campaign.trigger
        if fact.get("trigger") not in (None, trigger.name):
            trigger = Trigger.objects.filter(
                partnership_id=campaign.partnership_id, name=fact["trigger"]
            ).first()
            if trigger is None:
                return [], f"{where}: no trigger {fact['trigger']!r} in this partnership"
        field = fact.get("field", "")
        if aggregate == "sum":
            types = {f.name: f.json_type for f in context_fields(trigger.context_schema)}
            if types.get(field) not in NUMERIC:
                return [], f'{where}: "field" must be a numeric property of {trigger.name}'
        names.add(name)
        specs.append(FactSpec(name, aggregate, trigger.id, field, window))
    return specs, None


def _compile(
    campaign: Campaign, envs: dict | None = None
) -> tuple[CompiledCampaign | None, dict[str, str]]:
    """``envs`` shares one CEL environment between campaigns with the same facts, so that
    they can share one activation per event."""
    errors: dict[str, str] = {}
    if campaign.trigger.partnership_id != campaign.partnership_id:
        return None, {"trigger": "The trigger belongs to another partnership"}
    facts, problem = _fact_specs(campaign)
    if problem:
        return None, {"facts": problem}
    envs = {} if envs is None else envs
    env_key = (campaign.trigger_id, tuple(facts))
    if env_key not in envs:
        envs[env_key] = RuleEnvironment(
            campaign.trigger.context_schema, {fact.name: fact.aggregate for fact in facts}
        )
    env = envs[env_key]
    condition = expression = None
    if campaign.condition.strip():
        try:
            condition = env.compile(campaign.condition, returns=("bool",))
        except RuleError as exc:
            errors["condition"] = str(exc)
    if campaign.reward_type == Campaign.RewardType.EXPRESSION:
        try:
            expression = env.compile(campaign.reward_expression, returns=("double", "int"))
        except RuleError as exc:
            errors["reward_expression"] = str(exc)
    elif campaign.reward_value is None or campaign.reward_value <= 0:
        errors["reward_value"] = "A positive amount or percentage"
    if campaign.reward_type == Campaign.RewardType.PERCENTAGE:
        types = {f.name: f.json_type for f in context_fields(campaign.trigger.context_schema)}
        if types.get(campaign.reward_field) not in NUMERIC:
            errors["reward_field"] = "A numeric property of the trigger's context schema"
    low, high = campaign.reward_min, campaign.reward_max
    if low is not None and high is not None and low > high:
        errors["reward_max"] = "Must not be below the minimum"
    if bool(campaign.max_rewards_per_user_per_period) != bool(campaign.period):
        errors["period"] = "A per-period cap needs a period, and a period needs a cap"
    if campaign.starts_at and campaign.ends_at and campaign.ends_at <= campaign.starts_at:
        errors["ends_at"] = "Must be after the start"
    if errors:
        return None, errors
    return (
        CompiledCampaign(
            id=campaign.id,
            slug=campaign.slug,
            priority=campaign.priority,
            exclusive=campaign.exclusive,
            starts_at=campaign.starts_at,
            ends_at=campaign.ends_at,
            version=campaign.version,
            env=env,
            condition=condition,
            reward_type=campaign.reward_type,
            reward_value=campaign.reward_value,
            reward_field=campaign.reward_field,
            reward_expression=expression,
            reward_min=low,
            reward_max=high,
            rounding=campaign.rounding,
            limits=Limits.of(campaign),
            facts=tuple(facts),
        ),
        {},
    )


def campaign_snapshot(*, campaign: Campaign) -> dict:
    """The rule and reward spec of this version (kept as a ``CampaignVersion``)."""

    def number(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    return {
        "condition": campaign.condition,
        "facts": campaign.facts,
        "reward_type": campaign.reward_type,
        "reward_value": number(campaign.reward_value),
        "reward_field": campaign.reward_field,
        "reward_expression": campaign.reward_expression,
        "reward_min": number(campaign.reward_min),
        "reward_max": number(campaign.reward_max),
        "rounding": campaign.rounding,
    }


def campaign_validate(*, campaign: Campaign) -> dict[str, str]:
    """Field -> message for everything that would keep the campaign from compiling."""
    if campaign.trigger_id is None or campaign.partnership_id is None:
        return {}  # the form reports the missing fields itself
    return _compile(campaign)[1]


def campaign_compile(*, campaign: Campaign, envs: dict | None = None) -> CompiledCampaign:
    compiled, errors = _compile(campaign, envs)
    if errors:
        raise RuleError("; ".join(f"{field}: {message}" for field, message in errors.items()))
    return compiled


@transaction.atomic
def campaign_save(*, campaign: Campaign) -> Campaign:
    """Validates and saves; a change to a saved campaign bumps its version."""
    campaign.full_clean()
    if not campaign._state.adding:
        campaign.version += 1
    campaign.save()
    CampaignVersion.objects.create(
        campaign=campaign, version=campaign.version, snapshot=campaign_snapshot(campaign=campaign)
    )
    return campaign
