"""Test and live never touch each other: a key reads and reverses only its own mode's data."""

from decimal import Decimal

import pytest
from django.utils import timezone

from config.errors import ErrorCode
from rewards.models import Reversal, Reward
from tests.factories import CampaignFactory, EndUserFactory, TriggerEventFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def clients(partner_client, test_client) -> dict:
    return {"live": partner_client, "test": test_client}


@pytest.fixture
def alice(partnership):
    return EndUserFactory(partnership=partnership, external_user_id="alice")


@pytest.fixture
def rewarded(trigger, alice, process):
    """A live and a test event of alice, each rewarded 10 by one campaign."""
    CampaignFactory(trigger=trigger, slug="c")
    events = {
        mode: TriggerEventFactory(trigger=trigger, end_user=alice, mode=mode)
        for mode in ("live", "test")
    }
    process()
    return events


def reverse(client, partnership, body: dict, **headers):
    return client.post(
        f"/partnerships/{partnership.id}/triggers/reverse", body, format="json", **headers
    )


def other(mode: str) -> str:
    return "test" if mode == "live" else "live"


@pytest.mark.parametrize("mode", ["live", "test"])
def test_event_status_shows_only_events_of_the_keys_mode(clients, partnership, rewarded, mode):
    own = clients[mode].get(f"/partnerships/{partnership.id}/trigger-events/{rewarded[mode].id}")
    foreign = rewarded[other(mode)]

    response = clients[mode].get(f"/partnerships/{partnership.id}/trigger-events/{foreign.id}")

    assert own.status_code == 200
    assert own.json()["data"]["mode"] == mode
    assert response.status_code == 404
    assert response.json()["code"] == ErrorCode.TRIGGER_EVENT_DOES_NOT_EXIST
    assert mode in response.json()["message"]


@pytest.mark.parametrize("mode", ["live", "test"])
def test_an_event_of_the_other_mode_cannot_be_reversed_by_id(clients, partnership, rewarded, mode):
    foreign = rewarded[other(mode)]

    response = reverse(clients[mode], partnership, {"trigger_event_id": str(foreign.id)})

    assert response.status_code == 404
    assert response.json()["code"] == ErrorCode.TRIGGER_EVENT_DOES_NOT_EXIST
    assert not Reversal.objects.exists()
    assert set(Reward.objects.values_list("status", flat=True)) == {"issued"}


def test_reversing_by_user_with_a_test_key_takes_their_test_event(
    test_client, partnership, trigger, rewarded
):
    body = {"trigger_name": trigger.name, "external_user_id": "alice"}

    first = reverse(test_client, partnership, body)
    second = reverse(test_client, partnership, body)

    assert first.status_code == 200, first.content
    assert first.json()["data"]["trigger_event_id"] == str(rewarded["test"].id)
    assert first.json()["data"]["mode"] == "test"
    # Only the live event is left to reverse, and a test key cannot see it.
    assert second.status_code == 404
    assert second.json()["code"] == ErrorCode.TRIGGER_EVENT_DOES_NOT_EXIST
    statuses = dict(Reward.objects.values_list("mode", "status"))
    assert statuses == {"live": "issued", "test": "reversed"}


def test_a_queued_live_event_is_not_cancelled_by_a_test_key_reversal(
    test_client, partnership, trigger, alice
):
    live = TriggerEventFactory(trigger=trigger, end_user=alice, mode="live")

    response = reverse(
        test_client, partnership, {"trigger_name": trigger.name, "external_user_id": "alice"}
    )

    assert response.status_code == 404
    live.refresh_from_db()
    assert live.status == "queued"


def test_a_key_used_for_a_test_reversal_is_new_for_a_live_one(clients, partnership, rewarded):
    test = reverse(
        clients["test"],
        partnership,
        {"trigger_event_id": str(rewarded["test"].id)},
        HTTP_IDEMPOTENCY_KEY="refund-1",
    )

    live = reverse(
        clients["live"],
        partnership,
        {"trigger_event_id": str(rewarded["live"].id)},
        HTTP_IDEMPOTENCY_KEY="refund-1",
    )

    assert test.status_code == live.status_code == 200, live.content
    assert "Idempotent-Replayed" not in live
    assert live.json()["data"]["trigger_event_id"] == str(rewarded["live"].id)
    assert live.json()["data"]["mode"] == "live"
    assert dict(Reversal.objects.values_list("mode", "trigger_event_id")) == {
        "live": rewarded["live"].id,
        "test": rewarded["test"].id,
    }
    assert set(Reward.objects.values_list("status", flat=True)) == {"reversed"}


def test_replaying_a_reversal_key_in_its_own_mode_still_replays(clients, partnership, rewarded):
    for mode in ("test", "live"):
        body = {"trigger_event_id": str(rewarded[mode].id)}
        reverse(clients[mode], partnership, body, HTTP_IDEMPOTENCY_KEY="refund-2")

    again = reverse(
        clients["test"],
        partnership,
        {"trigger_event_id": str(rewarded["test"].id)},
        HTTP_IDEMPOTENCY_KEY="refund-2",
    )

    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["data"]["trigger_event_id"] == str(rewarded["test"].id)
    assert Reversal.objects.count() == 2


# --- A user's rewards and balance -------------------------------------------------------------


def issue(campaign, user, *, mode: str, amount: str) -> Reward:
    event = TriggerEventFactory(trigger=campaign.trigger, end_user=user, mode=mode)
    now = timezone.now()
    return Reward.objects.create(
        partnership=campaign.partnership,
        campaign=campaign,
        trigger_event=event,
        end_user=user,
        amount=Decimal(amount),
        unit="Points",
        mode=mode,
        issued_at=now,
        occurred_at=now,
        campaign_version=1,
    )


@pytest.fixture
def both_modes(trigger, alice) -> dict:
    campaign = CampaignFactory(trigger=trigger)
    return {
        "live": issue(campaign, alice, mode="live", amount="10"),
        "test": issue(campaign, alice, mode="test", amount="99"),
    }


@pytest.mark.parametrize("mode", ["live", "test"])
def test_rewards_list_shows_only_the_keys_mode(clients, partnership, both_modes, mode):
    response = clients[mode].get(f"/partnerships/{partnership.id}/users/alice/rewards")

    assert response.status_code == 200
    data = response.json()["data"]
    assert data["mode"] == mode
    assert [r["reward_id"] for r in data["rewards"]] == [str(both_modes[mode].id)]


@pytest.mark.parametrize(("mode", "earned"), [("live", "10.00"), ("test", "99.00")])
def test_balance_shows_only_the_keys_mode(clients, partnership, both_modes, mode, earned):
    response = clients[mode].get(f"/partnerships/{partnership.id}/users/alice/balance")

    assert response.status_code == 200
    data = response.json()["data"]
    assert data["mode"] == mode
    assert [b["earned"] for b in data["balances"]] == [earned]


@pytest.mark.parametrize("path", ["rewards", "balance"])
@pytest.mark.parametrize("mode", ["live", "test"])
def test_asking_for_the_other_mode_is_refused(clients, partnership, both_modes, path, mode):
    url = f"/partnerships/{partnership.id}/users/alice/{path}"

    response = clients[mode].get(url, {"mode": other(mode)})

    assert response.status_code == 422
    body = response.json()
    assert body["code"] == ErrorCode.MODE_MISMATCH
    assert body["errors"] == [
        {"field": "mode", "code": "mode_mismatch", "message": body["message"]}
    ]


@pytest.mark.parametrize("path", ["rewards", "balance"])
def test_naming_the_keys_own_mode_is_accepted(test_client, partnership, both_modes, path):
    response = test_client.get(
        f"/partnerships/{partnership.id}/users/alice/{path}", {"mode": "test"}
    )

    assert response.status_code == 200
    assert response.json()["data"]["mode"] == "test"


@pytest.mark.parametrize("path", ["rewards", "balance"])
def test_an_unknown_mode_is_a_validation_error(partner_client, partnership, alice, path):
    url = f"/partnerships/{partnership.id}/users/alice/{path}"

    response = partner_client.get(url, {"mode": "sandbox"})

    assert response.status_code == 422
    assert response.json()["code"] == ErrorCode.VALIDATION_ERROR
    assert response.json()["errors"][0]["field"] == "mode"


def test_the_schema_documents_the_refusal_of_the_other_mode(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    for path in ("rewards", "balance"):
        operation = schema["paths"][
            f"/partnerships/{{partnership_id}}/users/{{external_user_id}}/{path}"
        ]["get"]
        examples = operation["responses"]["422"]["content"]["application/json"]["examples"]
        assert ErrorCode.MODE_MISMATCH.value in {e["value"]["code"] for e in examples.values()}
        (mode,) = [p for p in operation["parameters"] if p["name"] == "mode"]
        assert "mode_mismatch" in mode["description"]
