"""The queue on its own: claims, outcomes, retries and recovery, with processors passed in."""

import ast
import dataclasses
import threading
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from tests.factories import TriggerEventFactory
from tests.support import wait_until
from triggers.models import TriggerEvent, TriggerEventClaim
from triggers.services import processing
from triggers.services.processing import (
    CLAIM_COLUMNS,
    OUTCOME_COLUMNS,
    EventOutcome,
    trigger_events_process_batch,
    trigger_events_promote_due,
    trigger_events_recover_stalled,
    trigger_events_waiting,
)

pytestmark = pytest.mark.django_db
PROCESSED, FAILED = TriggerEvent.Status.PROCESSED, TriggerEvent.Status.FAILED


def accept(events: list[TriggerEvent]) -> list[EventOutcome]:
    return [
        EventOutcome(event.id, PROCESSED, decisions=({"seen": str(event.id)},)) for event in events
    ]


class Failures:
    """An ``on_failed`` that remembers what it was told, and in which state."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def __call__(self, events: list[TriggerEvent]) -> None:
        self.events += [(event.id, event.status, event.error) for event in events]


def process(processor=accept, on_failed=None, limit: int = 500) -> int:
    return trigger_events_process_batch(
        limit=limit, processor=processor, on_failed=on_failed or Failures(), on_recorded=None
    )


def test_a_batch_marks_queued_events_processed(trigger):
    events = TriggerEventFactory.create_batch(3, trigger=trigger)

    claimed = process(limit=10)

    assert claimed == 3
    for event in events:
        event.refresh_from_db()
        assert event.status == "processed"
        assert event.processed_at is not None
        assert event.attempts == 1
        assert event.decisions == [{"seen": str(event.id)}]


def test_a_batch_takes_at_most_its_limit_oldest_first(trigger):
    now = timezone.now()
    old = TriggerEventFactory(trigger=trigger, deliver_at=now - timedelta(minutes=5))
    TriggerEventFactory.create_batch(2, trigger=trigger, deliver_at=now)

    assert process(limit=1) == 1
    old.refresh_from_db()
    assert old.status == "processed"


def test_scheduled_events_wait_until_due(trigger):
    later = TriggerEventFactory(
        trigger=trigger, status="scheduled", deliver_at=timezone.now() + timedelta(hours=1)
    )
    due = TriggerEventFactory(
        trigger=trigger, status="scheduled", deliver_at=timezone.now() - timedelta(seconds=1)
    )

    promoted = trigger_events_promote_due()
    process(limit=10)

    assert promoted == 1
    later.refresh_from_db()
    due.refresh_from_db()
    assert later.status == "scheduled"
    assert due.status == "processed"


def test_cancelled_events_are_never_processed(trigger):
    cancelled = TriggerEventFactory(trigger=trigger, status="cancelled")

    trigger_events_promote_due()

    assert process(limit=10) == 0
    cancelled.refresh_from_db()
    assert cancelled.status == "cancelled"


def test_an_outcome_failed_by_the_processor_is_failed_and_reported_once(trigger):
    good, bad = TriggerEventFactory.create_batch(2, trigger=trigger)
    failures = Failures()

    def processor(events):
        return [
            EventOutcome(e.id, FAILED, "bad rule") if e == bad else EventOutcome(e.id, PROCESSED)
            for e in events
        ]

    process(processor, failures)

    good.refresh_from_db()
    bad.refresh_from_db()
    assert (good.status, bad.status, bad.error) == ("processed", "failed", "bad rule")
    assert failures.events == [(bad.id, "failed", "bad rule")]


def test_an_event_whose_evaluation_raises_fails_alone_after_its_attempts(trigger, settings):
    settings.EVENT_MAX_ATTEMPTS, settings.EVENT_RETRY_DELAY_SECONDS = 3, 0
    events = TriggerEventFactory.create_batch(20, trigger=trigger)
    poison = events[7]
    failures, batches = Failures(), []

    def processor(batch):
        batches.append(len(batch))
        if poison in batch:
            raise RuntimeError("cannot evaluate this one")
        return accept(batch)

    while process(processor, failures):
        pass

    poison.refresh_from_db()
    assert poison.status == "failed"
    assert poison.attempts == 3
    assert poison.error == "RuntimeError: cannot evaluate this one (attempt 3)"
    assert failures.events == [(poison.id, "failed", poison.error)]
    assert TriggerEvent.objects.filter(status="processed", attempts=1).count() == 19
    assert batches[0] == 20
    assert len(batches) < 20  # halved until the poison is alone, not one by one


def test_a_failed_attempt_waits_before_it_is_retried(trigger, settings):
    settings.EVENT_RETRY_DELAY_SECONDS = 3600
    event = TriggerEventFactory(trigger=trigger)

    def fail(batch):
        raise RuntimeError("not now")

    process(fail)

    assert process(fail) == 0
    event.refresh_from_db()
    assert (event.status, event.attempts, event.error) == ("queued", 1, "RuntimeError: not now")
    TriggerEvent.objects.filter(pk=event.pk).update(
        last_attempt_at=timezone.now() - timedelta(hours=1)
    )
    assert process() == 1
    event.refresh_from_db()
    assert (event.status, event.attempts, event.error) == ("processed", 2, "")


class WorkerDied(BaseException):
    """Stands for the end of a worker in the middle of an evaluation (nothing catches it)."""


def die(batch):
    raise WorkerDied


@pytest.mark.django_db(transaction=True)
def test_a_batch_whose_worker_died_is_charged_then_failed_once_its_attempts_are_spent(
    trigger, settings
):
    settings.EVENT_MAX_ATTEMPTS, settings.EVENT_CLAIM_TIMEOUT_SECONDS = 2, 0
    settings.EVENT_RETRY_DELAY_SECONDS = 0
    event = TriggerEventFactory(trigger=trigger)
    failures = Failures()

    with pytest.raises(WorkerDied):
        process(die, failures)
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("queued", 0)  # rolled back, but on record:
    assert TriggerEventClaim.objects.get().event_ids == [event.id]
    assert trigger_events_waiting()

    assert trigger_events_recover_stalled(on_failed=failures, on_recorded=None) == 1
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("queued", 1)
    assert "did not finish" in event.error
    with pytest.raises(WorkerDied):
        process(die, failures)
    trigger_events_recover_stalled(on_failed=failures, on_recorded=None)

    event.refresh_from_db()
    assert (event.status, event.attempts) == ("failed", 2)
    assert failures.events == [(event.id, "failed", event.error)]
    assert not trigger_events_waiting()
    assert not TriggerEventClaim.objects.exists()


def _other_session() -> psycopg.Connection:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("prepare_threshold", None)
    return psycopg.connect(**params, autocommit=True)


def test_the_outcome_columns_are_the_models_and_the_outcomes(db):
    fields = {field.name for field in dataclasses.fields(EventOutcome)}
    assert fields == {"event_id", *OUTCOME_COLUMNS}
    for name, kind in OUTCOME_COLUMNS.items():
        field = TriggerEvent._meta.get_field(name)
        assert field.column == name
        assert field.db_type(connection) == kind


def test_the_claim_record_columns_are_the_models():
    columns = {field.column for field in TriggerEventClaim._meta.concrete_fields}
    assert set(CLAIM_COLUMNS) == columns - {"id"}


def test_the_queue_does_not_import_the_apps_above_it():
    root = Path(processing.__file__).resolve().parents[1]
    imported = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
    assert not imported & {"campaigns", "rewards"}


@pytest.mark.django_db(transaction=True)
def test_the_attempt_is_on_record_before_the_evaluation_starts(trigger):
    event = TriggerEventFactory(trigger=trigger)
    seen = []

    def processor(batch):
        with _other_session() as other:  # what a worker would see if this one died now
            seen.append(
                other.execute("SELECT event_ids FROM triggers_triggereventclaim").fetchall()
            )
        return accept(batch)

    process(processor)

    assert seen == [[([event.id],)]]
    assert not TriggerEventClaim.objects.exists()  # the batch's commit took it away
    event.refresh_from_db()
    assert event.attempts == 1


@pytest.mark.django_db(transaction=True)
def test_a_claim_being_evaluated_is_not_recovered(trigger, settings):
    settings.EVENT_CLAIM_TIMEOUT_SECONDS = 0
    TriggerEventFactory(trigger=trigger)
    recovered = []

    def recover_in_another_worker() -> None:
        try:
            recovered.append(trigger_events_recover_stalled(on_failed=Failures(), on_recorded=None))
        finally:
            connection.close()

    def processor(batch):
        other = threading.Thread(target=recover_in_another_worker)
        other.start()
        other.join()
        return accept(batch)

    process(processor)

    assert recovered == [0]
    assert TriggerEvent.objects.values_list("status", "attempts").get() == ("processed", 1)


@pytest.mark.django_db(transaction=True)
def test_a_connection_lost_mid_batch_stops_the_task_and_the_claim_is_recovered(trigger, settings):
    settings.EVENT_CLAIM_TIMEOUT_SECONDS, settings.EVENT_RETRY_DELAY_SECONDS = 0, 0
    events = TriggerEventFactory.create_batch(3, trigger=trigger)
    calls = []

    def lose_the_connection(batch):
        calls.append(len(batch))
        with _other_session() as admin:
            admin.execute(
                "SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid]
            )
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return accept(batch)

    with pytest.raises(OperationalError):
        process(lose_the_connection)
    connection.close()

    assert calls == [3]  # not split: nothing more can be done on that connection
    assert set(TriggerEvent.objects.values_list("status", "attempts")) == {("queued", 0)}
    assert trigger_events_recover_stalled(on_failed=Failures(), on_recorded=None) == 3
    while process():
        pass
    for event in events:
        event.refresh_from_db()
        assert (event.status, event.attempts) == ("processed", 2)


@pytest.mark.django_db(transaction=True)
def test_a_claim_whose_database_session_is_gone_is_recovered_without_waiting(trigger, settings):
    settings.EVENT_CLAIM_TIMEOUT_SECONDS, settings.EVENT_RETRY_DELAY_SECONDS = 3600, 0
    event = TriggerEventFactory(trigger=trigger)

    with pytest.raises(WorkerDied):
        process(die)
    assert (
        trigger_events_recover_stalled(on_failed=Failures(), on_recorded=None) == 0
    )  # its session lives on
    connection.close()  # the worker's session ends with the worker

    wait_until(
        lambda: trigger_events_recover_stalled(on_failed=Failures(), on_recorded=None) == 1,
        10,
        "the claim recovered once its session is gone",
    )
    assert process() == 1
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("processed", 2)


def test_a_failure_report_that_breaks_fails_its_event_and_the_queue_moves_on(trigger, settings):
    settings.EVENT_MAX_ATTEMPTS, settings.EVENT_RETRY_DELAY_SECONDS = 2, 0
    poison, *healthy = TriggerEventFactory.create_batch(4, trigger=trigger)

    def processor(batch):
        if poison in batch:
            raise RuntimeError("cannot evaluate this one")
        return accept(batch)

    def on_failed(events):
        raise RuntimeError("the webhook outbox is broken")

    for _ in range(10):
        if not process(processor, on_failed):
            break

    poison.refresh_from_db()
    assert poison.status == "failed"
    assert poison.attempts == 2
    assert [TriggerEvent.objects.get(pk=e.pk).status for e in healthy] == ["processed"] * 3
    assert not TriggerEventClaim.objects.exists()


def test_recovery_whose_failure_report_breaks_still_lets_new_events_through(trigger, settings):
    settings.EVENT_MAX_ATTEMPTS = 1
    stalled = TriggerEventFactory(trigger=trigger)
    fresh = TriggerEventFactory(trigger=trigger)
    # A claim whose session is gone: its worker died evaluating ``stalled``.
    TriggerEventClaim.objects.create(
        event_ids=[stalled.id], backend_pid=2**31 - 1, claimed_at=timezone.now()
    )

    def on_failed(events):
        raise RuntimeError("the webhook outbox is broken")

    while process(accept, on_failed):
        pass

    stalled.refresh_from_db()
    fresh.refresh_from_db()
    assert (stalled.status, fresh.status) == ("failed", "processed")
    assert not TriggerEventClaim.objects.exists()
