"""Handing accepted events to their evaluation, in batches claimed from PostgreSQL.

What evaluating means is up to the apps above this one: their Celery task passes the processor,
and what to do about failed events, in as arguments (this module never imports them).

A batch is claimed and evaluated in one transaction: its queued rows are locked ``FOR UPDATE
SKIP LOCKED`` (concurrent workers never share one), the processor runs, and what it writes
(rewards, counters, webhook rows) commits with the events' outcomes and ``attempts + 1``, or
nothing does. Each event is evaluated to completion once, under its row lock.

So that an attempt that never finishes is counted too (a native crash, the OOM killer, the hard
time limit: nothing runs after those), a second database session records each claim
(``TriggerEventClaim``: the event ids and the claiming session's backend pid) and commits it
before the evaluation starts; the batch's own transaction deletes it. Before each batch, a
worker recovers the records of sessions that are gone (or older than
``EVENT_CLAIM_TIMEOUT_SECONDS``, behind a pooler that keeps sessions): their events still
queued are charged the attempt. The events are written once per attempt, as before.

If the evaluation raises, the batch is split in halves, each evaluated in its own transaction,
until the event at fault is alone: it is charged the attempt and goes back to the queue with
its error. Events with attempts behind them are claimed one at a time, once
``EVENT_RETRY_DELAY_SECONDS`` (doubled per attempt) has passed, so what they do again is
charged to them only; after ``EVENT_MAX_ATTEMPTS`` an event is failed. Every event that ends
``failed`` goes through ``_record`` and ``on_failed``, in the transaction that fails it.
"""

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import (
    DEFAULT_DB_ALIAS,
    InterfaceError,
    OperationalError,
    connection,
    connections,
    transaction,
)
from django.db.models import F
from django.utils import timezone

from config.errors import ApplicationError, ErrorCode
from config.logs import events_logged
from partnerships.services import audit_record

from ..dispatch import wake_workers
from ..metrics import batch_observed
from ..models import TriggerEvent, TriggerEventClaim
from ..signals import trigger_event_retrying

logger = logging.getLogger(__name__)
Status = TriggerEvent.Status


@dataclass(frozen=True, slots=True)
class EventOutcome:
    """What a processor decided for one event."""

    event_id: uuid.UUID
    status: str  # TriggerEvent.Status.PROCESSED or FAILED
    error: str = ""
    decisions: tuple | dict = ()  # JSON-ready decisions, as stored in TriggerEvent.decisions


# Called in the transaction that holds the events' row locks; what it writes commits with the
# outcomes or not at all. It must not commit or roll back itself.
EventProcessor = Callable[[list[TriggerEvent]], list[EventOutcome]]  # one outcome per event
# Called with the events that end failed (status and error set), in the transaction failing them.
FailureListener = Callable[[list[TriggerEvent]], None]
# Called with every batch of outcomes written, and the moment written as their processed_at, in
# the transaction that writes them (the reports' counts commit with the outcomes, or not at all).
RecordListener = Callable[[list[TriggerEvent], list["EventOutcome"], datetime], None]


@dataclass(frozen=True, slots=True)
class _Listeners:
    on_failed: FailureListener
    on_recorded: RecordListener | None = None

    def recorded(self, events, outcomes, now) -> None:
        if self.on_recorded is not None:
            self.on_recorded(events, outcomes, now)


_FINAL = (Status.PROCESSED, Status.FAILED)

# EventOutcome's fields that the outcome statement writes to the TriggerEvent columns of the same
# name, with the types it reads them as; a test holds them against both. It deletes the batch's
# claim record too: they commit together.
OUTCOME_COLUMNS = {"status": "varchar(16)", "error": "text", "decisions": "jsonb"}
_RECORD_OUTCOMES = f"""
WITH claim AS (DELETE FROM triggers_triggereventclaim WHERE id = %(claim)s)
UPDATE triggers_triggerevent e
   SET {", ".join(f"{name} = o.{name}" for name in OUTCOME_COLUMNS)},
       processed_at = %(now)s, last_attempt_at = %(now)s, attempts = e.attempts + 1
  FROM jsonb_to_recordset(%(outcomes)s::jsonb)
       AS o(event_id uuid, {", ".join(f"{name} {kind}" for name, kind in OUTCOME_COLUMNS.items())})
 WHERE e.id = o.event_id
"""  # noqa: S608 (built from the constants above)
# An event tried before whose retry delay has passed (event_retry_idx).
_DUE_FOR_RETRY = """
SELECT id FROM triggers_triggerevent
 WHERE status = %(queued)s AND attempts > 0
   AND last_attempt_at <= %(now)s - %(delay)s * 2 ^ (attempts - 1) * interval '1s'
 ORDER BY last_attempt_at LIMIT 1
   FOR UPDATE SKIP LOCKED
"""
# The claim record's columns, as the second session writes them (a test holds them against
# the model). The ids go in binary: their text form costs ~10x more (~6 ms for 500).
CLAIM_COLUMNS = ("event_ids", "backend_pid", "claimed_at")
_RECORD_CLAIM = (
    f"INSERT INTO triggers_triggereventclaim ({', '.join(CLAIM_COLUMNS)}) "  # noqa: S608
    "VALUES (%b, %s, %s) RETURNING id"
)
# Claim records of sessions that are gone, or too old (pg_stat_get_activity(pid) is one
# backend's row: none once it has exited).
_STALLED_CLAIMS = """
  FROM triggers_triggereventclaim c
 WHERE c.claimed_at < %(cutoff)s OR NOT EXISTS (SELECT FROM pg_stat_get_activity(c.backend_pid))
"""
_STALLED = (
    "its evaluation did not finish: the worker stopped (killed, out of memory, past its time "
    "limit) or lost its database connection"
)


def trigger_events_process_pending(
    *,
    processor: EventProcessor,
    on_failed: FailureListener,
    on_recorded: RecordListener | None,
) -> bool:
    """A worker's task: evaluates batches until none is left (False) or
    ``EVENT_TASK_SECONDS`` have passed (True: hand over to a fresh task). Once it has evaluated
    some, an empty queue is polled for ``EVENT_IDLE_LINGER_SECONDS`` more before it returns."""
    deadline = time.monotonic() + settings.EVENT_TASK_SECONDS
    batch = settings.EVENT_BATCH_SIZE
    linger_until = 0.0  # a task that found nothing at all returns at once
    while True:
        claimed = trigger_events_process_batch(
            limit=batch, processor=processor, on_failed=on_failed, on_recorded=on_recorded
        )
        now = time.monotonic()
        if claimed:
            if now > deadline:
                return True
            linger_until = now + settings.EVENT_IDLE_LINGER_SECONDS
        elif now >= linger_until or now > deadline:
            return False
        else:
            time.sleep(settings.EVENT_IDLE_POLL_SECONDS)


def trigger_events_process_batch(
    *,
    limit: int,
    processor: EventProcessor,
    on_failed: FailureListener,
    on_recorded: RecordListener | None,
) -> int:
    """Recovers stalled claims, then claims and evaluates one event due for a retry, alone, or
    else up to ``limit`` new events together; returns how many it claimed (0: none waiting).

    Not meant to run inside a transaction: the claim record commits on its own only then.
    """
    listeners = _Listeners(on_failed, on_recorded)
    if _claims_stalled():
        trigger_events_recover_stalled(on_failed=on_failed, on_recorded=on_recorded)
    in_transaction = connection.in_atomic_block
    ids, claim = [], None
    try:
        with transaction.atomic():
            events = _lock_due_for_retry() or _lock_new(limit)
            ids = [event.id for event in events]
            if events:
                claim = _claims.record(ids, commit=not in_transaction)
                with events_logged(ids):
                    _evaluate(events, processor, listeners, claim)
    except Exception as exc:
        if not ids or _systemic(exc):
            raise  # the task is retried; a claim record left behind is recovered
        with events_logged(ids):
            _narrow_down(ids, exc, processor, listeners)
        if claim is not None:
            TriggerEventClaim.objects.filter(pk=claim).delete()
    return len(ids)


def _lock_due_for_retry() -> list[TriggerEvent]:
    params = {
        "queued": Status.QUEUED,
        "now": timezone.now(),
        "delay": settings.EVENT_RETRY_DELAY_SECONDS,
    }
    with connection.cursor() as cursor:
        cursor.execute(_DUE_FOR_RETRY, params)
        due = cursor.fetchall()
    return list(TriggerEvent.objects.filter(pk=due[0][0])) if due else []  # locked just now


def _lock_new(limit: int) -> list[TriggerEvent]:
    claim = TriggerEvent.objects.select_for_update(skip_locked=True, of=("self",)).filter(
        status=Status.QUEUED, attempts=0
    )
    return list(claim.order_by("deliver_at")[:limit])


def _evaluate(
    events: list[TriggerEvent],
    processor: EventProcessor,
    listeners: _Listeners,
    claim: int | None = None,
) -> None:
    outcomes = processor(events)
    if len(outcomes) != len(events) or {o.event_id for o in outcomes} != {e.id for e in events}:
        raise ValueError("The processor must return one outcome per event")
    if any(o.status not in _FINAL for o in outcomes):
        raise ValueError("An outcome is processed or failed")
    _record(events, outcomes, listeners, claim)


def _record(
    events: list[TriggerEvent],
    outcomes: list[EventOutcome],
    listeners: _Listeners,
    claim: int | None = None,
) -> None:
    """Writes the outcomes in one statement with one JSON parameter (bulk_update's CASE per
    row, or text arrays escaped in Python, cost more than the evaluation itself), deletes the
    claim record, and reports the outcomes (``on_recorded``) and the failed events
    (``on_failed``). Runs in the transaction that holds the events' locks."""
    now = timezone.now()
    params = {
        "now": now,
        "outcomes": orjson.dumps(outcomes).decode(),
        "claim": claim,
    }
    with connection.cursor() as cursor:
        cursor.execute(_RECORD_OUTCOMES, params)
    listeners.recorded(events, outcomes, now)
    errors = {o.event_id: o.error for o in outcomes if o.status == Status.FAILED}
    batch_observed(events, errors, now)
    if errors:
        failed = [event for event in events if event.id in errors]
        for event in failed:
            event.status, event.error, event.processed_at = Status.FAILED, errors[event.id], now
        listeners.on_failed(failed)


def _narrow_down(ids: list, exc: Exception, processor, listeners: _Listeners) -> None:
    """The batch of ``ids`` raised ``exc``: evaluates its halves, each in its own transaction,
    until the event at fault is alone, and charges it the attempt."""
    if len(ids) == 1:
        with events_logged(ids):
            _charge(ids, f"{type(exc).__name__}: {exc}"[:2000], listeners, exc)
        return
    logger.warning("A batch of %d events failed; splitting it", len(ids), exc_info=exc)
    middle = len(ids) // 2
    for half in (ids[:middle], ids[middle:]):
        try:
            with transaction.atomic():
                events = _lock_queued(half)
                if events:
                    with events_logged(half):
                        _evaluate(events, processor, listeners)
        except Exception as error:
            if _systemic(error):
                raise
            _narrow_down(half, error, processor, listeners)


def _lock_queued(ids) -> list[TriggerEvent]:
    """Those of these events still queued and not claimed by another worker meanwhile."""
    events = TriggerEvent.objects.select_for_update(skip_locked=True).filter(
        pk__in=list(ids), status=Status.QUEUED
    )
    return list(events.order_by("pk"))


def _charge(ids, error: str, listeners: _Listeners, exc: Exception | None = None) -> int:
    """Counts an attempt that did not finish against these events (those still queued and not
    claimed meanwhile): back to the queue with the error, or failed once they have spent
    ``EVENT_MAX_ATTEMPTS``.

    Never raises for anything but the database's own trouble: if reporting the failure
    (``on_failed``) breaks, the events are failed without it, and if counting them for the
    reports (``on_recorded``) breaks too, without that (``manage.py reports_rebuild`` recounts
    from the rows); the queue moves on."""
    try:
        return _charge_once(ids, error, listeners, exc)
    except Exception as failure:
        if _systemic(failure):
            raise
        logger.exception("Reporting the failure of trigger events %s failed", sorted(ids))
    try:  # without the failure webhooks
        return _charge_once(ids, error, _Listeners(_not_reported, listeners.on_recorded), exc)
    except Exception as failure:
        if _systemic(failure):
            raise
        logger.exception("Recording the failure of trigger events %s failed", sorted(ids))
    return _charge_once(ids, error, _Listeners(_not_reported), exc)  # without reports either


def _not_reported(events: list[TriggerEvent]) -> None:
    """``on_failed`` when the real one broke: the events are failed all the same (logged)."""


def _charge_once(ids, error: str, listeners: _Listeners, exc: Exception | None) -> int:
    limit = settings.EVENT_MAX_ATTEMPTS
    with transaction.atomic():
        events = _lock_queued(ids)
        again = [event.pk for event in events if event.attempts + 1 < limit]
        if again:
            logger.warning("Trigger events %s will be retried: %s", again, error, exc_info=exc)
            TriggerEvent.objects.filter(pk__in=again).update(
                attempts=F("attempts") + 1, last_attempt_at=timezone.now(), error=error
            )
        spent = [event for event in events if event.attempts + 1 >= limit]
        if spent:
            logger.error("Trigger events %s failed: %s", [e.pk for e in spent], error, exc_info=exc)
            outcomes = [
                EventOutcome(event.id, Status.FAILED, f"{error} (attempt {event.attempts + 1})")
                for event in spent
            ]
            _record(spent, outcomes, listeners)
    return len(events)


# SQLSTATEs of the database's own trouble: a connection lost or refused, resources exhausted
# (disk, memory, connections), a shutdown or crash, a system error. (Deadlocks and statement
# timeouts are not among them: smaller batches can get past those.)
_SYSTEMIC_SQLSTATES = ("08", "53", "58", "57P01", "57P02", "57P03")


def _systemic(exc: Exception) -> bool:
    """The database failed, not the batch: splitting it cannot help, and must not count against
    its events one by one."""
    if isinstance(exc, InterfaceError | SoftTimeLimitExceeded | MemoryError):
        return True  # the worker's trouble: its claim is recovered and charged as a crash
    if not isinstance(exc, OperationalError):
        return False
    sqlstate = getattr(exc.__cause__, "sqlstate", None)  # none: the connection broke
    return sqlstate is None or sqlstate.startswith(_SYSTEMIC_SQLSTATES)


class _ClaimRecords:
    """Writes claim records through a second session of this process (and thread) in
    autocommit, so they commit while the batch's transaction holds the rows."""

    def __init__(self) -> None:
        self._local = threading.local()

    def record(self, ids: list, *, commit: bool) -> int:
        pid = connection.connection.info.backend_pid
        params = [ids, pid, timezone.now()]
        if not commit:  # inside a caller's transaction (tests): nothing commits before it does
            with connection.cursor() as cursor:
                cursor.execute(_RECORD_CLAIM, params)
                return cursor.fetchone()[0]
        for retry in (True, False):
            session = self._session()
            try:
                with session.cursor() as cursor:
                    cursor.execute(_RECORD_CLAIM, params)
                    return cursor.fetchone()[0]
            except (OperationalError, InterfaceError):
                session.close()  # dead (the server restarted): reconnect once
                if not retry:
                    raise
        raise AssertionError("unreachable")

    def _session(self):
        if getattr(self._local, "pid", None) != os.getpid():  # a forked child: its own session
            session = connections.create_connection(DEFAULT_DB_ALIAS)
            options = session.settings_dict["OPTIONS"]
            # Not waiting for the WAL flush (~0.2-2 ms a batch): the record is visible at once,
            # and a worker's death, what it detects, leaves the server running. Only a server
            # crash within ~0.6 s can lose it, and that crash rolls the batch back uncharged.
            flags = f"{options.get('options', '')} -c synchronous_commit=off".strip()
            session.settings_dict = {
                **session.settings_dict,
                "OPTIONS": {**options, "options": flags},
            }
            self._local.session, self._local.pid = session, os.getpid()
        return self._local.session


_claims = _ClaimRecords()


def _stalled_claims(select: str, suffix: str = "", **params) -> list[tuple]:
    cutoff = timezone.now() - timedelta(seconds=settings.EVENT_CLAIM_TIMEOUT_SECONDS)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {select} {_STALLED_CLAIMS} {suffix}", {"cutoff": cutoff, **params})
        return cursor.fetchall()


def _claims_stalled() -> bool:
    return bool(_stalled_claims("1", "LIMIT 1"))


def trigger_events_recover_stalled(
    *, on_failed: FailureListener, on_recorded: RecordListener | None, limit: int = 100
) -> int:
    """Claim records whose session is gone, or older than ``EVENT_CLAIM_TIMEOUT_SECONDS``:
    their worker died mid-batch and its transaction rolled back. Their events still queued (and
    not claimed again meanwhile) are charged the attempt; returns how many."""
    with transaction.atomic():
        claims = _stalled_claims(
            "c.id, c.event_ids", "LIMIT %(limit)s FOR UPDATE SKIP LOCKED", limit=limit
        )
        if not claims:
            return 0
        ids = {event_id for _, event_ids in claims for event_id in event_ids}
        with events_logged(ids):
            logger.warning("Recovering %d claims of %d trigger events", len(claims), len(ids))
            charged = _charge(ids, _STALLED, _Listeners(on_failed, on_recorded))
        TriggerEventClaim.objects.filter(pk__in=[pk for pk, _ in claims]).delete()
    return charged


def trigger_events_promote_due() -> int:
    """Scheduled events whose time has come join the queue."""
    return TriggerEvent.objects.filter(
        status=Status.SCHEDULED, deliver_at__lte=timezone.now()
    ).update(status=Status.QUEUED)


def trigger_events_waiting() -> bool:
    """Events for a worker: queued ones, or claims left by dead workers to recover."""
    return TriggerEvent.objects.filter(status=Status.QUEUED).exists() or _claims_stalled()


def trigger_event_cancel(*, event: TriggerEvent) -> TriggerEvent:
    """Cancels a scheduled event; cancelling a cancelled one again is a no-op."""
    cancelled = TriggerEvent.objects.filter(pk=event.pk, status=Status.SCHEDULED).update(
        status=Status.CANCELLED
    )
    event.refresh_from_db(fields=["status"])
    if not cancelled and event.status != Status.CANCELLED:
        raise ApplicationError(
            409,
            ErrorCode.TRIGGER_EVENT_NOT_CANCELLABLE,
            f"The event is {event.status}; only scheduled events can be cancelled",
        )
    return event


def trigger_event_retry(*, event: TriggerEvent, operator) -> TriggerEvent:
    """Puts a failed event back in the queue (Pilot's "Retry"), audited as ``event.retry``.

    It keeps its attempts: the workers take it alone, as an event tried before, once
    ``EVENT_RETRY_DELAY_SECONDS`` (doubled per attempt) has passed since its last attempt, and
    it is failed again if that attempt breaks after ``EVENT_MAX_ATTEMPTS``. Its error stays
    until the new attempt writes its outcome. Only a failed event can be retried, and only if
    no receiver of ``trigger_event_retrying`` refuses (a reversed event never pays)."""
    with transaction.atomic():
        locked = TriggerEvent.objects.select_for_update().get(pk=event.pk)
        if locked.status != Status.FAILED:
            raise ApplicationError(
                409,
                ErrorCode.TRIGGER_EVENT_NOT_RETRYABLE,
                f"The event is {locked.get_status_display().lower()}; "
                "only failed events can be retried",
            )
        trigger_event_retrying.send(sender=TriggerEvent, event=locked, operator=operator)
        locked.status, locked.processed_at = Status.QUEUED, None
        locked.save(update_fields=["status", "processed_at"])
        audit_record(
            actor=operator,
            action="event.retry",
            target=locked,
            partnership=locked.partnership,
            mode=locked.mode,
            changes={"status": [Status.FAILED, Status.QUEUED], "attempts": locked.attempts},
        )
        transaction.on_commit(wake_workers)
    return locked
