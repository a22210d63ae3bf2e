"""A replay binds the variables its native rules read as the workers' ``event_data`` does: the
same keys, values and types, for every kind of declared field and value."""

import dataclasses
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest

from campaigns.compiler import TriggerSchema, compile_campaign
from campaigns.decisions import Outcome
from campaigns.engine import InvalidCampaign, Limits
from campaigns.judge import EventValue, event_judge, event_settle
from campaigns.rules import RuleEnvironment, event_data
from rewards.simulation.events import EventRow
from rewards.simulation.judging import SetJudge
from rewards.simulation.tally import Tally
from tests.campaigns.test_native import SCHEMA, _spec

CONTEXT = {**SCHEMA, "properties": {**SCHEMA["properties"], "unread": {"type": "number"}}}
USERS = {
    "type": "object",
    "properties": {"tier": {"type": "string"}, "level": {"type": "integer"}, "score": {}},
}
VALUES = [None, 0, 3, -7, 2.0, 2.5, True, False, "5411", "", 2**70, 2**1100, [1, 2], {"a": 1}]
AT = datetime(2026, 12, 1, 12, tzinfo=UTC)
READ = {
    *(f"context.{name}" for name in ("amount", "count", "category", "flag", "loose")),
    *(f"user.{name}" for name in ("tier", "level", "score")),
    "user",
    "event.trigger",
    "event.mode",
}


def _typed(data: dict) -> dict:
    return {key: (type(value), value) for key, value in data.items()}


def _judge(campaigns: list) -> SetJudge:
    return SetJudge(
        campaigns,
        subject_key=campaigns[0].key if campaigns else "",
        trigger_name="purchase",
        mode="live",
        places=2,
        zone=UTC,
        tally=Tally(),
        on_subject=lambda *args: None,
    )


def test_the_variables_a_replay_binds_are_the_workers_for_every_declared_type():
    env = RuleEnvironment(CONTEXT, {}, USERS)
    judge = _judge([])
    judge._reads = frozenset(READ)
    rng = random.Random(3)
    for _ in range(400):
        context = {name: rng.choice(VALUES) for name in CONTEXT["properties"] if rng.random() < 0.8}
        user = {name: rng.choice(VALUES) for name in USERS["properties"] if rng.random() < 0.8}
        row = EventRow("e", "u", context, {"k": "v"}, AT, AT)

        ours = judge._data(SimpleNamespace(env=env), row, user)

        theirs = event_data(
            env.fields,
            context=context,
            user=user,
            trigger="purchase",
            occurred_at=AT,
            tags={"k": "v"},
            mode="live",
            user_fields=env.user_fields,
        )
        assert _typed(ours) == _typed(
            {key: value for key, value in theirs.items() if key in READ or key.startswith("event.")}
        ), (context, user)


# --- The loop against event_judge and event_settle, on generated campaign sets and events -------

CATEGORIES = ["5411", "5541", "4511", 7, None]  # None: absent; 7: not a string (no guard)
CONDITIONS = [
    'context.category == "{c}" && context.amount >= 20.0',
    'context.category == "{c}"',
    'context.category == "{c}" && facts.n >= 2',
    'context.category == "{c}" && context.category.startsWith("5")',  # beyond the subset
    "context.amount >= 100.0",
    "",
    'user.tier == "gold"',  # absent for some users: CEL decides
]
REWARDS = [
    {},
    {"reward_type": "percentage", "reward_value": Decimal("10"), "reward_field": "amount"},
    {"reward_type": "expression", "reward_expression": "context.amount - 50.0"},  # zero at times
    {"reward_type": "expression", "reward_expression": "context.amount / (context.amount - 10.0)"},
]
LIMITS = [
    Limits(),
    Limits(budget=Decimal("40")),
    Limits(max_rewards=6),
    Limits(max_rewards_per_user=2),
    Limits(max_amount_per_user=Decimal("15")),
    Limits(max_rewards_per_user_per_period=1, period="day"),
]
START = datetime(2026, 11, 20, tzinfo=UTC)


def _campaign_set(rng: random.Random, schemas, envs) -> list:
    campaigns = []
    for n in range(rng.randint(1, 10)):
        starts = ends = None
        if rng.random() < 0.2:
            starts = START + timedelta(days=rng.randint(0, 2))
        if rng.random() < 0.2:
            ends = START + timedelta(days=rng.randint(3, 9))
        spec = dataclasses.replace(
            _spec(
                n + 1,
                rng.choice(CONDITIONS).format(c=rng.choice(CATEGORIES[:3])),
                **rng.choice(REWARDS),
            ),
            priority=rng.randint(0, 3),
            exclusive=rng.random() < 0.3,
            starts_at=starts,
            ends_at=ends,
            grace_days=rng.randint(0, 1),
            limits=rng.choice(LIMITS),
        )
        campaign = compile_campaign(spec, schemas, envs)
        if rng.random() < 0.1:
            campaign = InvalidCampaign(
                spec.id, str(spec.id), spec.slug, spec.priority, spec.exclusive, {"x": "bad"}
            )
        campaigns.append(campaign)
    return sorted(campaigns, key=lambda c: -c.priority)


@pytest.mark.parametrize("seed", range(40))
def test_the_loop_decides_as_event_judge_and_event_settle_on_generated_sets(seed):
    rng = random.Random(seed)
    schemas, envs = [TriggerSchema(1, "purchase", SCHEMA)], {}
    campaigns = _campaign_set(rng, schemas, envs)
    users = {f"u{n}": rng.choice([{}, {"tier": "gold"}, {"tier": "silver"}]) for n in range(5)}
    blocked = {"u4"}
    specs = [spec for c in campaigns if hasattr(c, "facts") for spec in c.facts]  # all "n"
    tally = Tally()
    judge = _judge(campaigns)
    judge.record = {}
    expected: dict = {}
    for n in range(300):
        received = START + timedelta(hours=n)
        occurred = received - timedelta(hours=rng.choice([0, 0, 30]))
        context = {"amount": round(rng.uniform(5, 200), 2), "currency": "USD"}
        if (category := rng.choice(CATEGORIES)) is not None:
            context["category"] = category
        user = rng.choice(list(users))
        facts = {spec: rng.randint(0, 3) for spec in specs[:1]}
        row = EventRow(f"e{n}", user, context, {}, occurred, received)

        judge.judge(
            [row], attributes=users, blocked=blocked, facts_of=lambda row, facts=facts: facts
        )

        verdicts = event_judge(
            campaigns,
            EventValue(row.id, "purchase", context, {}, "live", occurred, received),
            user=users[user],
            facts=facts,
            places=2,
            blocked=user in blocked,
            native=True,
        )

        def reserve(campaign, amount, user=user, occurred=occurred):
            return tally.reserve(
                campaign, amount, mode="live", user_id=user, occurred_at=occurred, zone=UTC
            )

        expected[row.id] = event_settle(verdicts, rewarded_before=(), reserve=reserve)

    def explicit(decisions):
        return [(key, o, a) for key, o, a in decisions if o != Outcome.CONDITION_FALSE]

    by_id = {c.id: c.key for c in campaigns}
    assert {pk: explicit(judge.record.get(pk, [])) for pk in expected} == {
        pk: explicit([(by_id[d.campaign_id], d.outcome, d.amount) for d in decisions])
        for pk, decisions in expected.items()
    }
    for entry in judge.entries:
        mine = [
            d
            for decisions in expected.values()
            for d in decisions
            if d.campaign_id == entry.campaign.id
        ]
        false = sum(d.outcome == Outcome.CONDITION_FALSE for d in mine)
        assert judge.condition_false(entry) == false, entry.campaign.slug
        assert entry.totals.rewards == sum(d.outcome == Outcome.REWARDED for d in mine)
