"""Erasure beside a worker evaluating the user's event: they wait for each other in one order
(the user's events, then the user row), never in a cycle."""

import threading
import time

import pytest
from django.db import connection, transaction

from partnerships.models import EndUser
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
