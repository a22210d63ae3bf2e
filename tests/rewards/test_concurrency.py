"""Budgets, caps and exactly-once issuance with real concurrent workers against PostgreSQL."""

import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from rewards.models import CampaignCounter, Reward
from rewards.services.evaluation import trigger_events_evaluate
from tests.factories import CampaignFactory, EndUserFactory, TriggerEventFactory, TriggerFactory
from tests.rewards.conftest import process_batch
from triggers.models import TriggerEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def in_threads(count: int, work) -> list[BaseException]:
    """Runs ``work()`` in ``count`` threads released together; returns what they raised."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            work()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def drain(limit: int):
    def work() -> None:
        while process_batch(limit):
            pass

    return work


def bulk_events(trigger, count: int, users=None, modes=("live",), **fields) -> list[TriggerEvent]:
    users = users or [EndUserFactory(partnership=trigger.partnership) for _ in range(count)]
    now = timezone.now()
    return TriggerEvent.objects.bulk_create(
        TriggerEvent(
            partnership=trigger.partnership,
            trigger=trigger,
            end_user=users[index % len(users)],
            mode=modes[index % len(modes)],
            context={"amount": 25, "currency": "USD"},
            occurred_at=fields.get("occurred_at", now),
            received_at=now,
            deliver_at=now,
        )
        for index in range(count)
    )


def test_a_thousand_events_racing_for_a_hundred_rewards_spend_exactly_the_budget():
    trigger = TriggerFactory()
    campaign = CampaignFactory(trigger=trigger, reward_value=Decimal("5"), budget=Decimal("500"))
    bulk_events(trigger, 1000)

    errors = in_threads(8, drain(limit=25))

    assert errors == []
    assert TriggerEvent.objects.filter(status="processed").count() == 1000
    assert Reward.objects.count() == 100
    counter = CampaignCounter.objects.get(campaign=campaign, mode="live")
    assert counter.spent == Decimal("500") == Reward.objects.aggregate(s=Sum("amount"))["s"]
    assert counter.reward_count == 100


def test_workers_creating_the_counters_of_new_campaigns_at_once_never_deadlock(caplog):
    trigger = TriggerFactory()
    campaigns = [
        CampaignFactory(trigger=trigger, slug=f"c{n}", reward_value=Decimal("1"), budget=100)
        for n in range(10)
    ]
    CampaignCounter.objects.all().delete()  # none yet: the first batches create them
    bulk_events(trigger, 400, modes=("live", "test"))

    errors = in_threads(8, drain(limit=5))

    assert errors == []
    assert not [r for r in caplog.records if r.name == "triggers.services.processing"]
    assert set(TriggerEvent.objects.values_list("status", "attempts")) == {("processed", 1)}
    for campaign in campaigns:
        for mode in ("live", "test"):
            counter = CampaignCounter.objects.get(campaign=campaign, mode=mode)
            assert (counter.reward_count, counter.spent) == (100, Decimal("100"))


def test_one_event_evaluated_by_twenty_workers_at_once_is_rewarded_once():
    trigger = TriggerFactory()
    campaign = CampaignFactory(trigger=trigger)
    event = TriggerEventFactory(trigger=trigger)

    errors = in_threads(20, drain(limit=10))

    assert errors == []
    assert Reward.objects.filter(trigger_event=event).count() == 1
    assert CampaignCounter.objects.get(campaign=campaign, mode="live").reward_count == 1


def test_twenty_evaluations_of_one_event_that_bypass_the_claim_still_reward_once():
    """Even without the queue's claim (an operator re-runs events), issuance is exactly once."""
    from django.db import transaction

    trigger = TriggerFactory()
    CampaignFactory(trigger=trigger)
    event = TriggerEventFactory(trigger=trigger)

    def evaluate_directly() -> None:
        with transaction.atomic():
            trigger_events_evaluate([TriggerEvent.objects.get(pk=event.pk)])

    errors = in_threads(20, evaluate_directly)

    assert errors == []
    assert Reward.objects.filter(trigger_event=event).count() == 1


def test_per_user_cap_holds_under_races():
    trigger = TriggerFactory()
    CampaignFactory(trigger=trigger, max_rewards_per_user=3)
    users = [EndUserFactory(partnership=trigger.partnership) for _ in range(5)]
    bulk_events(trigger, 200, users=users)

    errors = in_threads(8, drain(limit=5))

    assert errors == []
    per_user = Reward.objects.values_list("end_user_id").annotate(n=Sum(1))
    assert sorted(n for _, n in per_user) == [3] * 5


def test_per_period_cap_holds_under_races():
    trigger = TriggerFactory()
    CampaignFactory(trigger=trigger, max_rewards_per_user_per_period=2, period="day")
    user = EndUserFactory(partnership=trigger.partnership)
    bulk_events(trigger, 120, users=[user])

    errors = in_threads(8, drain(limit=3))

    assert errors == []
    assert Reward.objects.count() == 2


def test_reversals_racing_evaluation_leave_no_reward_standing():
    from partnerships.auth import authenticate_partner
    from rewards.services.reversal import ReversalRequest, trigger_event_reverse
    from tests.factories import ApiKeyFactory

    key = ApiKeyFactory()
    trigger = TriggerFactory(partnership=key.partnership)
    campaign = CampaignFactory(trigger=trigger, budget=Decimal("100000"))
    events = bulk_events(trigger, 300)
    principal = authenticate_partner(
        raw_key=key.plaintext, partnership_id=key.partnership_id, ip="127.0.0.1"
    )
    pending = list(reversed([event.id for event in events]))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                event_id = pending.pop() if pending else None
            if event_id is None:
                return
            trigger_event_reverse(
                principal=principal,
                request=ReversalRequest(event_id, None, None, "refund", None, None),
            )

    evaluating = threading.Thread(target=lambda: (drain(limit=10)(), connection.close()))
    evaluating.start()
    errors = in_threads(4, work)
    evaluating.join()
    drain(limit=50)()

    assert errors == []
    assert not Reward.objects.filter(status="issued").exists()
    statuses = set(TriggerEvent.objects.values_list("status", flat=True))
    assert statuses <= {"processed", "cancelled"}
    assert Reward.objects.exists() or statuses == {"cancelled"}
    live = CampaignCounter.objects.get(campaign=campaign, mode="live")
    assert live.spent == 0 and live.reward_count == 0
