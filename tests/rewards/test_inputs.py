"""The reversal body and the rewards filters take exactly what their OpenAPI schemas say."""

from decimal import Decimal

import pytest

from config.errors import ErrorCode
from rewards.models import Reversal, Reward
from tests.factories import CampaignFactory, EndUserFactory, TriggerEventFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def event(trigger, process):
    CampaignFactory(trigger=trigger, reward_value=Decimal("10"))
    event = TriggerEventFactory(trigger=trigger)
    process()
    return event


def reverse(client, partnership, body: dict, **headers):
    return client.post(
        f"/partnerships/{partnership.id}/triggers/reverse", body, format="json", **headers
    )


def refused_fields(response) -> dict[str, str]:
    assert response.status_code == 422, response.content
    assert response.json()["code"] == ErrorCode.VALIDATION_ERROR
    assert not Reversal.objects.exists()
    return {error["field"]: error["code"] for error in response.json()["errors"]}


@pytest.mark.parametrize("amount", ["", "0", "0.000000", "-1", "1.0000001", "1e3", " 7", 5, 2.5])
def test_an_amount_is_a_positive_decimal_string(partner_client, partnership, event, amount):
    body = {"trigger_event_id": str(event.id), "amount": amount}

    fields = refused_fields(reverse(partner_client, partnership, body))

    assert fields.keys() == {"amount"}
    assert Reward.objects.get().reversed_amount == 0


@pytest.mark.parametrize(("amount", "reversed"), [("0.01", "0.01"), ("2.5", "2.5"), ("10", "10")])
def test_decimal_strings_are_taken(partner_client, partnership, event, amount, reversed):
    body = {"trigger_event_id": str(event.id), "amount": amount}

    response = reverse(partner_client, partnership, body)

    assert response.status_code == 200, response.content
    assert Reward.objects.get().reversed_amount == Decimal(reversed)


def test_a_misspelt_field_is_refused_not_a_full_reversal(partner_client, partnership, event):
    body = {"trigger_event_id": str(event.id), "ammount": "1"}

    assert refused_fields(reverse(partner_client, partnership, body)) == {
        "ammount": "unknown_field"
    }
    assert Reward.objects.get().status == Reward.Status.ISSUED


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"trigger_event_id": "required"}),
        ({"trigger_name": "t"}, {"external_user_id": "required"}),
        ({"external_user_id": "u"}, {"trigger_name": "required"}),
        (
            {"trigger_event_id": "6f1c4b7e-1d2a-4c1e-9a51-0f5b7d1c2a3b", "trigger_name": "t"},
            {"trigger_event_id": "conflict"},
        ),
        ({"trigger_name": 5, "external_user_id": "u"}, {"trigger_name": "type"}),
    ],
)
def test_which_event_is_named_one_way(partner_client, partnership, body, fields):
    assert refused_fields(reverse(partner_client, partnership, body)) == fields


def test_an_empty_idempotency_header_is_refused(partner_client, partnership, event):
    body = {"trigger_event_id": str(event.id)}

    fields = refused_fields(reverse(partner_client, partnership, body, HTTP_IDEMPOTENCY_KEY=""))

    assert fields == {"Idempotency-Key": "max_length"}


def test_a_body_key_that_differs_from_the_header_is_refused(partner_client, partnership, event):
    body = {"trigger_event_id": str(event.id), "idempotency_key": "refund-1"}

    fields = refused_fields(reverse(partner_client, partnership, body, HTTP_IDEMPOTENCY_KEY="r-2"))

    assert fields == {"idempotency_key": "mismatch"}
    assert Reward.objects.get().status == Reward.Status.ISSUED


def test_the_same_key_in_header_and_body_is_one_key(partner_client, partnership, event):
    body = {"trigger_event_id": str(event.id), "idempotency_key": "refund-1"}

    first = reverse(partner_client, partnership, body, HTTP_IDEMPOTENCY_KEY="refund-1")
    again = reverse(partner_client, partnership, {**body})

    assert first.status_code == again.status_code == 200, again.content
    assert again["Idempotent-Replayed"] == "true"
    assert first.json()["data"]["reversal_id"] == again.json()["data"]["reversal_id"]


# --- Rewards filters -------------------------------------------------------------------------


def rewards(client, partnership, query: str):
    EndUserFactory(partnership=partnership, external_user_id="alice")
    return client.get(f"/partnerships/{partnership.id}/users/alice/rewards?{query}")


@pytest.mark.parametrize(
    "query",
    [
        "status=",
        "cursor=",
        "limit=",
        "issued_after=",
        "issued_after=2026-01-01T00:00:00",  # no offset: whose midnight?
        "issued_before=2016-12-31T23:59:60Z",
    ],
)
def test_a_filter_is_a_value_or_absent(partner_client, partnership, query):
    response = rewards(partner_client, partnership, query)

    assert response.status_code == 422, response.content
    assert response.json()["errors"][0]["field"] == query.partition("=")[0]


def test_timestamps_take_lowercase_t_and_z(partner_client, partnership):
    response = rewards(partner_client, partnership, "issued_after=2026-01-01t00:00:00z")

    assert response.status_code == 200, response.content
