"""The queue's metrics: what ingest and the batches count (config.metrics), and its depth and
oldest event, read from PostgreSQL when Prometheus scrapes (never kept in a process)."""

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import DatabaseError, connection, transaction
from prometheus_client.core import GaugeMetricFamily

from config import metrics
from config.logs import event_extra

from .models import TriggerEvent

if TYPE_CHECKING:
    from .services.ingest import IngestResult

logger = logging.getLogger(__name__)
Status = TriggerEvent.Status


def ingest_accepted(result: "IngestResult", mode: str) -> None:
    """The ingest route's one increment; a line for the event at DEBUG only (the hot path)."""
    metrics.ingest_accepted(mode=mode, replayed=result.replayed)
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("Trigger event accepted", extra=event_extra(result.trigger_event_id))


def ingest_refused(code: str) -> None:
    metrics.ingest_refused(code=code)


def batch_observed(events: list[TriggerEvent], failed: dict, now: datetime) -> None:
    """Evaluation latency of a batch whose outcomes are being written (from when each event was
    due to ``now``, its processed_at), counted when the batch commits."""
    metrics.evaluation_observed(
        latencies=[
            (
                Status.FAILED if event.id in failed else Status.PROCESSED,
                (now - event.deliver_at).total_seconds(),
            )
            for event in events
        ]
    )


# Each part reads one partial index (event_new_idx, event_retry_idx, event_scheduled_idx; a
# test holds the plan to them): a scrape costs an index-only count of what waits, not a scan of
# the table. Ages are taken on the database's clock.
QUEUE_SQL = """
SELECT (SELECT count(*) FROM triggers_triggerevent
         WHERE status = %(queued)s AND attempts = 0),
       (SELECT EXTRACT(EPOCH FROM now() - min(deliver_at)) FROM triggers_triggerevent
         WHERE status = %(queued)s AND attempts = 0),
       (SELECT count(*) FROM triggers_triggerevent
         WHERE status = %(queued)s AND attempts > 0),
       (SELECT count(*) FROM triggers_triggerevent
         WHERE status = %(scheduled)s AND deliver_at <= now()),
       (SELECT EXTRACT(EPOCH FROM now() - min(deliver_at)) FROM triggers_triggerevent
         WHERE status = %(scheduled)s AND deliver_at <= now())
"""
QUEUE_PARAMS = {"queued": Status.QUEUED, "scheduled": Status.SCHEDULED}
# A scrape never waits long on a busy database: it reports the read failed instead.
_TIMEOUT_MS = 2000


def queue_read() -> tuple:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL statement_timeout = {_TIMEOUT_MS}")
        cursor.execute(QUEUE_SQL, QUEUE_PARAMS)
        return cursor.fetchone()


class QueueCollector:
    """``rewards_queue_events{state}``: events waiting for a worker (``new``: queued, never
    tried; ``retrying``: queued again after a failed attempt, waiting their delay; ``due``:
    scheduled events whose time has come, which beat has not queued yet);
    ``rewards_queue_oldest_age_seconds``: how long the oldest new or due event has waited since
    it was due; ``rewards_queue_read_ok``: 0 when the database could not be read (the others are
    then left out)."""

    def collect(self):
        ok = GaugeMetricFamily(
            "rewards_queue_read_ok", "1 if the queue could be read from PostgreSQL at this scrape"
        )
        try:
            new, new_age, retrying, due, due_age = queue_read()
        except DatabaseError:
            logger.warning("Reading the queue's depth for /metrics failed", exc_info=True)
            ok.add_metric([], 0)
            yield ok
            return
        ok.add_metric([], 1)
        yield ok
        depth = GaugeMetricFamily(
            "rewards_queue_events", "Trigger events waiting for evaluation", labels=["state"]
        )
        for state, count in (("new", new), ("retrying", retrying), ("due", due)):
            depth.add_metric([state], count)
        yield depth
        ages = [float(age) for age in (new_age, due_age) if age is not None]
        yield GaugeMetricFamily(
            "rewards_queue_oldest_age_seconds",
            "Seconds since the oldest event waiting (new or due) was due; 0 when none waits",
            value=max([0.0, *ages]),
        )
