"""Test and live never touch each other: events, their cancellation and idempotency keys."""

import re
from datetime import timedelta

import orjson
import pytest
from django.db import connection
from django.utils import timezone

from config.errors import ErrorCode
from tests.factories import EndUserFactory, TriggerEventFactory
from triggers.models import TriggerEvent
from triggers.services import ingest

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


def test_a_live_purchase_reusing_a_test_key_is_a_new_live_event(clients, trigger, purchase):
    test = send(clients["test"], trigger.partnership_id, purchase, HTTP_IDEMPOTENCY_KEY="order-1")

    live = send(clients["live"], trigger.partnership_id, purchase, HTTP_IDEMPOTENCY_KEY="order-1")

    assert test.status_code == live.status_code == 200, live.content
    assert "Idempotent-Replayed" not in live
    live_id = live.json()["data"]["trigger_event_id"]
    assert live_id != test.json()["data"]["trigger_event_id"]
    stored = TriggerEvent.objects.get(pk=live_id)
    assert (stored.mode, stored.idempotency_key) == ("live", "order-1")
    assert TriggerEvent.objects.filter(idempotency_key="order-1").count() == 2


def test_a_key_reused_across_modes_with_another_body_is_no_conflict(clients, trigger, purchase):
    send(clients["live"], trigger.partnership_id, purchase, HTTP_IDEMPOTENCY_KEY="order-2")
    other = {**purchase, "transaction_context": {**CONTEXT, "amount": 1}}

    response = send(clients["test"], trigger.partnership_id, other, HTTP_IDEMPOTENCY_KEY="order-2")

    assert response.status_code == 200, response.content
    assert TriggerEvent.objects.get(mode="test").context["amount"] == 1


def test_each_mode_replays_its_own_event(clients, trigger, purchase):
    first = {
        mode: send(clients[mode], trigger.partnership_id, purchase, HTTP_IDEMPOTENCY_KEY="order-3")
        for mode in ("test", "live")
    }

    for mode in ("live", "test"):
        again = send(
            clients[mode], trigger.partnership_id, purchase, HTTP_IDEMPOTENCY_KEY="order-3"
        )
        assert again["Idempotent-Replayed"] == "true"
        assert again.json()["data"] == first[mode].json()["data"]
    assert TriggerEvent.objects.count() == 2


def test_the_conflict_lookup_names_the_models_idempotency_constraint():
    """The inserts name no arbiter (they must work in every schema of an upgrade); what they
    conflicted with is then looked up by the columns of the model's constraint."""
    (constraint,) = [c for c in TriggerEvent._meta.constraints if "idempotency_key" in c.fields]
    columns = [TriggerEvent._meta.get_field(name).column for name in constraint.fields]

    for sql in (ingest._INSERT_FOR_USER, ingest._INSERT_FOR_EXTERNAL_ID):
        assert re.findall(
            r"INSERT INTO triggers_triggerevent.*?(ON CONFLICT[^\n]*)", sql, re.S
        ) == ["ON CONFLICT DO NOTHING"]
    looked_up = re.search(r"OR \((.*)\)", ingest._SELECT_CONFLICT, re.S).group(1)
    assert re.findall(r"(\w+) = %\(\w+\)s", looked_up) == columns
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_indexdef(conindid) FROM pg_constraint WHERE conname = %s",
            [constraint.name],
        )
        (definition,) = cursor.fetchone()
    assert f"UNIQUE INDEX {constraint.name} ON public.triggers_triggerevent" in definition
    assert definition.endswith(f"({', '.join(columns)})")
