"""A campaign's rule checked as the operator types it, and what the rule may read.

Both come from the compiler the workers and the save-time checks use
(``campaigns.compiler``): a problem shown here is the problem saving would report, in the same
words, with its position in the expression.
"""

import uuid
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from partnerships.models import EndUser
from triggers.models import Trigger

from ..compiler import CampaignInvalid, CampaignSpec, campaign_environment, compile_campaign
from ..engine import FactSpec, Limits
from ..models import Campaign
from ..rules import Function, Position, RuleEnvironment
from ..selectors import trigger_schemas

CHECKED_FIELDS = ("condition", "reward_expression", "facts")
# How many end users of the partnership the panel reads attribute names from (in the order of
# the index on their external ids: a sample, never a scan).
ATTRIBUTE_SAMPLE = 200


@dataclass(frozen=True)
class Problem:
    """Why a field does not compile; for an expression, where (``position``) and the line of
    the expression it points into, so that a caret can be drawn under the character."""

    message: str
    position: Position | None = None
    source_line: str = ""

    @property
    def caret(self) -> str:
        return "" if self.position is None else " " * (self.position.column - 1) + "^"

    def as_json(self) -> dict:
        line, column = self.position or (None, None)
        return {
            "message": self.message,
            "line": line,
            "column": column,
            "source_line": self.source_line,
            "caret": self.caret,
        }


@dataclass(frozen=True)
class Term:
    """One thing a rule may read: its name as written in a rule, its CEL type, and a note."""

    name: str
    type: str
    note: str = ""


@dataclass(frozen=True)
class Vocabulary:
    context: list[Term]
    user: list[Term]
    facts: list[Term]
    event: list[Term]
    functions: list[Function]


@dataclass(frozen=True)
class RuleCheck:
    problems: dict[str, Problem]  # field -> its problem; the fields of CHECKED_FIELDS only
    vocabulary: Vocabulary


def problems_of(invalid: CampaignInvalid, sources: dict[str, str]) -> dict[str, Problem]:
    """The compiler's errors, each with its position and the source line it points into."""
    problems = {}
    for field, message in invalid.errors.items():
        position = invalid.positions.get(field)
        line = ""
        if position is not None:
            lines = sources.get(field, "").split("\n")
            if position.line <= len(lines):
                line = lines[position.line - 1].replace("\t", " ")  # one column per tab
        problems[field] = Problem(message, position, line)
    return problems


def rule_check(
    *, trigger: Trigger, condition: str, reward_type: str, reward_expression: str, facts: list
) -> RuleCheck:
    """The problems of a campaign's condition, reward expression and facts on ``trigger``,
    and what its rule may read."""
    problems = rule_problems(
        trigger=trigger,
        condition=condition,
        reward_type=reward_type,
        reward_expression=reward_expression,
        facts=facts,
    )
    return RuleCheck(problems, rule_vocabulary(trigger=trigger, facts=facts))


def rule_problems(
    *, trigger: Trigger, condition: str, reward_type: str, reward_expression: str, facts: list
) -> dict[str, Problem]:
    """The problems of the condition, reward expression and facts (the other fields are
    checked on save), each expression's with its position."""
    spec = _spec(trigger, condition, reward_type, reward_expression, facts)
    try:
        compile_campaign(spec, trigger_schemas(partnership_id=trigger.partnership_id))
    except CampaignInvalid as invalid:
        sources = {"condition": condition, "reward_expression": reward_expression}
        return {
            field: problem
            for field, problem in problems_of(invalid, sources).items()
            if field in CHECKED_FIELDS
        }
    return {}


def rule_vocabulary(*, trigger: Trigger, facts: list) -> Vocabulary:
    """What a rule on ``trigger`` with these facts may read (without the facts if they do not
    compile: the panel lists the rest)."""
    schemas = trigger_schemas(partnership_id=trigger.partnership_id)
    try:
        env, fact_specs = campaign_environment(_spec(trigger, "", "", "", facts), schemas)
    except CampaignInvalid:
        env, fact_specs = campaign_environment(_spec(trigger, "", "", "", []), schemas)
    return vocabulary(trigger=trigger, env=env, facts=fact_specs)


def vocabulary(*, trigger: Trigger, env: RuleEnvironment, facts: list[FactSpec]) -> Vocabulary:
    """What the campaign's environment declares, grouped for the panel; notes come from the
    trigger's schema (description, required) and the facts' definitions."""
    variables = env.variables()
    properties = (trigger.context_schema or {}).get("properties") or {}
    required = set((trigger.context_schema or {}).get("required") or [])
    triggers = dict(
        Trigger.objects.filter(partnership_id=trigger.partnership_id).values_list("id", "name")
    )
    context, event, fact_terms = [], [], []
    for name, kind in variables.items():
        prefix, _, rest = name.partition(".")
        if prefix == "context":
            context.append(Term(name, kind, _context_note(properties.get(rest), rest in required)))
        elif prefix == "event":
            event.append(Term(name, kind))
    by_name = {fact.name: fact for fact in facts}
    for name, kind in variables.items():
        fact = by_name.get(name.removeprefix("facts.")) if name.startswith("facts.") else None
        if fact:
            fact_terms.append(Term(name, kind, _fact_note(fact, triggers)))
    user = [Term("user", variables["user"], "the end user's attributes, as the partner sent")]
    declared = {name: kind for name, kind in variables.items() if name.startswith("user.")}
    if declared:  # the partnership's user-attribute schema: only these read as user.<name>
        user += [
            Term(name, kind, "declared in the partnership's user-attribute schema")
            for name, kind in declared.items()
        ]
    else:
        user += [
            Term(f"user.{key}", "dyn", "seen on the partnership's users")
            for key in _attribute_names(trigger)
        ]
    return Vocabulary(
        context=context,
        user=user,
        facts=fact_terms,
        event=event,
        functions=env.functions(),
    )


def _context_note(schema, required: bool) -> str:
    parts = []
    if isinstance(schema, dict):
        if schema.get("type") == "number":
            parts.append("a number: compare with 20.0, not 20")
        if schema.get("enum"):
            parts.append("one of " + ", ".join(map(str, schema["enum"])))
        if schema.get("description"):
            parts.append(str(schema["description"]))
    parts.append("required" if required else "optional: a rule reading it is not met without it")
    return "; ".join(parts)


def _fact_note(fact: FactSpec, triggers: dict[int, str]) -> str:
    what = "number of" if fact.aggregate == "count" else f"sum of {fact.field} over"
    trigger = triggers.get(fact.trigger_id, "?")
    return f"{what} the user's {trigger} events in the last {fact.window_days} days"


def _attribute_names(trigger: Trigger) -> list[str]:
    users = EndUser.objects.filter(partnership_id=trigger.partnership_id)
    sample = users.order_by("external_user_id").values_list("attributes", flat=True)
    names: set[str] = set()
    for attributes in sample[:ATTRIBUTE_SAMPLE]:
        if isinstance(attributes, dict):
            names.update(str(key) for key in attributes)
    return sorted(names)


def _spec(trigger: Trigger, condition, reward_type, reward_expression, facts) -> CampaignSpec:
    """A campaign with only the checked fields set: the others cannot make these fail."""
    return CampaignSpec(
        id=uuid.uuid4(),
        partnership_id=trigger.partnership_id,
        trigger_id=trigger.id,
        slug="",
        priority=0,
        exclusive=False,
        starts_at=None,
        ends_at=None,
        version=0,
        condition=condition,
        facts=facts,
        reward_type=reward_type
        if reward_type in Campaign.RewardType.values
        else Campaign.RewardType.FIXED,
        reward_value=Decimal(1),
        reward_field="",
        reward_expression=reward_expression,
        reward_min=None,
        reward_max=None,
        rounding=ROUND_HALF_UP,
        limits=Limits(),
        user_schema=trigger.partnership.user_attribute_schema or {},
    )
