"""Decisions are stored as codes and parameters, small enough for a hundred campaigns, and read
in words by the status API and Pilot; events stored in the old form still read the same."""

from decimal import Decimal

import pytest
from django.db import connection

from tests.factories import CampaignFactory, TriggerEventFactory

pytestmark = pytest.mark.django_db


def stored_bytes(event) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT octet_length(decisions::text) FROM triggers_triggerevent WHERE id = %s",
            [event.id],
        )
        return cursor.fetchone()[0]


def test_a_hundred_decisions_take_under_64_bytes_each(trigger, process):
    for index in range(100):
        CampaignFactory(trigger=trigger, slug=f"mcc-{index}", condition="context.amount > 1000.0")
    event = TriggerEventFactory(trigger=trigger)

    process()

    event.refresh_from_db()
    assert len(event.decisions) == 100
    assert event.decisions[0][1:] == ["condition_false"]
    assert stored_bytes(event) < 100 * 64  # in words, they took ~158 bytes each


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
