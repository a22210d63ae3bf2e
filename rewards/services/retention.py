"""Retiring old trigger events and webhook deliveries (issue 13): batched deletes, never a
partitioned table. Why, and what each window keeps: docs/decisions.md ("Retention").

An event is retired once it was received, occurred and was evaluated more than
``EVENT_RETENTION_DAYS`` ago (at least every day a fact can still read, settings' floor; the
report rebuild recounts from there, ``reports/rebuild.py``), and only if it is finished
(processed, failed or cancelled) and earned no reward: a reward is kept for good (balances,
reports, exports and reversals read it through its event), so its event is too. A rewardless
event's reversals (a cancelled event's, or one that had nothing to claw back) go with it: they
have no adjustments, which only rewards have. Its decisions are a column of its row.

Each partnership's old events are walked in ``(received_at, id)`` order through
``event_partnership_idx`` (no index of its own: every index costs each ingest), a page of
``RETENTION_BATCH_SIZE`` at a time, each page in one short transaction:

1. read the page (no lock);
2. lock the finished rewardless ones ``FOR UPDATE SKIP LOCKED``: a row a worker, a reversal or
   an erasure holds is skipped (until the next run), and this never waits for anyone
   (``rewards.locks``: kind 1, taken without waiting, and nothing after it but the deletes);
3. delete those of them that still have no reward, with their reversals, in a new statement
   (so a new snapshot: a reward committed before the lock is seen; none can come after it, as
   issuing one needs the event's row). Should a delete have to wait (nothing locks reversal
   rows today), ``lock_timeout`` gives up after 2 s and the page waits for the next run.

An ingest that reuses the key of an event being deleted waits for that short transaction and
then stores a new event (the ingest's one more try when the event in its way is gone).
"""

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from partnerships.models import Partnership
from triggers.models import TriggerEvent

from ..webhooks.services import webhook_deliveries_retire

# An event in one of these statuses will not change any more (unless an operator retries a
# failed one, under its row lock).
FINISHED = (
    TriggerEvent.Status.PROCESSED,
    TriggerEvent.Status.FAILED,
    TriggerEvent.Status.CANCELLED,
)
_START = (datetime(1970, 1, 1, tzinfo=UTC), uuid.UUID(int=0))
_LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout ran out

# One page of a partnership's old events, oldest first, after the last one seen; with what
# decides whether each may go (the reward check is repeated after the lock).
_PAGE = """
SELECT p.id, p.received_at, p.finished, r.rewarded IS NOT NULL
  FROM (
        SELECT e.id, e.received_at,
               e.status = ANY(%(finished)s) AND e.occurred_at < %(cutoff)s
               AND (e.processed_at IS NULL OR e.processed_at < %(cutoff)s) AS finished
          FROM triggers_triggerevent e
         WHERE e.partnership_id = %(partnership_id)s
           AND e.received_at < %(cutoff)s
           AND e.received_at >= %(after_at)s
           AND (e.received_at, e.id) > (%(after_at)s, %(after_id)s)
         ORDER BY e.received_at, e.id
         LIMIT %(limit)s
       ) p
  -- One probe of the rewards' event index per event (never a hash of every reward).
  LEFT JOIN LATERAL (
        SELECT true AS rewarded FROM rewards_reward r WHERE r.trigger_event_id = p.id LIMIT 1
       ) r ON true
 ORDER BY p.received_at, p.id
"""
_LOCK = """
SELECT id FROM triggers_triggerevent
 WHERE id = ANY(%(ids)s) AND status = ANY(%(finished)s)
 ORDER BY id
   FOR UPDATE SKIP LOCKED
"""
_DELETE = """
WITH doomed AS (
    SELECT e.id FROM triggers_triggerevent e
     WHERE e.id = ANY(%(ids)s)
       AND NOT EXISTS (SELECT FROM rewards_reward r WHERE r.trigger_event_id = e.id)
), reversals AS (
    DELETE FROM rewards_reversal v USING doomed d WHERE v.trigger_event_id = d.id
    RETURNING v.id
)
DELETE FROM triggers_triggerevent e USING doomed d WHERE e.id = d.id
RETURNING e.id, (SELECT count(*) FROM reversals)
"""


@dataclass
class RetentionReport:
    """What a run retired (or, dry, would retire) and what it kept among the old rows."""

    events_cutoff: datetime
    deliveries_cutoff: datetime
    events_retired: int = 0
    reversals_retired: int = 0
    events_kept_rewarded: int = 0
    events_kept_unfinished: int = 0
    events_skipped_locked: int = 0
    deliveries_retired: int = 0
    # False when the run stopped at its time budget: the next run goes on.
    complete: bool = True
    # Deleting transactions of events, and the most events one of them deleted.
    batches: int = 0
    largest_batch: int = 0


def retention_run(
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    batch_size: int | None = None,
    seconds: float | None = None,
) -> RetentionReport:
    """Retires the old events of every partnership, then the old webhook deliveries; stops
    after ``seconds`` (default ``RETENTION_RUN_SECONDS``) at a batch's end. Run it outside any
    transaction: each batch commits on its own."""
    now = now or timezone.now()
    report = RetentionReport(
        events_cutoff=now - timedelta(days=settings.EVENT_RETENTION_DAYS),
        deliveries_cutoff=now - timedelta(days=settings.WEBHOOK_DELIVERY_RETENTION_DAYS),
    )
    batch_size = batch_size or settings.RETENTION_BATCH_SIZE
    deadline = time.monotonic() + (seconds or settings.RETENTION_RUN_SECONDS)
    for partnership_id in Partnership.objects.order_by("id").values_list("id", flat=True):
        if not trigger_events_retire(
            partnership_id=partnership_id,
            report=report,
            dry_run=dry_run,
            batch_size=batch_size,
            deadline=deadline,
        ):
            report.complete = False
            return report
    report.deliveries_retired, report.complete = webhook_deliveries_retire(
        cutoff=report.deliveries_cutoff, dry_run=dry_run, batch_size=batch_size, deadline=deadline
    )
    return report


def trigger_events_retire(
    *,
    partnership_id: uuid.UUID,
    report: RetentionReport,
    dry_run: bool,
    batch_size: int,
    deadline: float,
) -> bool:
    """One partnership's old events, page by page (see the module's docstring); False if the
    deadline came first."""
    params = {
        "partnership_id": partnership_id,
        "cutoff": report.events_cutoff,
        "finished": list(FINISHED),
        "after_at": _START[0],
        "after_id": _START[1],
        "limit": batch_size,
    }
    while time.monotonic() < deadline:
        page: list[tuple] = []
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                # Never wait long on anyone (rows are locked SKIP LOCKED; this bounds the rest).
                cursor.execute("SET LOCAL lock_timeout = '2s'")
                cursor.execute(_PAGE, params)
                page = cursor.fetchall()
                if not page:
                    return True
                params["after_at"], params["after_id"] = page[-1][1], page[-1][0]
                _page_retire(cursor, page, report, dry_run)
        except OperationalError as error:
            if getattr(error.__cause__, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
                raise
            # Something held a row the deletes needed for 2 s: this page waits for the next run.
            report.events_skipped_locked += sum(1 for row in page if row[2] and not row[3])
            report.events_kept_rewarded += sum(1 for row in page if row[3])
            report.events_kept_unfinished += sum(1 for row in page if not row[2] and not row[3])
    return False


def _page_retire(cursor, page: list[tuple], report: RetentionReport, dry_run: bool) -> None:
    """Retires what may go of one page, in the caller's transaction; counts it once done."""
    candidates = [row[0] for row in page if row[2] and not row[3]]
    rewarded = sum(1 for row in page if row[3])
    unfinished = sum(1 for row in page if not row[2] and not row[3])
    locked, deleted = candidates, []
    if candidates and not dry_run:
        cursor.execute(_LOCK, {"ids": candidates, "finished": list(FINISHED)})
        locked = [row[0] for row in cursor.fetchall()]
        if locked:
            cursor.execute(_DELETE, {"ids": locked})
            deleted = cursor.fetchall()
    report.events_kept_rewarded += rewarded
    report.events_kept_unfinished += unfinished
    if dry_run:
        report.events_retired += len(candidates)
        return
    report.events_skipped_locked += len(candidates) - len(locked)
    report.events_retired += len(deleted)
    report.reversals_retired += deleted[0][1] if deleted else 0
    report.events_kept_rewarded += len(locked) - len(deleted)
    if deleted:
        report.batches += 1
        report.largest_batch = max(report.largest_batch, len(deleted))
