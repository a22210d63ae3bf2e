"""Handing accepted events to the evaluation, in batches claimed from PostgreSQL.

A batch is claimed with ``FOR UPDATE SKIP LOCKED`` and processed inside one transaction:
concurrent workers never share an event, and a worker that dies mid-batch leaves its events
queued (its transaction rolls back) for the next claim. What "processing" means is up to the
apps above this one, which register a processor (the dependency points their way).
"""

from collections.abc import Callable

import orjson
from django.db import connection, transaction
from django.utils import timezone

from config.errors import ApplicationError, ErrorCode

from ..models import TriggerEvent

EventProcessor = Callable[[list[TriggerEvent]], None]
_processors: list[EventProcessor] = []


def event_processor_register(processor: EventProcessor) -> None:
    if processor not in _processors:
        _processors.append(processor)


def trigger_events_process_batch(*, limit: int) -> int:
    """Claims up to ``limit`` due events, runs the processors, and records the outcome.

    A processor may set ``status`` (``failed``) and ``error`` on an event; the others end
    ``processed``. Returns how many events were claimed.
    """
    with transaction.atomic():
        events = list(
            TriggerEvent.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=TriggerEvent.Status.QUEUED)
            .order_by("deliver_at")[:limit]
        )
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
