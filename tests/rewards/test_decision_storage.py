"""Decisions are stored as codes and parameters, small enough for a hundred campaigns, and read
in words by the status API and Pilot; events stored in the old form still read the same."""

from decimal import Decimal

import pytest
from django.db import connection

from campaigns.selectors import trigger_event_decisions as decision_views
from tests.factories import CampaignFactory, TriggerEventFactory

pytestmark = pytest.mark.django_db


def stored_bytes(event) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT octet_length(decisions::text) FROM triggers_triggerevent WHERE id = %s",
            [event.id],
        )
        return cursor.fetchone()[0]


def test_a_hundred_unmet_conditions_are_stored_in_a_few_bytes_and_read_in_words(
    partner_client, trigger, process
):
    for index in range(100):
        CampaignFactory(trigger=trigger, slug=f"mcc-{index}", condition="context.amount > 1000.0")
    event = TriggerEventFactory(trigger=trigger)

    process()

    event.refresh_from_db()
    assert event.decisions["n"] == 100 and event.decisions["decisions"] == []
    assert stored_bytes(event) < 64  # as 100 arrays they took ~58 bytes each
    data = partner_client.get(
        f"/partnerships/{event.partnership_id}/trigger-events/{event.id}"
    ).json()["data"]
    assert [(d["campaign"], d["outcome"], d["message"]) for d in data["decisions"]] == [
        (f"mcc-{index}", "condition_false", "condition is false") for index in range(100)
    ]


def test_the_status_api_reads_decisions_in_words(partner_client, trigger, process):
    CampaignFactory(trigger=trigger, slug="pot", priority=3, budget=Decimal("5"))
    CampaignFactory(
        trigger=trigger, slug="big-only", priority=2, condition="context.amount > 1000.0"
    )
    CampaignFactory(trigger=trigger, slug="tier", priority=1, condition='user.tier == "gold"')
    event = TriggerEventFactory(trigger=trigger)

    process()
    data = partner_client.get(
        f"/partnerships/{event.partnership_id}/trigger-events/{event.id}"
    ).json()["data"]

    assert [
        (d["campaign"], d["outcome"], d["amount"], d["message"]) for d in data["decisions"]
    ] == [
        ("pot", "budget_exhausted", None, "a reward of 10.00 would exceed the campaign's budget"),
        ("big-only", "condition_false", None, "condition is false"),
        (
            "tier",
            "condition_false",
            None,
            'condition not met: NOT_FOUND: Key not found in map : "tier"',
        ),
    ]
    assert set(data["decisions"][0]) == {"campaign_id", "campaign", "outcome", "amount", "message"}


def test_decisions_stored_in_the_old_form_read_as_they_were(partner_client, admin_client, trigger):
    campaign = CampaignFactory(trigger=trigger, slug="cashback")
    old = [
        {
            "campaign_id": str(campaign.id),
            "campaign": "cashback",
            "outcome": "rewarded",
            "amount": "2.13",
            "message": "",
        },
        {
            "campaign_id": "0b0b0b0b-0000-4000-8000-000000000000",  # deleted since
            "campaign": "gone",
            "outcome": "budget_exhausted",
            "amount": None,
            "message": "a reward of 5 would exceed the campaign's limit",
        },
    ]
    event = TriggerEventFactory(trigger=trigger, status="processed", decisions=old)

    data = partner_client.get(
        f"/partnerships/{event.partnership_id}/trigger-events/{event.id}"
    ).json()["data"]
    page = admin_client.get(f"/pilot/triggers/triggerevent/{event.id}/change/").content.decode()

    assert data["decisions"] == old
    assert "a reward of 5 would exceed the campaign&#x27;s limit" in page


def test_pilot_shows_an_events_decisions_in_words(admin_client, trigger, process):
    CampaignFactory(trigger=trigger, slug="big-only", condition="context.amount > 1000.0")
    event = TriggerEventFactory(trigger=trigger)
    process()

    page = admin_client.get(f"/pilot/triggers/triggerevent/{event.id}/change/").content.decode()

    assert "<td>big-only</td><td>condition_false</td>" in page
    assert "condition is false" in page


def fact(window: int) -> list[dict]:
    return [{"name": "n", "aggregate": "count", "window_days": window}]


def test_facts_are_kept_once_per_event_unless_one_name_means_two_facts(trigger, process):
    unmet = "context.amount > 1000.0 && facts.n >= 0"
    CampaignFactory(trigger=trigger, slug="month", condition=unmet, facts=fact(30))
    CampaignFactory(trigger=trigger, slug="month-too", condition=unmet, facts=fact(30))
    CampaignFactory(trigger=trigger, slug="week", condition=unmet, facts=fact(7))
    earlier = TriggerEventFactory(trigger=trigger)
    process()
    event = TriggerEventFactory(trigger=trigger, end_user=earlier.end_user)
    process()

    event.refresh_from_db()
    views = {v.campaign: (v.outcome, dict(v.facts)) for v in decision_views(event=event)}
    assert views == {  # both events count
        "month": ("condition_false", {"n": 2}),
        "month-too": ("condition_false", {"n": 2}),
        "week": ("condition_false", {"n": 2}),
    }
    # "n" names two facts here: the list keeps none once; each decision keeps its own.
    assert len(event.decisions["decisions"]) == 3 and "facts" not in event.decisions


def test_campaigns_reading_the_same_fact_keep_its_value_once(trigger, process):
    fact = [{"name": "n", "aggregate": "count", "window_days": 30}]
    unmet = "context.amount > 1000.0 && facts.n >= 0"
    CampaignFactory(trigger=trigger, slug="month", condition=unmet, facts=fact)
    CampaignFactory(trigger=trigger, slug="month-too", condition=unmet, facts=fact)
    event = TriggerEventFactory(trigger=trigger)
    process()

    event.refresh_from_db()
    assert event.decisions["decisions"] == [] and event.decisions["facts"] == {"n": 1}
    views = {v.campaign: (v.outcome, dict(v.facts)) for v in decision_views(event=event)}
    assert views == {
        "month": ("condition_false", {"n": 1}),
        "month-too": ("condition_false", {"n": 1}),
    }


def test_campaigns_a_guard_sets_aside_keep_their_own_facts_when_a_name_means_two(trigger, process):
    grocery = 'context.merchant_category == "5411" && facts.n >= 0'
    CampaignFactory(trigger=trigger, slug="month", condition=grocery, facts=fact(30))
    CampaignFactory(trigger=trigger, slug="week", condition=grocery, facts=fact(7))
    CampaignFactory(trigger=trigger, slug="any", condition="facts.n >= 0", facts=fact(7))
    event = TriggerEventFactory(
        trigger=trigger, context={"amount": 25, "currency": "USD", "merchant_category": "5999"}
    )
    process()

    event.refresh_from_db()
    views = {v.campaign: (v.outcome, dict(v.facts or {})) for v in decision_views(event=event)}
    assert views == {
        "month": ("condition_false", {"n": 1}),
        "week": ("condition_false", {"n": 1}),
        "any": ("rewarded", {"n": 1}),
    }
    assert [item[0] for item in event.decisions["decisions"]] == [0, 1, 2]  # in list order
