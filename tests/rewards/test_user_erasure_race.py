"""Erasure beside a worker evaluating the user's event: they wait for each other in one order
(the user's events, then the user row), never in a cycle; and beside a request for the user,
which waits for it and is then refused."""

import threading
import time

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from partnerships.models import EndUser, UserToken
from rewards.models import Reward
from rewards.services.evaluation import trigger_events_evaluate
from rewards.services.users import end_user_erase
from tests.factories import (
    ApiKeyFactory,
    CampaignFactory,
    EndUserFactory,
    TriggerEventFactory,
    TriggerFactory,
)
from triggers.models import TriggerEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_erasure_waits_for_a_worker_holding_the_users_event_without_deadlock():
    key = ApiKeyFactory()
    trigger = TriggerFactory(partnership=key.partnership)
    CampaignFactory(trigger=trigger, max_rewards_per_user=1)
    user = EndUserFactory(partnership=key.partnership, external_user_id="alice")
    event = TriggerEventFactory(trigger=trigger, end_user=user, status=TriggerEvent.Status.QUEUED)
    claimed, errors = threading.Event(), {}

    def worker():
        try:
            with transaction.atomic():
                events = list(
                    TriggerEvent.objects.select_for_update(skip_locked=True).filter(pk=event.pk)
                )
                claimed.set()
                time.sleep(0.5)  # the erasure starts meanwhile
                trigger_events_evaluate(events)  # a reward: KEY SHARE on the user
        except Exception as exc:
            errors["worker"] = exc
        finally:
            connection.close()

    def eraser():
        claimed.wait()
        try:
            end_user_erase(end_user=user, via="api")
        except Exception as exc:
            errors["erase"] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker), threading.Thread(target=eraser)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == {}
    assert EndUser.objects.get(pk=user.pk).erased_at is not None
    assert Reward.objects.filter(end_user=user).count() == 1
    assert TriggerEvent.objects.get(pk=event.pk).context == {}


@pytest.mark.parametrize("how", ["event", "put", "token"])
def test_a_request_for_the_user_during_its_erasure_waits_and_is_410(how):
    key = ApiKeyFactory()
    partnership = key.partnership
    TriggerFactory(partnership=partnership)
    user = EndUserFactory(partnership=partnership, external_user_id="alice")
    erased, answers = threading.Event(), {}

    def eraser():
        try:
            with transaction.atomic():
                end_user_erase(end_user=user, via="api")
                erased.set()
                time.sleep(1.0)  # the request arrives before the erasure commits
        finally:
            connection.close()

    def sender():
        erased.wait()
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=key.plaintext)
        users = f"/partnerships/{partnership.id}/users/alice"
        try:
            if how == "put":
                response = client.put(users, {"attributes": {"email": "a@x"}}, format="json")
            elif how == "token":
                response = client.post(
                    users + "/tokens", {"scopes": ["rewards:read"]}, format="json"
                )
            else:
                body = {
                    "trigger_name": "transaction_completed",
                    "external_user_id": "alice",
                    "transaction_context": {"amount": 1, "currency": "USD"},
                }
                response = client.post(
                    f"/partnerships/{partnership.id}/triggers", body, format="json"
                )
            answers["status"] = response.status_code
        finally:
            connection.close()

    threads = [threading.Thread(target=eraser), threading.Thread(target=sender)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert answers["status"] == 410
    assert list(EndUser.objects.values_list("pk", "attributes")) == [(user.pk, {})]
    assert not TriggerEvent.objects.exists()
    assert not UserToken.objects.exists()
