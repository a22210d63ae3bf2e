"""Handing accepted events to their evaluation, in batches claimed from PostgreSQL.

What evaluating means is up to the apps above this one: their Celery task passes the processor,
and what to do about failed events, in as arguments (this module never imports them). A batch
goes through two steps:

1. **Claim**, one statement that commits on its own: queued events, locked ``FOR UPDATE SKIP
   LOCKED`` (concurrent workers never claim the same one), become ``processing`` with
   ``attempts + 1``, ``claimed_at`` and ``claimed_by`` (the worker's database session). The
   attempt is counted before anything is evaluated, so an event whose evaluation kills its
   worker (a native crash, memory, the hard time limit) is counted too.
2. **Evaluation**, one transaction: the claimed rows are locked again, in id order, and kept if
   they are still ``processing`` with the attempts this claim gave them (the claim's token: a
   claim recovered and made again by another worker has moved on). What the processor writes
   (rewards, counters, webhook rows) commits with the events' outcomes, or nothing does: an
   event is evaluated to completion exactly once.

If the evaluation raises, the batch is split in halves, each evaluated in its own transaction,
until the event at fault is alone; it goes back to the queue with its error and is retried
later, alone, until it has spent ``EVENT_MAX_ATTEMPTS``, then it is failed. A claim whose
worker died stays ``processing`` and unlocked; once its database session is gone (at once,
usually) or after ``EVENT_CLAIM_TIMEOUT_SECONDS`` (behind a pooler that keeps sessions) it is
recovered the same way. Every event that ends ``failed`` goes through ``_record`` and
``on_failed``, in the transaction that fails it.
"""

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import orjson
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from config.errors import ApplicationError, ErrorCode

from ..models import TriggerEvent

logger = logging.getLogger(__name__)
Status = TriggerEvent.Status


@dataclass(frozen=True, slots=True)
class EventOutcome:
    """What a processor decided for one event."""

    event_id: uuid.UUID
    status: str  # TriggerEvent.Status.PROCESSED or FAILED
    error: str = ""
    decisions: tuple = ()  # JSON-ready decision records, as stored in TriggerEvent.decisions


# Called in the transaction that holds the events' row locks; what it writes commits with the
# outcomes or not at all. It must not commit or roll back itself.
EventProcessor = Callable[[list[TriggerEvent]], list[EventOutcome]]  # one outcome per event
# Called with the events that end failed (status and error set), in the transaction failing them.
FailureListener = Callable[[list[TriggerEvent]], None]
_Claim = dict[uuid.UUID, int]  # event id -> attempts, as this claim set them
_FINAL = (Status.PROCESSED, Status.FAILED)

_CLAIM = """
UPDATE triggers_triggerevent AS e
   SET status = %(processing)s, attempts = e.attempts + 1, claimed_at = %(now)s,
       claimed_by = pg_backend_pid()
  FROM (SELECT id FROM triggers_triggerevent
         WHERE status = %(queued)s AND {which}
         ORDER BY {order} LIMIT %(limit)s
           FOR UPDATE SKIP LOCKED) AS due
 WHERE e.id = due.id
RETURNING e.id, e.attempts
"""
# New events, oldest first (event_queued_idx).
_CLAIM_NEW = _CLAIM.format(which="attempts = 0", order="deliver_at")
# Events tried before, once their retry delay has passed (event_retry_idx).
_CLAIM_RETRY = _CLAIM.format(
    which="attempts > 0 AND claimed_at <= %(now)s - %(delay)s * 2 ^ (attempts - 1) * interval '1s'",
    order="claimed_at",
)

# EventOutcome's fields that the outcome statement writes to the TriggerEvent columns of the same
# name, with the types it reads them as; a test holds them against both.
OUTCOME_COLUMNS = {"status": "varchar(16)", "error": "text", "decisions": "jsonb"}
_RECORD_OUTCOMES = f"""
UPDATE triggers_triggerevent e
   SET {", ".join(f"{name} = o.{name}" for name in OUTCOME_COLUMNS)}, processed_at = %s
  FROM jsonb_to_recordset(%s::jsonb)
       AS o(event_id uuid, {", ".join(f"{name} {kind}" for name, kind in OUTCOME_COLUMNS.items())})
 WHERE e.id = o.event_id
"""  # noqa: S608 (built from the constants above)
_STALLED = (
    "its evaluation did not finish: the worker stopped (killed, out of memory, past its time "
    "limit) or lost its database connection"
)


def trigger_events_process_pending(
    *, processor: EventProcessor, on_failed: FailureListener
) -> bool:
    """A worker's task: recovers stalled claims, then claims and evaluates batches until none is
    left (False) or ``EVENT_TASK_SECONDS`` have passed (True: hand over to a fresh task)."""
    try:
        trigger_events_recover_stalled(on_failed=on_failed)
    except Exception as exc:  # the queue must go on meanwhile
        if _systemic(exc):
            raise
        logger.exception("Recovering stalled claims failed")
    deadline = time.monotonic() + settings.EVENT_TASK_SECONDS
    batch = settings.EVENT_BATCH_SIZE
    while trigger_events_process_batch(limit=batch, processor=processor, on_failed=on_failed):
        if time.monotonic() > deadline:
            return True
    return False


def trigger_events_process_batch(
    *, limit: int, processor: EventProcessor, on_failed: FailureListener
) -> int:
    """Claims and evaluates one event due for a retry, alone, then up to ``limit`` new events
    together; returns how many it claimed (0: nothing to do).

    A retried event is evaluated alone, so what it does again (a crash, an error) is counted
    against it only: the other events of the batch it failed with are charged for it once.
    Must not run inside a transaction: each claim commits on its own.
    """
    claimed = 0
    for statement, size in ((_CLAIM_RETRY, 1), (_CLAIM_NEW, limit)):
        claim = _claim(statement, size)
        if claim:
            _evaluate(claim, processor, on_failed)
        claimed += len(claim)
    return claimed


def _claim(statement: str, limit: int) -> _Claim:
    params = {
        "processing": Status.PROCESSING,
        "queued": Status.QUEUED,
        "now": timezone.now(),
        "limit": limit,
        "delay": settings.EVENT_RETRY_DELAY_SECONDS,
    }
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return dict(cursor.fetchall())


def _evaluate(claim: _Claim, processor: EventProcessor, on_failed: FailureListener) -> None:
    try:
        with transaction.atomic():
            events = _lock_claimed(claim)
            if events:
                _record(events, _outcomes(processor, events), on_failed)
    except Exception as exc:
        if _systemic(exc):
            raise  # the task is retried; the claim is recovered once its timeout has passed
        if len(claim) == 1:
            _retry_later(claim, exc, on_failed)
            return
        logger.warning("A batch of %d events failed; splitting it", len(claim), exc_info=True)
        ids = sorted(claim)
        for half in (ids[: len(ids) // 2], ids[len(ids) // 2 :]):
            _evaluate({event_id: claim[event_id] for event_id in half}, processor, on_failed)


def _lock_claimed(claim: _Claim) -> list[TriggerEvent]:
    """The claim's events still under this claim, locked in id order."""
    events = (
        TriggerEvent.objects.select_for_update()
        .filter(pk__in=list(claim), status=Status.PROCESSING)
        .order_by("pk")
    )
    return [event for event in events if event.attempts == claim[event.pk]]


def _outcomes(processor: EventProcessor, events: list[TriggerEvent]) -> list[EventOutcome]:
    outcomes = processor(events)
    if len(outcomes) != len(events) or {o.event_id for o in outcomes} != {e.id for e in events}:
        raise ValueError("The processor must return one outcome per event")
    if any(o.status not in _FINAL for o in outcomes):
        raise ValueError("An outcome is processed or failed")
    return outcomes


def _record(
    events: list[TriggerEvent], outcomes: list[EventOutcome], on_failed: FailureListener
) -> None:
    """Writes the outcomes in one statement with one JSON parameter (bulk_update's CASE per
    row, or text arrays escaped in Python, cost more than the evaluation itself) and reports the
    failed events. Runs in the transaction that holds the events' locks."""
    with connection.cursor() as cursor:
        cursor.execute(_RECORD_OUTCOMES, [timezone.now(), orjson.dumps(outcomes).decode()])
    errors = {o.event_id: o.error for o in outcomes if o.status == Status.FAILED}
    if errors:
        failed = [event for event in events if event.id in errors]
        for event in failed:
            event.status, event.error = Status.FAILED, errors[event.id]
        on_failed(failed)


def _retry_later(claim: _Claim, exc: Exception, on_failed: FailureListener) -> None:
    ((event_id, attempts),) = claim.items()
    logger.warning("Trigger event %s failed (attempt %d)", event_id, attempts, exc_info=exc)
    with transaction.atomic():
        events = _lock_claimed(claim)
        if events:
            _requeue_or_fail(events, f"{type(exc).__name__}: {exc}"[:2000], on_failed)


def _requeue_or_fail(events: list[TriggerEvent], error: str, on_failed: FailureListener) -> None:
    """Events whose attempt did not finish: back to the queue (the error kept for operators), or
    failed once their attempts are spent. Runs in the transaction that holds their locks."""
    limit = settings.EVENT_MAX_ATTEMPTS
    again = [event.pk for event in events if event.attempts < limit]
    if again:
        TriggerEvent.objects.filter(pk__in=again).update(status=Status.QUEUED, error=error)
    spent = [event for event in events if event.attempts >= limit]
    if spent:
        logger.error("Giving up on trigger events %s: %s", [e.pk for e in spent], error)
        outcomes = [
            EventOutcome(event.id, Status.FAILED, f"{error} (attempt {event.attempts} of {limit})")
            for event in spent
        ]
        _record(spent, outcomes, on_failed)


# SQLSTATEs of the database's own trouble: a connection lost or refused, resources exhausted
# (disk, memory, connections), a shutdown or crash, a system error. (Deadlocks and statement
# timeouts are not among them: smaller batches can get past those.)
_SYSTEMIC_SQLSTATES = ("08", "53", "58", "57P01", "57P02", "57P03")


def _systemic(exc: Exception) -> bool:
    """The database failed, not the batch: splitting it cannot help, and must not count against
    its events one by one."""
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    sqlstate = getattr(exc.__cause__, "sqlstate", None)  # none: the connection broke
    return sqlstate is None or sqlstate.startswith(_SYSTEMIC_SQLSTATES)


def trigger_events_recover_stalled(*, on_failed: FailureListener, limit: int = 500) -> int:
    """Claims that nobody is evaluating (their rows are unlocked) and whose session is gone or
    that are older than ``EVENT_CLAIM_TIMEOUT_SECONDS``: their worker stopped before finishing
    them. Back to the queue, or failed once their attempts are spent."""
    with transaction.atomic():
        stalled = list(_stalled().select_for_update(skip_locked=True).order_by("pk")[:limit])
        if stalled:
            logger.warning("Recovering %d trigger events from stalled claims", len(stalled))
            _requeue_or_fail(stalled, _STALLED, on_failed)
    return len(stalled)


def _stalled():
    cutoff = timezone.now() - timedelta(seconds=settings.EVENT_CLAIM_TIMEOUT_SECONDS)
    sessions = RawSQL("SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL", ())
    return TriggerEvent.objects.filter(
        Q(claimed_at__lt=cutoff) | ~Q(claimed_by__in=sessions), status=Status.PROCESSING
    )


def trigger_events_promote_due() -> int:
    """Scheduled events whose time has come join the queue."""
    return TriggerEvent.objects.filter(
        status=Status.SCHEDULED, deliver_at__lte=timezone.now()
    ).update(status=Status.QUEUED)


def trigger_events_waiting() -> bool:
    """Events for a worker: queued ones, or stalled claims to recover."""
    return TriggerEvent.objects.filter(status=Status.QUEUED).exists() or _stalled().exists()


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
