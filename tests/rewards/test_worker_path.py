"""The worker's path through the evaluation: one poisoned event never holds up the others, it
fails once and is reported once."""

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from config.celery import app
from rewards.models import CampaignCounter, Reward, WebhookDelivery, WebhookEndpoint
from rewards.services.evaluation import trigger_events_evaluate
from rewards.tasks import EVALUATION
from tests.factories import CampaignFactory, EndUserFactory, TriggerEventFactory, TriggerFactory
from triggers.models import TriggerEvent
from triggers.services.processing import trigger_events_process_pending

pytestmark = pytest.mark.django_db


def queued(trigger, count: int) -> list[TriggerEvent]:
    now = timezone.now()
    return TriggerEvent.objects.bulk_create(
        TriggerEvent(
            partnership=trigger.partnership,
            trigger=trigger,
            end_user=EndUserFactory(partnership=trigger.partnership),
            context={"amount": 25, "currency": "USD"},
            occurred_at=now,
            received_at=now,
            deliver_at=now - timedelta(seconds=count - index),  # the order they are claimed in
        )
        for index in range(count)
    )


def failed_hooks(partnership) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        partnership=partnership,
        url="https://example.test/hooks",
        secret="s",
        event_types=["trigger_event.failed"],
    )


def test_a_poisoned_event_in_a_batch_of_100_fails_alone_and_is_reported_once(
    trigger, process, settings
):
    CampaignFactory(trigger=trigger, reward_value=Decimal("2"))
    hooks = failed_hooks(trigger.partnership)
    events = queued(trigger, 100)
    poison = events[42]

    def evaluate_unless_poisoned(batch):
        if poison in batch:
            raise RuntimeError("this event breaks the evaluation")
        return trigger_events_evaluate(batch)

    process(processor=evaluate_unless_poisoned)

    poison.refresh_from_db()
    assert poison.status == "failed"
    assert poison.attempts == settings.EVENT_MAX_ATTEMPTS
    assert poison.error.startswith("RuntimeError: this event breaks the evaluation")
    others = TriggerEvent.objects.exclude(pk=poison.pk)
    assert set(others.values_list("status", "attempts")) == {("processed", 1)}
    assert Reward.objects.count() == 99
    assert not Reward.objects.filter(trigger_event=poison).exists()
    assert CampaignCounter.objects.get(mode="live").spent == Decimal("198")
    (delivery,) = WebhookDelivery.objects.filter(endpoint=hooks)
    assert delivery.payload["type"] == "trigger_event.failed"
    assert delivery.payload["data"]["trigger_event_id"] == str(poison.id)
    assert delivery.payload["data"]["error"] == poison.error


def test_a_partnership_whose_setup_breaks_the_batch_fails_only_its_event(
    trigger, process, settings
):
    """Not a database error: any exception while setting up a batch (here a time zone that no
    longer exists, written past the form's validation) is narrowed down to its events."""
    CampaignFactory(trigger=trigger)
    broken = TriggerFactory()
    CampaignFactory(trigger=broken)
    type(broken.partnership).objects.filter(pk=broken.partnership_id).update(
        time_zone="Atlantis/Capital"
    )
    hooks = failed_hooks(broken.partnership)
    events = queued(trigger, 99)
    (poison,) = queued(broken, 1)

    process()

    poison.refresh_from_db()
    assert (poison.status, poison.attempts) == ("failed", settings.EVENT_MAX_ATTEMPTS)
    assert "Atlantis/Capital" in poison.error
    assert TriggerEvent.objects.filter(pk__in=[e.pk for e in events], status="processed").count()
    assert Reward.objects.count() == 99
    assert WebhookDelivery.objects.filter(endpoint=hooks).count() == 1


def test_the_worker_task_keeps_its_name_and_is_the_one_beat_and_the_web_tier_send():
    app.loader.import_default_modules()  # what a worker imports at start (autodiscovery)
    name = "triggers.tasks.process_pending_events"
    assert app.tasks[name].run.__module__ == "rewards.tasks"
    for entry in app.conf.beat_schedule.values():
        assert entry["task"] in app.tasks


def test_the_soft_time_limit_stops_the_batch_instead_of_failing_the_event_it_hit(
    trigger, process, monkeypatch
):
    from celery.exceptions import SoftTimeLimitExceeded

    from rewards.services import evaluation

    CampaignFactory(trigger=trigger)
    events = TriggerEventFactory.create_batch(3, trigger=trigger)

    def out_of_time(*args):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(evaluation, "event_verdicts", out_of_time)

    with pytest.raises(SoftTimeLimitExceeded):
        process()

    assert {TriggerEvent.objects.get(pk=e.pk).status for e in events} == {"queued"}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_draining_task_claims_an_event_committed_while_it_lingers(trigger, settings):
    """With EVENT_IDLE_LINGER_SECONDS, the task that evaluated events polls the empty queue a
    while before it returns: an event committed meanwhile (the web tier's waker still asleep)
    is evaluated by it, without another wake-up."""
    settings.EVENT_IDLE_LINGER_SECONDS = 2.0
    settings.EVENT_IDLE_POLL_SECONDS = 0.01
    CampaignFactory(trigger=trigger, reward_value=Decimal("2"))
    queued(trigger, 1)

    def ingest_later() -> None:
        time.sleep(0.5)
        queued(trigger, 1)  # its own connection, committed at once
        connection.close()

    later = threading.Thread(target=ingest_later)
    later.start()
    started = time.monotonic()
    handed_over = trigger_events_process_pending(**EVALUATION)
    elapsed = time.monotonic() - started
    later.join()

    assert handed_over is False
    assert list(TriggerEvent.objects.values_list("status", flat=True)) == ["processed"] * 2
    assert Reward.objects.count() == 2
    assert 2.5 <= elapsed < settings.EVENT_TASK_SECONDS  # it lingered after the second event


def test_without_a_linger_the_task_returns_when_the_queue_is_empty(trigger, settings):
    settings.EVENT_IDLE_LINGER_SECONDS = 0
    CampaignFactory(trigger=trigger)
    queued(trigger, 3)

    started = time.monotonic()
    assert trigger_events_process_pending(**EVALUATION) is False

    assert time.monotonic() - started < 2
    assert set(TriggerEvent.objects.values_list("status", flat=True)) == {"processed"}
