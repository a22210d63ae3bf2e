"""A replay binds the variables its native rules read as the workers' ``event_data`` does: the
same keys, values and types, for every kind of declared field and value."""

import random
from datetime import UTC, datetime
from types import SimpleNamespace

from campaigns.rules import RuleEnvironment, event_data
from rewards.simulation.events import EventRow
from rewards.simulation.judging import SetJudge
from rewards.simulation.tally import Tally
from tests.campaigns.test_native import SCHEMA

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


def test_the_variables_a_replay_binds_are_the_workers_for_every_declared_type():
    env = RuleEnvironment(CONTEXT, {}, USERS)
    judge = SetJudge(
        [],
        subject_key="",
        trigger_name="purchase",
        mode="live",
        places=2,
        zone=UTC,
        tally=Tally(),
        on_subject=lambda *args: None,
    )
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
