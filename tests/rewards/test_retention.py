"""Retention (issue 13): old trigger events and webhook deliveries are retired in batches;
rewards, reversals, facts and idempotency keep their documented windows."""

import io
import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone

from campaigns.engine import FactSpec
from campaigns.facts import facts_for_events
from config.celery import app
from config.errors import ErrorCode
from partnerships.models import Partnership
from rewards.models import Reversal, Reward
from rewards.services.retention import retention_run
from rewards.tasks import retire_old_records
from rewards.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.factories import CampaignFactory, EndUserFactory, TriggerEventFactory
from tests.support import process_env
from tests.triggers.test_ingest_api import event_body
from tests.triggers.test_ingest_api import send as send_event
from triggers.models import TriggerEvent

pytestmark = pytest.mark.django_db


# The defaults: the floor of EVENT_RETENTION_DAYS (every day a fact can still read), and 90.
KEPT = settings.EVENT_RETENTION_DAYS
PAST = KEPT + 1


@pytest.fixture
def retention(settings):
    assert settings.EVENT_RETENTION_DAYS == settings.EVENT_RETENTION_MIN_DAYS
    assert settings.WEBHOOK_DELIVERY_RETENTION_DAYS == 90
    return settings


def days_ago(days: float):
    return timezone.now() - timedelta(days=days)


def aged(event: TriggerEvent, days: float) -> TriggerEvent:
    """The event as if it had been received (had occurred, been evaluated) ``days`` ago."""
    at = days_ago(days)
    events = TriggerEvent.objects.filter(pk=event.pk)
    events.update(received_at=at, occurred_at=at, deliver_at=at)
    events.filter(processed_at__isnull=False).update(processed_at=at)
    return event


def old_event(trigger, status="processed", days=PAST, **fields) -> TriggerEvent:
    return aged(TriggerEventFactory(trigger=trigger, status=status, **fields), days)


def exists(event: TriggerEvent) -> bool:
    return TriggerEvent.objects.filter(pk=event.pk).exists()


def send(client, partnership_id, key: str):
    return send_event(client, partnership_id, event_body(), HTTP_IDEMPOTENCY_KEY=key)


def test_old_finished_events_without_rewards_are_retired(trigger, retention):
    processed = old_event(trigger, "processed")
    failed = old_event(trigger, "failed")
    cancelled = old_event(trigger, "cancelled")

    report = retention_run()

    assert not any(exists(e) for e in (processed, failed, cancelled))
    assert report.events_retired == 3


def test_events_with_rewards_are_kept_issued_or_reversed(
    trigger, process, partner_client, partnership, retention
):
    CampaignFactory(trigger=trigger)
    issued, reversed_ = TriggerEventFactory.create_batch(2, trigger=trigger)
    process()
    response = partner_client.post(
        f"/partnerships/{partnership.id}/triggers/reverse",
        {"trigger_event_id": str(reversed_.id)},
        format="json",
    )
    assert response.status_code == 200, response.content
    aged(issued, 5000)
    aged(reversed_, 5000)

    report = retention_run()

    assert exists(issued) and exists(reversed_)
    assert sorted(Reward.objects.values_list("status", flat=True)) == ["issued", "reversed"]
    assert Reversal.objects.filter(trigger_event=reversed_).exists()
    assert (report.events_retired, report.events_kept_rewarded) == (0, 2)


def test_events_inside_the_retention_window_are_kept(trigger, retention):
    inside = old_event(trigger, days=KEPT - 1)
    outside = old_event(trigger, days=PAST)

    retention_run()

    assert exists(inside)
    assert not exists(outside)


def test_events_not_yet_finished_are_kept_however_old(trigger, retention):
    waiting = [old_event(trigger, status) for status in ("scheduled", "queued", "processing")]

    report = retention_run()

    assert all(exists(event) for event in waiting)
    assert report.events_kept_unfinished == 3


def test_a_retired_events_reversals_go_with_it_and_its_reversal_key_then_finds_nothing(
    trigger, partner_client, partnership, retention
):
    # A reversal of a scheduled event cancels it: a reversal row without adjustments.
    event = TriggerEventFactory(trigger=trigger, status="scheduled", deliver_at=days_ago(-1))
    url = f"/partnerships/{partnership.id}/triggers/reverse"
    body = {"trigger_event_id": str(event.id)}
    first = partner_client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="refund-1")
    assert first.status_code == 200, first.content
    aged(event, PAST)

    report = retention_run()

    assert not exists(event)
    assert not Reversal.objects.filter(trigger_event_id=event.id).exists()
    assert report.reversals_retired == 1
    again = partner_client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="refund-1")
    assert (again.status_code, again.json()["code"]) == (
        404,
        ErrorCode.TRIGGER_EVENT_DOES_NOT_EXIST,
    )


def test_an_idempotency_key_replays_until_its_event_is_retired_then_is_a_new_event(
    trigger, partner_client, partnership, process, retention
):
    first = send(partner_client, partnership.id, "order-1")
    event_id = first.json()["data"]["trigger_event_id"]
    process()  # no campaign: processed, nothing earned

    aged(TriggerEvent.objects.get(pk=event_id), KEPT - 1)
    retention_run()
    replay = send(partner_client, partnership.id, "order-1")
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json()["data"]["trigger_event_id"] == event_id

    aged(TriggerEvent.objects.get(pk=event_id), PAST)
    retention_run()
    after = send(partner_client, partnership.id, "order-1")

    assert after.status_code == 200, after.content
    assert "Idempotent-Replayed" not in after
    assert after.json()["data"]["trigger_event_id"] != event_id
    assert not TriggerEvent.objects.filter(pk=event_id).exists()


def test_the_key_of_a_rewarded_event_replays_for_as_long_as_the_event_is_kept(
    trigger, partner_client, partnership, process, retention
):
    CampaignFactory(trigger=trigger)
    first = send(partner_client, partnership.id, "order-2")
    event_id = first.json()["data"]["trigger_event_id"]
    process()
    aged(TriggerEvent.objects.get(pk=event_id), 5000)

    retention_run()
    replay = send(partner_client, partnership.id, "order-2")

    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json()["data"]["trigger_event_id"] == event_id


def test_facts_over_the_longest_window_are_unchanged_by_retirement(trigger, retention):
    """The deepest a fact can look: a 366-day fact of an event that occurred the longest
    lateness before it arrived, itself judged the longest delay (or backtest window) later."""
    later = max(settings.EVENT_MAX_DELAY_DAYS, settings.BACKTEST_MAX_DAYS)
    occurred = settings.EVENT_LATENESS_MAX_DAYS + later
    user = EndUserFactory(partnership=trigger.partnership)
    judged = TriggerEventFactory(trigger=trigger, end_user=user, status="queued")
    TriggerEvent.objects.filter(pk=judged.pk).update(
        occurred_at=days_ago(occurred), received_at=days_ago(later), deliver_at=days_ago(0)
    )
    judged.refresh_from_db()
    # Inside its window, the last one 365.9 days before it; the next past every window.
    for days in (occurred + 1, occurred + 100, occurred + 365.9):
        old_event(trigger, end_user=user, days=days, context={"amount": 7, "currency": "USD"})
    beyond = old_event(trigger, end_user=user, days=PAST)
    specs = [
        FactSpec("n", "count", trigger.id, "", settings.FACT_WINDOW_MAX_DAYS),
        FactSpec("spent", "sum", trigger.id, "amount", settings.FACT_WINDOW_MAX_DAYS),
    ]
    before = facts_for_events(events=[judged], specs=specs)

    report = retention_run()

    assert not exists(beyond)
    assert report.events_retired == 1
    assert facts_for_events(events=[judged], specs=specs) == before
    assert before[judged.id][specs[0]] == 4  # itself and the three inside


def test_done_webhook_deliveries_are_retired_after_their_window_pending_ones_never(
    partnership, retention
):
    endpoint = WebhookEndpoint.objects.create(
        partnership=partnership, url="https://example.com/hooks", secret="s"
    )

    def delivery(status: str, days: int) -> WebhookDelivery:
        return WebhookDelivery.objects.create(
            endpoint=endpoint,
            event_type="reward.issued",
            mode="live",
            payload={},
            status=status,
            next_attempt_at=days_ago(days),
            created_at=days_ago(days),
        )

    old_done = [delivery(status, 91) for status in ("succeeded", "failed", "cancelled")]
    old_pending = delivery("pending", 91)
    recent = delivery("succeeded", 89)

    report = retention_run()

    left = set(WebhookDelivery.objects.values_list("pk", flat=True))
    assert left == {old_pending.pk, recent.pk}
    assert report.deliveries_retired == len(old_done)


def test_each_transaction_deletes_at_most_the_batch_size(trigger, retention):
    events = [old_event(trigger) for _ in range(25)]
    CampaignFactory(trigger=trigger)  # (no reward: the events are already processed)

    report = retention_run(batch_size=10)

    assert report.events_retired == 25
    assert (report.batches, report.largest_batch) == (3, 10)
    assert not TriggerEvent.objects.filter(pk__in=[e.pk for e in events]).exists()


def test_a_run_stops_at_its_time_budget_and_the_next_goes_on(trigger, retention):
    for _ in range(5):
        old_event(trigger)

    stopped = retention_run(batch_size=2, seconds=1e-9)
    finished = retention_run(batch_size=2)

    assert (stopped.complete, stopped.events_retired) == (False, 0)
    assert (finished.complete, finished.events_retired) == (True, 5)


def test_dry_run_command_counts_and_deletes_nothing(trigger, partnership, process, retention):
    CampaignFactory(trigger=trigger)
    rewarded = TriggerEventFactory(trigger=trigger)
    process()
    aged(rewarded, 900)
    doomed = [old_event(trigger) for _ in range(2)]
    old_event(trigger, "queued")
    out = io.StringIO()

    call_command("retire_events", "--dry-run", stdout=out)

    assert "would retire: 2" in out.getvalue()
    assert "kept, with rewards: 1" in out.getvalue()
    assert "kept, not finished: 1" in out.getvalue()
    assert TriggerEvent.objects.count() == 4
    call_command("retire_events", stdout=out)
    assert not any(exists(e) for e in doomed)


def test_retire_events_refuses_a_bad_batch_size():
    with pytest.raises(CommandError, match="positive whole number"):
        call_command("retire_events", "--batch-size", "0")


def test_beat_runs_retirement_and_its_task_retires(trigger, retention):
    app.loader.import_default_modules()
    tasks = {entry["task"] for entry in retention.CELERY_BEAT_SCHEDULE.values()}
    assert "rewards.tasks.retire_old_records" in tasks
    assert "rewards.tasks.retire_old_records" in app.tasks
    event = old_event(trigger)

    retire_old_records.apply().get()

    assert not exists(event)


def test_a_retention_below_the_longest_fact_window_and_lateness_is_refused():
    env = process_env(EVENT_RETENTION_DAYS=str(settings.EVENT_RETENTION_MIN_DAYS - 1))
    check = "import django; django.setup()"
    result = subprocess.run(
        [sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert f"EVENT_RETENTION_DAYS is at least {settings.EVENT_RETENTION_MIN_DAYS}" in result.stderr


def test_the_retention_floor_holds_the_bounds_it_is_made_of(trigger, retention):
    lateness = Partnership._meta.get_field("max_event_lateness_days")
    assert max(v.limit_value for v in lateness.validators if v.code == "max_value") == (
        settings.EVENT_LATENESS_MAX_DAYS
    )
    longest = settings.FACT_WINDOW_MAX_DAYS

    def fact(days: int) -> list[dict]:
        return [{"name": "n", "aggregate": "count", "window_days": days}]

    CampaignFactory(trigger=trigger, facts=fact(longest), condition="facts.n > 0")
    with pytest.raises(ValidationError, match=f"from 1 to {longest}"):
        CampaignFactory(trigger=trigger, facts=fact(longest + 1), condition="facts.n > 0")
    later = max(settings.EVENT_MAX_DELAY_DAYS, settings.BACKTEST_MAX_DAYS)
    floor = longest + settings.EVENT_LATENESS_MAX_DAYS + later + 1
    assert floor == settings.EVENT_RETENTION_MIN_DAYS


def test_a_report_rebuild_keeps_the_activity_of_retired_events(trigger, process, retention):
    from rewards.reports.models import ActivityBucket, Metric
    from rewards.reports.rebuild import reports_rebuild, retention_horizon

    recent = TriggerEventFactory(trigger=trigger)
    process()
    retired = old_event(trigger, days=PAST, processed_at=timezone.now())
    counted_then = ActivityBucket.objects.create(  # as the pipeline counted it back then
        partnership=trigger.partnership,
        mode="live",
        bucket=retention_horizon() - timedelta(days=1),
        trigger_id=trigger.id,
        metric=Metric.EVENT_EVALUATED,
        count=1,
    )
    retention_run()
    assert not exists(retired)

    reports_rebuild(partnership_ids=[trigger.partnership_id])

    evaluated = ActivityBucket.objects.filter(metric=Metric.EVENT_EVALUATED)
    assert sorted(evaluated.values_list("bucket", "count")) == [
        (counted_then.bucket, 1),
        (recent_bucket(recent), 1),
    ]


def recent_bucket(event: TriggerEvent):
    event.refresh_from_db()
    at = event.processed_at
    return at.replace(minute=at.minute - at.minute % 15, second=0, microsecond=0)


def test_an_event_evaluated_inside_the_window_is_kept_though_it_arrived_before(trigger, retention):
    late = old_event(trigger, days=PAST)
    TriggerEvent.objects.filter(pk=late.pk).update(processed_at=days_ago(KEPT - 1))

    retention_run()

    assert exists(late)
