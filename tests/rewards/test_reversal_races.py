"""A retrying client sends each reversal twice at once with one Idempotency-Key: real threads
against PostgreSQL, both requests must get the one original answer."""

import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum
from rest_framework.test import APIClient

from rewards.models import CampaignCounter, Reversal, Reward, RewardAdjustment
from tests.factories import (
    ApiKeyFactory,
    CampaignFactory,
    EndUserFactory,
    TriggerEventFactory,
    TriggerFactory,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PAIRS = 40


def twice_at_once(send) -> list:
    """``send(client)`` from two threads released together; the two responses."""
    barrier = threading.Barrier(2)
    responses = [None, None]

    def run(index: int) -> None:
        client = APIClient()
        barrier.wait()
        try:
            responses[index] = send(client)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses


@pytest.fixture
def setup():
    key = ApiKeyFactory()
    trigger = TriggerFactory(partnership=key.partnership)
    campaign = CampaignFactory(trigger=trigger, reward_value=Decimal("10"))
    return key, trigger, campaign


def reverser(key, body: dict, idempotency_key: str):
    def send(client):
        return client.post(
            f"/partnerships/{key.partnership_id}/triggers/reverse",
            body,
            format="json",
            HTTP_X_API_KEY=key.plaintext,
            HTTP_IDEMPOTENCY_KEY=idempotency_key,
        )

    return send


def assert_one_answer(pair) -> dict:
    assert [r.status_code for r in pair] == [200, 200], [r.content for r in pair]
    first, second = (r.json()["data"] for r in pair)
    assert first["reversal_id"] == second["reversal_id"]
    assert sorted(r.get("Idempotent-Replayed", "-") for r in pair) == ["-", "true"]
    return first


def test_a_reversal_sent_twice_at_once_is_one_reversal_with_one_answer(setup, process):
    key, trigger, campaign = setup
    events = [TriggerEventFactory(trigger=trigger) for _ in range(PAIRS)]
    process()

    for index, event in enumerate(events):
        body = {"trigger_event_id": str(event.id), "reason": "refund"}
        pair = twice_at_once(reverser(key, body, f"refund-{index}"))
        assert assert_one_answer(pair)["trigger_event_id"] == str(event.id)

    assert Reversal.objects.count() == RewardAdjustment.objects.count() == PAIRS
    assert Reward.objects.filter(status="reversed").count() == PAIRS
    assert Reward.objects.aggregate(clawed=Sum("reversed_amount"))["clawed"] == 10 * PAIRS
    counter = CampaignCounter.objects.get(campaign=campaign, mode="live")
    assert (counter.spent, counter.reward_count) == (0, 0)


def test_a_partial_reversal_by_user_sent_twice_at_once_claws_back_once(setup, process):
    """By trigger and user the event is chosen again by each request, and a partial clawback
    leaves the reward standing: the twin must still answer with the first's reversal."""
    key, trigger, campaign = setup
    users = [EndUserFactory(partnership=key.partnership) for _ in range(PAIRS)]
    older = [TriggerEventFactory(trigger=trigger, end_user=user) for user in users]
    newer = [TriggerEventFactory(trigger=trigger, end_user=user) for user in users]
    process()

    for index, user in enumerate(users):
        body = {"trigger_name": trigger.name, "external_user_id": user.external_user_id}
        pair = twice_at_once(reverser(key, {**body, "amount": "4"}, f"refund-{index}"))
        data = assert_one_answer(pair)
        assert data["trigger_event_id"] == str(newer[index].id)
        assert [r["amount"] for r in data["reversals"]] == ["4.00"]

    assert Reversal.objects.count() == PAIRS
    assert not Reward.objects.filter(trigger_event__in=older, reversed_amount__gt=0).exists()
    assert set(
        Reward.objects.filter(trigger_event__in=newer).values_list("reversed_amount", flat=True)
    ) == {Decimal("4")}
    counter = CampaignCounter.objects.get(campaign=campaign, mode="live")
    assert counter.spent == Decimal(10 * 2 * PAIRS - 4 * PAIRS)
