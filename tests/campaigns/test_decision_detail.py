"""What Pilot shows of a decision beyond its words: the facts the rules saw (a fifth stored
element, only for campaigns that read facts) and the limits a limit outcome met; decisions
stored without them read as before."""

import uuid

import orjson

from campaigns.decisions import Decision, Outcome, decision_describe, limits_met, params

CAMPAIGN = uuid.UUID("5d0c8a52-3f5e-4c3e-9d8e-3b1e2f6a7c90")


def stored(decision: Decision) -> list:
    return orjson.loads(orjson.dumps(decision.packed()))


def test_the_facts_seen_are_a_fifth_element_and_read_back():
    decision = Decision(CAMPAIGN, Outcome.CONDITION_FALSE, facts={"purchases_30d": 2})

    assert stored(decision) == [str(CAMPAIGN), "condition_false", None, None, {"purchases_30d": 2}]
    assert Decision.unpack(stored(decision)) == decision
    assert decision_describe(stored(decision), {}).facts == {"purchases_30d": 2}


def test_a_decision_without_facts_keeps_its_short_form_and_reads_none():
    decision = Decision(CAMPAIGN, Outcome.BUDGET_EXHAUSTED, None, params(amount="10.00"))

    assert len(stored(decision)) == 4
    view = decision_describe(stored(decision), {})
    assert (view.facts, view.limits) == (None, ())


def test_the_limits_met_are_put_in_words():
    assert limits_met(params(amount="10.00", budget="500")) == ("budget 500",)
    assert limits_met(params(amount="1", max_rewards_per_user=3, max_amount_per_user="50")) == (
        "at most 3 rewards per user",
        "at most 50 per user",
    )
    assert limits_met(params(period="week", max_rewards_per_user_per_period=1)) == (
        "at most 1 rewards per user per week",
    )


def test_a_blocked_users_decision_has_words_and_a_label():
    from campaigns.decisions import outcome_label

    assert Decision(CAMPAIGN, Outcome.USER_BLOCKED).message == (
        "the user is blocked: they earn nothing until unblocked"
    )
    assert outcome_label("user_blocked") == "User blocked"
