from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from campaigns.services import campaign_save
from config.errors import ErrorCode
from partnerships.models import AuditEntry
from rewards.models import CampaignCounter, Reward, UserCounter
from tests.factories import CampaignFactory, EndUserFactory, TriggerEventFactory
from tests.pilot_support import page_text, pilot_operator
from tests.rewards.conftest import decisions
from triggers.models import TriggerEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def reverse(partner_client, partnership):
    def call(body: dict, **headers):
        return partner_client.post(
            f"/partnerships/{partnership.id}/triggers/reverse", body, format="json", **headers
        )

    return call


def counter(campaign) -> CampaignCounter:
    return CampaignCounter.objects.get(campaign=campaign, mode="live")


def test_reversing_an_event_reverses_its_rewards_and_gives_the_budget_back(
    trigger, process, reverse
):
    campaign = CampaignFactory(trigger=trigger, slug="pot", budget=Decimal("10"))
    first = TriggerEventFactory(trigger=trigger)
    process()
    blocked = TriggerEventFactory(trigger=trigger)
    process()
    assert decisions(blocked) == {"pot": "budget_exhausted"}

    response = reverse({"trigger_event_id": str(first.id), "reason": "refund #42"})

    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["trigger_event_id"] == str(first.id)
    assert data["reason"] == "refund #42"
    assert data["reversals"] == [
        {
            "reward_id": data["reversals"][0]["reward_id"],
            "campaign": "pot",
            "amount": "10.00",
            "remaining": "0.00",
            "reward_status": "reversed",
        }
    ]
    assert counter(campaign).spent == 0
    assert counter(campaign).reward_count == 0
    # The freed budget rewards the next event.
    later = TriggerEventFactory(trigger=trigger)
    process()
    assert decisions(later) == {"pot": "rewarded"}


def test_reversing_by_trigger_and_user_takes_their_latest_unreversed_event(
    trigger, process, reverse
):
    CampaignFactory(trigger=trigger, slug="c")
    user = EndUserFactory(partnership=trigger.partnership, external_user_id="alice")
    older = TriggerEventFactory(trigger=trigger, end_user=user)
    newer = TriggerEventFactory(trigger=trigger, end_user=user)
    process()
    body = {"trigger_name": trigger.name, "external_user_id": "alice"}

    first = reverse(body)
    second = reverse(body)
    third = reverse(body)

    assert first.json()["data"]["trigger_event_id"] == str(newer.id)
    assert second.json()["data"]["trigger_event_id"] == str(older.id)
    assert third.status_code == 404
    assert third.json()["code"] == ErrorCode.TRIGGER_EVENT_DOES_NOT_EXIST
    assert not Reward.objects.filter(status="issued").exists()


def test_reversing_by_trigger_and_user_skips_their_events_that_earned_nothing(
    trigger, process, reverse
):
    CampaignFactory(trigger=trigger, slug="c", condition="context.amount >= 20.0")
    user = EndUserFactory(partnership=trigger.partnership, external_user_id="alice")
    earned = TriggerEventFactory(
        trigger=trigger, end_user=user, context={"amount": 30, "currency": "USD"}
    )
    TriggerEventFactory(trigger=trigger, end_user=user, context={"amount": 5, "currency": "USD"})
    process()

    response = reverse({"trigger_name": trigger.name, "external_user_id": "alice"})

    assert response.status_code == 200, response.content
    assert response.json()["data"]["trigger_event_id"] == str(earned.id)
    assert Reward.objects.get().status == "reversed"


def test_partial_clawback_is_split_in_proportion_and_sums_exactly(trigger, process, reverse):
    CampaignFactory(trigger=trigger, slug="one", reward_value=Decimal("1"))
    CampaignFactory(trigger=trigger, slug="two", reward_value=Decimal("2"))
    event = TriggerEventFactory(trigger=trigger)
    process()

    response = reverse({"trigger_event_id": str(event.id), "amount": "1.00"})

    shares = {r["campaign"]: r["amount"] for r in response.json()["data"]["reversals"]}
    assert shares == {"one": "0.33", "two": "0.67"}
    rewards = {r.campaign.slug: r for r in Reward.objects.select_related("campaign")}
    assert rewards["one"].remaining == Decimal("0.67")
    assert rewards["two"].status == "issued"
    assert sum(c.spent for c in CampaignCounter.objects.filter(mode="live")) == Decimal("2")


def test_partial_clawbacks_until_nothing_is_left(trigger, process, reverse):
    campaign = CampaignFactory(trigger=trigger, reward_value=Decimal("5"))
    event = TriggerEventFactory(trigger=trigger)
    process()

    reverse({"trigger_event_id": str(event.id), "amount": "2"})
    reverse({"trigger_event_id": str(event.id), "amount": "3"})
    again = reverse({"trigger_event_id": str(event.id), "amount": "1"})

    assert again.status_code == 409
    assert again.json()["code"] == ErrorCode.ALREADY_REVERSED
    reward = Reward.objects.get()
    assert reward.status == "reversed" and reward.reversed_amount == Decimal("5")
    assert counter(campaign).spent == 0 and counter(campaign).reward_count == 0


def test_clawing_back_more_than_remains_is_refused(trigger, process, reverse):
    CampaignFactory(trigger=trigger, reward_value=Decimal("5"))
    event = TriggerEventFactory(trigger=trigger)
    process()

    response = reverse({"trigger_event_id": str(event.id), "amount": "6"})

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "amount"
    assert Reward.objects.get().reversed_amount == 0


def test_per_user_cap_is_given_back(trigger, process, reverse):
    campaign = CampaignFactory(trigger=trigger, slug="once", max_rewards_per_user=1)
    user = EndUserFactory(partnership=trigger.partnership)
    first = TriggerEventFactory(trigger=trigger, end_user=user)
    process()

    reverse({"trigger_event_id": str(first.id)})
    again = TriggerEventFactory(trigger=trigger, end_user=user)
    process()

    assert decisions(again) == {"once": "rewarded"}
    assert UserCounter.objects.get(campaign=campaign, end_user=user, period="").reward_count == 1


def test_reversal_gives_back_the_counters_of_the_limits_it_was_issued_under(
    trigger, process, reverse
):
    campaign = CampaignFactory(
        trigger=trigger, slug="daily", max_rewards_per_user_per_period=1, period="day"
    )
    user = EndUserFactory(partnership=trigger.partnership)
    monday = datetime(2026, 11, 23, 12, tzinfo=UTC)
    first = TriggerEventFactory(trigger=trigger, end_user=user, occurred_at=monday)
    process()
    campaign.period = "week"  # the operator switches to once a week
    campaign_save(campaign=campaign)
    wednesday = TriggerEventFactory(
        trigger=trigger, end_user=user, occurred_at=monday + timedelta(days=2)
    )
    process()
    assert decisions(wednesday) == {"daily": "rewarded"}

    response = reverse({"trigger_event_id": str(first.id)})

    assert response.status_code == 200, response.content
    periods = dict(
        UserCounter.objects.filter(campaign=campaign, end_user=user).values_list(
            "period", "reward_count"
        )
    )
    # Monday's reward left Monday's counter; the week still holds Wednesday's reward.
    assert periods == {"": 1, "2026-11-23": 0, "2026-W48": 1}
    thursday = TriggerEventFactory(
        trigger=trigger, end_user=user, occurred_at=monday + timedelta(days=3)
    )
    process()
    assert decisions(thursday) == {"daily": "period_cap_reached"}


def test_reversing_a_reward_issued_before_a_user_cap_existed_leaves_the_cap_alone(
    trigger, process, reverse
):
    campaign = CampaignFactory(trigger=trigger, slug="c")
    user = EndUserFactory(partnership=trigger.partnership)
    uncapped = TriggerEventFactory(trigger=trigger, end_user=user)
    process()
    campaign.max_rewards_per_user = 1
    campaign_save(campaign=campaign)
    TriggerEventFactory(trigger=trigger, end_user=user)
    process()

    response = reverse({"trigger_event_id": str(uncapped.id)})

    assert response.status_code == 200, response.content
    assert UserCounter.objects.get(campaign=campaign, end_user=user).reward_count == 1
    again = TriggerEventFactory(trigger=trigger, end_user=user)
    process()
    assert decisions(again) == {"c": "user_cap_reached"}


def test_reversing_a_queued_event_cancels_it_and_nothing_is_issued_later(trigger, process, reverse):
    CampaignFactory(trigger=trigger)
    event = TriggerEventFactory(trigger=trigger)

    response = reverse({"trigger_event_id": str(event.id)})
    process()

    assert response.json()["data"]["cancelled_event"] is True
    event.refresh_from_db()
    assert event.status == "cancelled"
    assert not Reward.objects.exists()


def test_idempotent_reversal_replays_and_refuses_a_different_body(trigger, process, reverse):
    CampaignFactory(trigger=trigger)
    event = TriggerEventFactory(trigger=trigger)
    process()
    body = {"trigger_event_id": str(event.id), "reason": "refund"}

    first = reverse(body, HTTP_IDEMPOTENCY_KEY="rev-1")
    again = reverse(body, HTTP_IDEMPOTENCY_KEY="rev-1")
    other = reverse({**body, "reason": "other"}, HTTP_IDEMPOTENCY_KEY="rev-1")
    unkeyed = reverse(body)

    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["data"]["reversal_id"] == first.json()["data"]["reversal_id"]
    assert other.status_code == 409 and other.json()["code"] == ErrorCode.IDEMPOTENCY_KEY_REUSED
    assert unkeyed.status_code == 409 and unkeyed.json()["code"] == ErrorCode.ALREADY_REVERSED


def test_event_of_another_partnership_cannot_be_reversed(trigger, reverse):
    stranger = TriggerEventFactory()

    response = reverse({"trigger_event_id": str(stranger.id)})

    assert response.status_code == 404
    assert TriggerEvent.objects.get(pk=stranger.pk).status == "queued"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "trigger_event_id"),
        ({"trigger_name": "transaction_completed"}, "external_user_id"),
        ({"trigger_event_id": "nope"}, "trigger_event_id"),
        ({"trigger_event_id": "6f1c4b7e-1d2a-4c1e-9a51-0f5b7d1c2a3b", "amount": "-1"}, "amount"),
    ],
)
def test_bad_reversal_bodies_are_refused_per_field(trigger, reverse, body, field):
    response = reverse(body)

    assert response.status_code == 422
    assert response.json()["code"] == ErrorCode.VALIDATION_ERROR
    assert field in [error["field"] for error in response.json()["errors"]]


def test_status_endpoint_shows_the_reversal(partner_client, trigger, process, reverse):
    CampaignFactory(trigger=trigger)
    event = TriggerEventFactory(trigger=trigger)
    process()
    reverse({"trigger_event_id": str(event.id), "reason": "refund"})

    data = partner_client.get(
        f"/partnerships/{event.partnership_id}/trigger-events/{event.id}"
    ).json()["data"]

    assert data["rewards"][0]["status"] == "reversed"
    assert data["rewards"][0]["reversed_amount"] == "10.00"
    assert data["reversals"][0]["reason"] == "refund"


def test_test_mode_reversal_touches_only_test_counters(trigger, process, test_client):
    campaign = CampaignFactory(trigger=trigger)
    test_event = TriggerEventFactory(trigger=trigger, mode="test")
    TriggerEventFactory(trigger=trigger, mode="live")
    process()

    response = test_client.post(
        f"/partnerships/{trigger.partnership_id}/triggers/reverse",
        {"trigger_event_id": str(test_event.id)},
        format="json",
    )

    assert response.status_code == 200, response.content

    assert CampaignCounter.objects.get(campaign=campaign, mode="test").spent == 0
    assert counter(campaign).spent == Decimal("10")


def test_a_reversed_failed_event_is_refused_a_retry_and_never_pays(
    trigger, process, reverse, settings, django_user_model
):
    settings.EVENT_MAX_ATTEMPTS = 1
    CampaignFactory(trigger=trigger, slug="c")
    event = TriggerEventFactory(trigger=trigger)

    def breaks(events):
        raise RuntimeError("boom")

    process(processor=breaks)
    event.refresh_from_db()
    assert event.status == "failed"
    assert reverse({"trigger_event_id": str(event.id), "reason": "refund"}).status_code == 200
    support = pilot_operator(
        django_user_model,
        "support",
        partnerships=[trigger.partnership],
        perms=("triggers.view_triggerevent", "triggers.change_triggerevent"),
    )

    response = support.post(f"/pilot/triggers/triggerevent/{event.pk}/retry/")
    process()

    assert response.status_code == 409
    assert "The event was reversed; it cannot be retried" in page_text(response)
    event.refresh_from_db()
    assert event.status == "failed"
    assert not Reward.objects.filter(trigger_event=event).exists()
    assert not AuditEntry.objects.filter(action="event.retry").exists()
