"""Handing accepted events to the evaluation, in batches claimed from PostgreSQL.

A batch is claimed with ``FOR UPDATE SKIP LOCKED`` and processed inside one transaction:
concurrent workers never share an event, and a worker that dies mid-batch leaves its events
queued (its transaction rolls back) for the next claim. What "processing" means is up to the
apps above this one, which register a processor (the dependency points their way).
"""

import logging
from collections.abc import Callable

import orjson
from django.db import DataError, IntegrityError, ProgrammingError, connection, transaction
from django.db.models import F
from django.utils import timezone

from config.errors import ApplicationError, ErrorCode

from ..models import TriggerEvent

logger = logging.getLogger(__name__)
EventProcessor = Callable[[list[TriggerEvent]], None]
_processors: list[EventProcessor] = []
_failure_listeners: list[EventProcessor] = []


def event_processor_register(processor: EventProcessor) -> None:
    if processor not in _processors:
        _processors.append(processor)


def event_failure_listener_register(listener: EventProcessor) -> None:
    """Called, in the failing transaction, with events set aside as failed by this module."""
    if listener not in _failure_listeners:
        _failure_listeners.append(listener)


# Errors that retrying the same data cannot cure (unlike OperationalError: connection lost,
# deadlock, serialization), so the event that causes one must be set aside.
PERMANENT_ERRORS = (DataError, IntegrityError, ProgrammingError)


def trigger_events_process_batch(*, limit: int) -> int:
    """Claims up to ``limit`` due events, runs the processors, and records the outcome.

    A processor may set ``status`` (``failed``) and ``error`` on an event; the others end
    ``processed``. Returns how many events were claimed. If the batch hits a permanent
    database error, its events are processed one by one and the one at fault is ``failed``
    with the error, so a single poison event never blocks the queue.
    """
    try:
        return _process(limit=limit)
    except PERMANENT_ERRORS:
        logger.warning("A batch failed; processing its events one by one", exc_info=True)
        return _process_one_by_one(limit=limit)


def _process_one_by_one(*, limit: int) -> int:
    ids = list(
        TriggerEvent.objects.filter(status=TriggerEvent.Status.QUEUED)
        .order_by("deliver_at")
        .values_list("pk", flat=True)[:limit]
    )
    for event_id in ids:
        try:
            _process(limit=1, event_id=event_id)
        except PERMANENT_ERRORS as exc:
            _set_aside(event_id, f"{type(exc).__name__}: {exc}"[:2000])
    return len(ids)


@transaction.atomic
def _set_aside(event_id, error: str) -> None:
    failed = TriggerEvent.objects.filter(pk=event_id, status=TriggerEvent.Status.QUEUED)
    if failed.update(
        status=TriggerEvent.Status.FAILED,
        error=error,
        processed_at=timezone.now(),
        attempts=F("attempts") + 1,
    ):
        for listener in _failure_listeners:
            listener(list(TriggerEvent.objects.filter(pk=event_id)))


def _process(*, limit: int, event_id=None) -> int:
    with transaction.atomic():
        claim = TriggerEvent.objects.select_for_update(skip_locked=True, of=("self",)).filter(
            status=TriggerEvent.Status.QUEUED
        )
        if event_id is not None:
            claim = claim.filter(pk=event_id)
        events = list(claim.order_by("deliver_at")[:limit])
        if not events:
            return 0
        for event in events:
            event.status = TriggerEvent.Status.PROCESSED
        for processor in _processors:
            processor(events)
        _record_outcomes(events)
    return len(events)


_RECORD_OUTCOMES = """
UPDATE triggers_triggerevent e
   SET status = o.status, error = o.error, decisions = o.decisions,
       processed_at = %s, attempts = e.attempts + 1
  FROM jsonb_to_recordset(%s::jsonb) AS o(id uuid, status text, error text, decisions jsonb)
 WHERE e.id = o.id
"""


def _record_outcomes(events: list[TriggerEvent]) -> None:
    """One statement, one JSON parameter for the whole batch (bulk_update's CASE per row, or
    text arrays escaped in Python, cost more than the evaluation itself)."""
    outcomes = [
        {"id": event.id, "status": event.status, "error": event.error, "decisions": event.decisions}
        for event in events
    ]
    with connection.cursor() as cursor:
        cursor.execute(_RECORD_OUTCOMES, [timezone.now(), orjson.dumps(outcomes).decode()])


def trigger_events_promote_due() -> int:
    """Scheduled events whose time has come join the queue."""
    return TriggerEvent.objects.filter(
        status=TriggerEvent.Status.SCHEDULED, deliver_at__lte=timezone.now()
    ).update(status=TriggerEvent.Status.QUEUED)


def trigger_events_waiting() -> bool:
    return TriggerEvent.objects.filter(status=TriggerEvent.Status.QUEUED).exists()


def trigger_event_cancel(*, event: TriggerEvent) -> TriggerEvent:
    """Cancels a scheduled event; cancelling a cancelled one again is a no-op."""
    cancelled = TriggerEvent.objects.filter(
        pk=event.pk, status=TriggerEvent.Status.SCHEDULED
    ).update(status=TriggerEvent.Status.CANCELLED)
    event.refresh_from_db(fields=["status"])
    if not cancelled and event.status != TriggerEvent.Status.CANCELLED:
        raise ApplicationError(
            409,
            ErrorCode.TRIGGER_EVENT_NOT_CANCELLABLE,
            f"The event is {event.status}; only scheduled events can be cancelled",
        )
    return event
