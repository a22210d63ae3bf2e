"""The CEL subset run as Python (``campaigns.native``) gives CEL's value wherever it answers, on
generated expressions and events: absent fields, other types than declared, ints in number
fields, values past 64 bits, divisions by zero; and a judge with it gives the same verdicts."""

import math
import random
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from campaigns.compiler import CampaignSpec, TriggerSchema, compile_campaign
from campaigns.engine import Limits
from campaigns.judge import EventValue, event_judge
from campaigns.native import Scope, Unsure, native_compile
from campaigns.rules import RuleEnvironment, RuleError, evaluate, event_data

SCHEMA = {
    "type": "object",
    "properties": {
        "amount": {"type": "number"},
        "count": {"type": "integer"},
        "category": {"type": "string"},
        "flag": {"type": "boolean"},
        "loose": {},  # no type: dyn
    },
}
FACTS = {"n": "count", "spend": "sum"}
FACT_KEYS = {name: name for name in FACTS}  # the facts by name in these tests' scopes
AT = datetime(2026, 12, 1, 12, tzinfo=UTC)

DOUBLES = ["context.amount", "facts.spend", "0.5", "10.0", "-2.25", "1e308", "0.0"]
INTS = ["context.count", "facts.n", "3", "-7", "0", "9223372036854775807"]
STRINGS = ["context.category", "event.trigger", "event.mode", '"5411"', '"gold"', '""']
BOOLS = ["context.flag", "true", "false", "has(user.tier)", "has(user.vip)"]
DYNS = ["user.tier", "user.level", "user.vip", "context.loose"]


def _expression(rng: random.Random, kind: str, depth: int) -> str:
    """A random expression of CEL type ``kind`` (it may still fail to type-check with dyn)."""
    leaf = depth <= 0 or rng.random() < 0.3
    if kind in ("double", "int"):
        if leaf:
            return rng.choice(DOUBLES if kind == "double" else INTS)
        op = rng.choice(["+", "-", "*", "neg", "?:"] + (["/"] if kind == "double" else []))
        if op == "neg":
            return f"-({_expression(rng, kind, depth - 1)})"
        if op == "?:":
            return _ternary(rng, kind, depth)
        left, right = (_expression(rng, kind, depth - 1) for _ in range(2))
        return f"({left} {op} {right})"
    if kind == "string":
        return rng.choice(STRINGS) if leaf else _ternary(rng, "string", depth)
    # bool
    if leaf:
        return rng.choice(BOOLS)
    choice = rng.choice(["cmp", "cmp", "and", "or", "not", "eq", "dyn", "in", "?:"])
    if choice == "cmp":
        kind = rng.choice(["double", "int"])
        op = rng.choice(["<", "<=", ">", ">=", "==", "!="])
        return f"({_expression(rng, kind, depth - 1)} {op} {_expression(rng, kind, depth - 1)})"
    if choice in ("and", "or"):
        op = "&&" if choice == "and" else "||"
        return f"({_expression(rng, 'bool', depth - 1)} {op} {_expression(rng, 'bool', depth - 1)})"
    if choice == "not":
        return f"!({_expression(rng, 'bool', depth - 1)})"
    if choice == "eq":
        kind = rng.choice(["string", "bool"])
        op = rng.choice(["==", "!="])
        return f"({_expression(rng, kind, depth - 1)} {op} {_expression(rng, kind, depth - 1)})"
    if choice == "dyn":
        other = rng.choice(STRINGS + DOUBLES + INTS + BOOLS + DYNS)
        return f"({rng.choice(DYNS)} {rng.choice(['==', '!='])} {other})"
    if choice == "in":
        listed = rng.choice(['["5411", "gold", ""]', "[1, 3, -7]", "[true]"])
        member = rng.choice(STRINGS + INTS + DYNS + BOOLS)
        return f"({member} in {listed})"
    return _ternary(rng, "bool", depth)


def _ternary(rng: random.Random, kind: str, depth: int) -> str:
    test = _expression(rng, "bool", depth - 1)
    return f"({test} ? {_expression(rng, kind, depth - 1)} : {_expression(rng, kind, depth - 1)})"


VALUES = {
    "amount": [12.5, 0.0, -3.25, 7, 10**30, 2**70, "12", True, None, 1e308],
    "count": [3, -7, 0, 9223372036854775807, 2**64, 2.0, 2.5, "3", False, None],
    "category": ["5411", "gold", "", 5411, None, ["5411"]],
    "flag": [True, False, 1, "true", None],
    "loose": [1, 1.0, "gold", True, None, {"a": 1}, [1], 2**64],
}
USER_VALUES = ["gold", "", 3, 3.0, True, None, ["gold"], 2**64]


def _event(rng: random.Random) -> tuple[dict, dict, dict]:
    context = {}
    for name, values in VALUES.items():
        value = rng.choice(values)
        if value is not None or rng.random() < 0.5:  # absent, or null
            context[name] = value
    user = {}
    for name in ("tier", "level", "vip"):
        if rng.random() < 0.7:
            user[name] = rng.choice(USER_VALUES)
    facts = {"n": rng.choice([0, 3, 2**62]), "spend": rng.choice([0.0, 300.5, 1e300])}
    return context, user, facts


def _same(cel_answer: tuple, native_value) -> bool:
    problem, value = cel_answer
    if problem is not None or type(value) is not type(native_value):
        return False
    if isinstance(value, float) and math.isnan(value):
        return math.isnan(native_value)
    return value == native_value and (
        not isinstance(value, float) or math.copysign(1, value) == math.copysign(1, native_value)
    )


def test_native_values_are_cels_wherever_it_answers():
    rng = random.Random(5)
    env = RuleEnvironment(SCHEMA, FACTS)
    events = [_event(rng) for _ in range(60)]
    compiled = answered = unsure = 0
    for _ in range(400):
        kind = rng.choice(["bool", "bool", "double", "int"])
        source = _expression(rng, kind, rng.randint(1, 4))
        try:
            expression = env.compile(source, returns=("bool", "double", "int"))
        except RuleError:
            continue
        native = native_compile(expression, FACT_KEYS)
        assert native is not None, source  # the generator stays within the subset
        compiled += 1
        for context, user, facts in events:
            data = event_data(
                env.fields,
                context=context,
                user=user,
                trigger="purchase",
                occurred_at=AT,
                tags={},
                mode="live",
            )
            cel_answer = evaluate(expression, env.activation(data, facts))
            try:
                value = native(Scope(data, facts))
            except Unsure:
                unsure += 1
                continue
            answered += 1
            assert _same(cel_answer, value), (source, context, user, facts, cel_answer, value)
    assert compiled > 250
    assert answered > unsure  # it answers most, or it would not pay


@pytest.mark.parametrize(
    "source",
    [
        "size(context.category) > 2",
        'context.category.startsWith("54")',
        "[1.0, 2.0].exists(x, x > context.amount)",
        'user["tier"] == "gold"',
        'event.occurred_at > timestamp("2026-01-01T00:00:00Z")',
        'event.tags["channel"] == "web"',
        "context.count / 2 > 1",
        'context.category < "6"',
        "context.amount in [1.0, 2.0]",
        "context.count % 2 == 0",
        "double(context.count) > 1.0",
    ],
)
def test_an_expression_beyond_the_subset_is_left_to_cel(source):
    env = RuleEnvironment(SCHEMA, FACTS)

    expression = env.compile(source, returns=("bool",))

    assert native_compile(expression, FACT_KEYS) is None


def _spec(n: int, condition: str, **fields) -> CampaignSpec:
    values = {
        "reward_type": "fixed",
        "reward_value": Decimal("2"),
        "reward_field": "",
        "reward_expression": "",
        "reward_min": None,
        "reward_max": None,
    } | fields
    return CampaignSpec(
        id=uuid.UUID(int=n),
        partnership_id=uuid.UUID(int=0),
        trigger_id=1,
        slug=f"c{n}",
        priority=0,
        exclusive=False,
        starts_at=None,
        ends_at=None,
        version=1,
        condition=condition,
        facts=[{"name": "n", "aggregate": "count", "window_days": 30}],
        rounding="ROUND_HALF_UP",
        limits=Limits(),
        **values,
    )


def test_a_judge_with_native_rules_gives_the_verdicts_of_cel():
    schemas = [TriggerSchema(1, "purchase", SCHEMA)]
    envs: dict = {}
    specs = [
        _spec(1, 'context.category == "5411" && context.amount >= 10.0'),
        _spec(
            2,
            "facts.n >= 2",
            reward_type="percentage",
            reward_value=Decimal("5"),
            reward_field="amount",
            reward_max=Decimal("10"),
        ),
        _spec(
            3,
            "",
            reward_type="expression",
            reward_expression='context.amount * (user.tier == "gold" ? 0.10 : 0.02)',
        ),
        _spec(
            4,
            "context.count * 3 > 5 || !context.flag",
            reward_type="expression",
            reward_expression="context.amount / 0.0",
        ),
        _spec(
            5,
            "context.amount > 1.0",
            reward_type="expression",
            reward_expression="context.amount * 1e300",
        ),  # beyond the largest amount
    ]
    campaigns = [compile_campaign(spec, schemas, envs) for spec in specs]
    assert all(campaign.native is not None for campaign in campaigns)
    rng = random.Random(9)
    natively = 0
    for _ in range(300):
        context, user, _ = _event(rng)
        facts = {campaigns[1].facts[0]: rng.choice([0, 1, 2, 5])}
        event = EventValue(None, "purchase", context, {}, "live", AT, AT)
        judged = {
            native: event_judge(campaigns, event, user=user, facts=facts, places=2, native=native)
            for native in (False, True)
        }
        assert judged[True] == judged[False], (context, user, facts)
        natively += sum(v.outcome is None for v in judged[True])
    assert natively > 50
