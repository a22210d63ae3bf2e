"""Erasure against the ingest's per-process memory of user ids and against an event arriving
meanwhile (real PostgreSQL, committed data, two sessions)."""

import threading
import time

import orjson
import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from config.errors import ErrorCode
from partnerships.models import EndUser
from partnerships.pseudonyms import erased_external_id
from rewards.services.users import end_user_erase
from tests.factories import ApiKeyFactory, TriggerFactory
from triggers.models import TriggerEvent
from triggers.services import ingest

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def send(api_client):
    key = ApiKeyFactory()
    TriggerFactory(partnership=key.partnership)
    url = f"/partnerships/{key.partnership_id}/triggers"
    body = orjson.dumps(
        {
            "trigger_name": "transaction_completed",
            "external_user_id": "ada",
            "transaction_context": {"amount": 30, "currency": "EUR"},
        }
    )

    def send():
        return api_client.post(
            url, body, content_type="application/json", **{"HTTP_X_API_KEY": key.plaintext}
        )

    return send


def test_a_remembered_user_id_does_not_reach_the_erased_user(send):
    first = send()
    user = EndUser.objects.get(external_user_id="ada")
    assert ingest._user_ids[(user.partnership_id, "ada")] == user.id

    end_user_erase(end_user=user, via="command")
    again = send()

    assert first.status_code == 200
    assert again.status_code == 410, again.content
    assert again.json()["code"] == ErrorCode.USER_ERASED
    assert TriggerEvent.objects.count() == 1
    assert (user.partnership_id, "ada") not in ingest._user_ids


@pytest.mark.parametrize("remembered", [True, False], ids=["remembered", "looked-up"])
def test_an_event_sent_during_an_erasure_waits_for_it_and_is_refused(send, remembered):
    assert send().status_code == 200
    if not remembered:  # the full statement, which finds the user by its external id
        ingest._user_ids.clear()
    user = EndUser.objects.get(external_user_id="ada")
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("prepare_threshold", None)
    answers = []

    def send_and_close():
        try:
            answers.append(send())
        finally:
            connection.close()

    with psycopg.connect(**params) as erasing:  # an erasure's first statement, not committed
        pseudonym = erased_external_id(partnership_id=user.partnership_id, external_user_id="ada")
        erasing.execute(
            "UPDATE partnerships_enduser SET external_user_id = %s, erased_at = %s WHERE id = %s",
            [pseudonym, timezone.now(), user.id],
        )
        thread = threading.Thread(target=send_and_close)
        thread.start()
        time.sleep(1)
        assert thread.is_alive(), "the event waits for the erasure's row lock"
        erasing.commit()
    thread.join(10)

    assert answers[0].status_code == 410, answers[0].content
    assert TriggerEvent.objects.count() == 1
