import pytest

from tests.factories import CampaignFactory, TriggerEventFactory

pytestmark = pytest.mark.django_db


def test_status_shows_decisions_and_rewards(partner_client, trigger, process):
    CampaignFactory(
        trigger=trigger,
        slug="cashback",
        priority=2,
        reward_type="percentage",
        reward_value=5,
        reward_field="amount",
    )
    CampaignFactory(
        trigger=trigger, slug="big-only", priority=1, condition="context.amount > 1000.0"
    )
    event = TriggerEventFactory(trigger=trigger, context={"amount": 42.5, "currency": "USD"})

    process()
    response = partner_client.get(f"/partnerships/{event.partnership_id}/trigger-events/{event.id}")

    data = response.json()["data"]
    assert data["status"] == "processed"
    assert [(d["campaign"], d["outcome"], d["amount"]) for d in data["decisions"]] == [
        ("cashback", "rewarded", "2.13"),
        ("big-only", "condition_false", None),
    ]
    (reward,) = data["rewards"]
    assert reward["campaign"] == "cashback"
    assert reward["amount"] == "2.13"
    assert reward["unit"] == "Points"
    assert reward["status"] == "issued"


def test_status_of_a_waiting_event_has_no_decisions_yet(partner_client, trigger):
    event = TriggerEventFactory(trigger=trigger)

    data = partner_client.get(
        f"/partnerships/{event.partnership_id}/trigger-events/{event.id}"
    ).json()["data"]

    assert data["status"] == "queued"
    assert data["decisions"] == []
    assert data["rewards"] == []


def test_pilot_lists_rewards_and_shows_decisions(admin_client, trigger, process):
    CampaignFactory(trigger=trigger)
    event = TriggerEventFactory(trigger=trigger)
    process()

    assert admin_client.get("/pilot/rewards/reward/").status_code == 200
    page = admin_client.get(f"/pilot/triggers/triggerevent/{event.id}/change/")
    assert page.status_code == 200
    assert b"rewarded" in page.content
