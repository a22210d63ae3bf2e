"""An event whose evaluation kills its worker process (real Celery worker, real SIGKILL)."""

import time

import pytest
from redis import Redis

from rewards.models import Reward, WebhookDelivery, WebhookEndpoint
from tests.factories import CampaignFactory, TriggerFactory
from tests.rewards.test_concurrency import bulk_events
from tests.servers import send_task
from tests.support import celery_worker, process_env, wait_until
from triggers.models import TriggerEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_an_event_that_kills_its_worker_is_counted_each_time_and_failed_after_its_attempts(
    private_redis, tmp_path
):
    trigger = TriggerFactory()
    CampaignFactory(trigger=trigger)
    hooks = WebhookEndpoint.objects.create(
        partnership=trigger.partnership,
        url="https://example.test/hooks",
        secret="s",
        event_types=["trigger_event.failed"],
    )
    events = bulk_events(trigger, 30)
    poison = events[13]
    Redis.from_url(private_redis).flushdb()
    env = process_env(
        CELERY_BROKER_URL=private_redis,
        EVENT_MAX_ATTEMPTS="3",
        EVENT_RETRY_DELAY_SECONDS="0",
        # Recovered because the dead worker's database session is gone, not by this timeout.
        EVENT_CLAIM_TIMEOUT_SECONDS="600",
    )
    log = tmp_path / "worker.log"
    sent = [0.0]

    def poison_failed() -> bool:
        if time.monotonic() - sent[0] > 1:  # as beat would: wake a worker every second
            send_task(private_redis, "tests.process_pending_events_crashing_on", str(poison.id))
            sent[0] = time.monotonic()
        return TriggerEvent.objects.filter(pk=poison.pk, status="failed").exists()

    with celery_worker(env, log, concurrency=1, queues="celery", include="tests.worker_tasks"):
        wait_until(poison_failed, 90, "the poisoned event failed (see worker.log)")
        wait_until(
            lambda: TriggerEvent.objects.filter(status="processed").count() == 29,
            30,
            "the other events processed (see worker.log)",
        )

    poison.refresh_from_db()
    assert poison.attempts == 3
    assert "did not finish" in poison.error
    assert log.read_text().count("exited with 'signal 9 (SIGKILL)'") == 3
    others = TriggerEvent.objects.exclude(pk=poison.pk)
    # Charged once for the batch the poison killed, then evaluated alone.
    assert set(others.values_list("status", "attempts")) == {("processed", 2)}
    assert Reward.objects.count() == 29
    assert not Reward.objects.filter(trigger_event=poison).exists()
    (delivery,) = WebhookDelivery.objects.filter(endpoint=hooks)
    assert delivery.payload["data"]["trigger_event_id"] == str(poison.id)
