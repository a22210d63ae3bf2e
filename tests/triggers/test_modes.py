"""Test and live never touch each other: events and their cancellation."""

from datetime import timedelta

import orjson
import pytest
from django.utils import timezone

from config.errors import ErrorCode
from tests.factories import EndUserFactory, TriggerEventFactory

pytestmark = pytest.mark.django_db

CONTEXT = {"amount": 42.5, "currency": "USD"}


def send(client, partnership_id, body, **extra):
    return client.post(
        f"/partnerships/{partnership_id}/triggers",
        orjson.dumps(body),
        content_type="application/json",
        **extra,
    )


@pytest.fixture
def clients(partner_client, test_client) -> dict:
    return {"live": partner_client, "test": test_client}


@pytest.fixture(params=["external_user_id", "user_uuid"])
def purchase(request, partnership, trigger) -> dict:
    """A body naming its user either way: the two ingest statements."""
    user = EndUserFactory(partnership=partnership)
    who = (
        {"external_user_id": user.external_user_id}
        if request.param == "external_user_id"
        else {"user_uuid": str(user.id)}
    )
    return {"trigger_name": trigger.name, "transaction_context": CONTEXT, **who}


@pytest.mark.parametrize("mode", ["live", "test"])
def test_the_event_of_the_other_mode_cannot_be_cancelled(clients, trigger, mode):
    other = "test" if mode == "live" else "live"
    scheduled = TriggerEventFactory(
        trigger=trigger,
        mode=other,
        status="scheduled",
        deliver_at=timezone.now() + timedelta(hours=1),
    )

    response = clients[mode].post(
        f"/partnerships/{trigger.partnership_id}/trigger-events/{scheduled.id}/cancel"
    )

    assert response.status_code == 404
    assert response.json()["code"] == ErrorCode.TRIGGER_EVENT_DOES_NOT_EXIST
    scheduled.refresh_from_db()
    assert scheduled.status == "scheduled"


def test_the_ingest_answer_names_the_keys_mode(clients, trigger, purchase):
    live = send(clients["live"], trigger.partnership_id, purchase)
    test = send(clients["test"], trigger.partnership_id, purchase)

    assert live.json()["data"]["mode"] == "live"
    assert test.json()["data"]["mode"] == "test"
