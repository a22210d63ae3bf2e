"""Decisions: stable codes and parameters, stored as short arrays, put into words when read;
decisions stored before that form (objects with the words) still read the same."""

import uuid
from decimal import Decimal

import orjson

from campaigns.decisions import Decision, Outcome, decision_describe, params

CAMPAIGN = uuid.UUID("5d0c8a52-3f5e-4c3e-9d8e-3b1e2f6a7c90")


def stored(decision: Decision) -> list:
    """As it comes back from the JSON column."""
    return orjson.loads(orjson.dumps(decision.packed()))


def test_the_common_decisions_are_an_id_and_a_code():
    assert stored(Decision(CAMPAIGN, Outcome.CONDITION_FALSE)) == [
        str(CAMPAIGN),
        "condition_false",
    ]
    assert stored(Decision(CAMPAIGN, Outcome.REWARDED, Decimal("2.13"))) == [
        str(CAMPAIGN),
        "rewarded",
        "2.13",
    ]


def test_a_stored_decision_reads_back_as_the_same_value():
    decision = Decision(CAMPAIGN, Outcome.BUDGET_EXHAUSTED, None, params(amount="10.00"))

    assert Decision.unpack(stored(decision)) == decision


def test_a_stored_decision_is_put_into_words_with_the_campaigns_slug_now():
    decision = Decision(CAMPAIGN, Outcome.USER_CAP_REACHED, None, params(amount="7.50"))

    view = decision_describe(stored(decision), {CAMPAIGN: "weekly-bonus"})

    assert (view.campaign_id, view.campaign, view.outcome, view.amount) == (
        CAMPAIGN,
        "weekly-bonus",
        "user_cap_reached",
        None,
    )
    assert view.message == "a reward of 7.50 would exceed the user's cap"


def test_a_decision_stored_in_the_old_form_reads_as_it_was_stored():
    old = {
        "campaign_id": str(CAMPAIGN),
        "campaign": "cashback",
        "outcome": "rewarded",
        "amount": "2.13",
        "message": "",
    }

    view = decision_describe(old, {})
    renamed = decision_describe(
        {**old, "outcome": "condition_false", "amount": None, "message": "condition is false"},
        {CAMPAIGN: "cash-back"},
    )

    assert (view.campaign, view.outcome, view.amount, view.message) == (
        "cashback",
        "rewarded",
        "2.13",
        "",
    )
    assert (renamed.campaign, renamed.message) == ("cash-back", "condition is false")


def test_every_outcome_has_words_even_with_parameters_missing():
    for outcome in Outcome:
        message = Decision(CAMPAIGN, outcome).message
        assert isinstance(message, str)
    assert Decision(CAMPAIGN, Outcome.ZERO_AMOUNT).message == "the computed reward is ?"


def test_a_rule_errors_words_come_from_its_reason_code():
    decision = Decision(
        CAMPAIGN, Outcome.ERROR, None, params(reason="field_not_number", field="amount")
    )

    assert decision.message == "context.amount is not a number"


def test_an_outcome_this_version_does_not_know_still_reads():
    view = decision_describe([str(CAMPAIGN), "from_the_future"], {CAMPAIGN: "cashback"})

    assert (view.campaign, view.outcome, view.amount, view.message) == (
        "cashback",
        "from_the_future",
        None,
        "",
    )


def test_every_outcome_has_words_for_reports():
    from campaigns.decisions import _OUTCOME_LABELS, outcome_label

    assert set(_OUTCOME_LABELS) == set(Outcome)
    assert outcome_label("condition_false") == "Condition not met"
    assert outcome_label("a_newer_outcome") == "A newer outcome"


def test_the_compact_form_expands_to_one_array_per_campaign_of_its_list():
    from campaigns.decisions import decisions_expand

    ids = [uuid.uuid4() for _ in range(4)]
    stored = {
        "candidates": 1,
        "n": 4,
        "decisions": [
            [1, "rewarded", "2.00", None, {"n30": 3}],
            [3, "condition_false", None, {"reason": "absent", "detail": "x"}],
        ],
        "facts": {"n30": 3, "total": 1.5},
    }
    names = [[], ["n30"], ["n30", "total"], None]

    assert decisions_expand(stored, ids, names) == [
        [str(ids[0]), "condition_false"],
        [str(ids[1]), "rewarded", "2.00", None, {"n30": 3}],
        [str(ids[2]), "condition_false", None, None, {"n30": 3, "total": 1.5}],
        [str(ids[3]), "condition_false", None, {"reason": "absent", "detail": "x"}],
    ]
    del stored["facts"]  # facts not loaded for the event: none kept, as in the array form
    assert decisions_expand(stored, ids, names)[2] == [str(ids[2]), "condition_false"]
