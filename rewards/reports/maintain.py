"""Keeping the report aggregates, in the transactions that make the figures happen.

- Rewards issued: the worker's batch, after the Ledger has written the counters
  (``reports_record_issued``), bucketed at ``Reward.issued_at``.
- Reversals: the reversal's transaction, after the counters (``reports_record_reversed``),
  bucketed at ``RewardAdjustment.created_at``.
- Events evaluated, rewarded and failed, and decisions by outcome: the queue's ``on_recorded``
  (``reports_record_outcomes``), in the transaction that writes the outcomes, bucketed at the
  ``processed_at`` it writes.
- A failed event retried (Pilot's "Retry"): its failure is taken back, -1 ``event.failed`` in
  the bucket of its old ``processed_at``, in the retry's transaction
  (``reports_retract_failure``); its new outcome is counted when a worker writes it.
- Events received: after the fact, by ``reports_count_received`` (beat), bucketed at
  ``received_at``, so that ingest writes nothing more. Exact up to its watermark.

Locks: money buckets are rows of campaigns whose counters the transaction already holds; activity
buckets come last. Both are upserted in key order (``rewards.locks`` gives the whole order).
"""

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import chain
from operator import itemgetter
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from campaigns.candidates import candidate_list_campaigns
from campaigns.decisions import CONDITION_FALSE

from .models import (
    BUCKET_MINUTES,
    DECISION_PREFIX,
    ActivityBucket,
    Metric,
    Movement,
    ReportWatermark,
)

# A bucket as PostgreSQL computes it (the same boundaries as ``bucket_of``).
BUCKET_SQL = "date_bin('15 minutes', {column}, timestamptz '2000-01-01 00:00:00+00')"


def bucket_of(moment: datetime) -> datetime:
    """The start of ``moment``'s 15-minute UTC bucket."""
    moment = moment.astimezone(UTC)
    return moment.replace(
        minute=moment.minute - moment.minute % BUCKET_MINUTES, second=0, microsecond=0
    )


# --- Money ---------------------------------------------------------------------------------

MONEY_KEY = ("partnership_id", "mode", "bucket", "trigger_id", "campaign_id", "unit", "kind")
_MONEY_TYPES = ("uuid", "text", "timestamptz", "bigint", "uuid", "text", "text")
_UPSERT_MONEY = f"""
INSERT INTO rewards_moneybucket ({", ".join(MONEY_KEY)}, count, amount)
SELECT * FROM unnest({", ".join(f"%s::{kind}[]" for kind in _MONEY_TYPES)}, %s::bigint[],
                     %s::numeric[])
 ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT ({", ".join(MONEY_KEY)}) DO UPDATE
   SET count = rewards_moneybucket.count + EXCLUDED.count,
       amount = rewards_moneybucket.amount + EXCLUDED.amount
"""  # noqa: S608 (built from the constants above)


def _sum_money(movements: Iterable[tuple[tuple, Decimal]]) -> dict[tuple, list]:
    """{key: [count, amount]} of (key, amount) movements."""
    sums: dict[tuple, list] = {}
    for key, amount in movements:
        figures = sums.setdefault(key, [0, Decimal(0)])
        figures[0] += 1
        figures[1] += amount
    return sums


def _upsert_money(sums: dict[tuple, list]) -> None:
    if not sums:
        return
    keys = list(sums)  # the statement's ORDER BY sets the order rows are locked in
    columns = [[key[i] for key in keys] for i in range(len(MONEY_KEY))]
    counts = [sums[key][0] for key in keys]
    amounts = [sums[key][1] for key in keys]
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT_MONEY, [*columns, counts, amounts])


class Issued(NamedTuple):
    """What one batch issued from one campaign in one mode (all at one ``issued_at``)."""

    partnership_id: object
    mode: str
    trigger_id: int
    campaign_id: object
    unit: str
    count: int
    amount: Decimal


def reports_record_issued(*, issued_at: datetime, issued: Iterable[Issued]) -> None:
    """Counts what a batch issued, per campaign (the Ledger's totals: nothing per reward).

    Must run in the transaction that inserts the rewards, holding their campaigns' counters."""
    bucket = bucket_of(issued_at)
    _upsert_money(
        {
            (
                i.partnership_id,
                i.mode,
                bucket,
                i.trigger_id,
                i.campaign_id,
                i.unit,
                Movement.ISSUED,
            ): [
                i.count,
                i.amount,
            ]
            for i in issued
            if i.count
        }
    )


def reports_record_reversed(*, adjustments: Iterable, trigger_id: int) -> None:
    """Counts reward adjustments (each with its ``reward`` loaded and ``created_at`` set) of
    one event, of trigger ``trigger_id``.

    Must run in the reversal's transaction, holding the rewards' campaign counters."""
    _upsert_money(
        _sum_money(
            (
                (
                    adjustment.reward.partnership_id,
                    adjustment.reward.mode,
                    bucket_of(adjustment.created_at),
                    trigger_id,
                    adjustment.reward.campaign_id,
                    adjustment.reward.unit,
                    Movement.REVERSED,
                ),
                adjustment.amount,
            )
            for adjustment in adjustments
        )
    )


# --- Activity -------------------------------------------------------------------------------

ACTIVITY_KEY = ("partnership_id", "mode", "bucket", "trigger_id", "campaign_id", "metric")
_UPSERT_ACTIVITY = f"""
INSERT INTO rewards_activitybucket ({", ".join(ACTIVITY_KEY)}, count)
SELECT * FROM unnest(%s::uuid[], %s::text[], %s::timestamptz[], %s::bigint[], %s::uuid[],
                     %s::text[], %s::bigint[])
 ORDER BY 1, 2, 3, 4, 5 NULLS FIRST, 6
    ON CONFLICT ({", ".join(ACTIVITY_KEY)}) DO UPDATE
   SET count = rewards_activitybucket.count + EXCLUDED.count
"""  # noqa: S608 (built from the constants above)


def _upsert_activity(counts: Counter) -> None:
    if not counts:
        return
    keys = list(counts)  # the statement's ORDER BY sets the order rows are locked in
    columns = [[key[i] for key in keys] for i in range(len(ACTIVITY_KEY))]
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT_ACTIVITY, [*columns, [counts[key] for key in keys]])


_CAMPAIGN_AND_OUTCOME = itemgetter(0, 1)
_OUTCOME = itemgetter(1)
_REWARDED = "rewarded"


def reports_record_outcomes(events: list, outcomes: list, now: datetime) -> None:
    """The queue's ``on_recorded``: counts the events evaluated, rewarded and failed, and each
    campaign's decisions, at ``now`` (the events' processed_at). In the outcomes' transaction.

    Decisions are in a stored form: the compact one (``campaigns.decisions``), counted per
    candidate list (its events' count is each campaign's ``condition_false``, less the
    decisions listed), or arrays ``[campaign_id, outcome, ...]``, counted by (campaign,
    outcome) in one pass over them all; no Python step per unlisted decision."""
    by_id = {event.id: event for event in events}
    # (partnership, mode, trigger) -> [events evaluated, events failed, their decision lists]
    groups: dict[tuple, list] = {}
    for outcome in outcomes:
        event = by_id[outcome.event_id]
        base = (event.partnership_id, event.mode, event.trigger_id)
        group = groups.get(base)
        if group is None:
            group = groups[base] = [0, 0, []]
        if outcome.status != "processed":
            group[1] += 1
            continue
        group[0] += 1
        if outcome.decisions:
            group[2].append(outcome.decisions)
    bucket = bucket_of(now)
    counts: Counter = Counter()
    for (partnership_id, mode, trigger_id), (evaluated, failed, lists) in groups.items():
        base = (partnership_id, mode, bucket, trigger_id)
        compact = [d for d in lists if isinstance(d, dict)]
        arrays = [d for d in lists if not isinstance(d, dict)] if compact else lists
        rewarded = sum(_REWARDED in map(_OUTCOME, decisions) for decisions in arrays)
        rewarded += sum(_REWARDED in map(_OUTCOME, d["decisions"]) for d in compact)
        for metric, count in (
            (Metric.EVENT_EVALUATED.value, evaluated),
            (Metric.EVENT_FAILED.value, failed),
            (Metric.EVENT_REWARDED.value, rewarded),
        ):
            if count:
                counts[(*base, None, metric)] = count
        decided = Counter(map(_CAMPAIGN_AND_OUTCOME, chain.from_iterable(arrays)))
        if compact:
            decided.update(_compact_decided(compact))
        for (campaign_id, outcome), count in decided.items():
            counts[(*base, campaign_id, DECISION_PREFIX + outcome)] = count
    _upsert_activity(counts)


def _compact_decided(stored: list[dict]) -> Counter:
    """(campaign id as text, outcome) -> count over decisions in the compact form."""
    per_list = Counter(d["candidates"] for d in stored)
    listed = Counter((d["candidates"], item[0], item[1]) for d in stored for item in d["decisions"])
    listed_at: Counter = Counter()  # (list, position) -> decisions listed there
    decided: Counter = Counter()
    for (list_id, position, outcome), count in listed.items():
        ids, _ = candidate_list_campaigns(list_id=list_id)
        decided[(str(ids[position]), outcome)] += count
        listed_at[(list_id, position)] += count
    for list_id, events in per_list.items():
        ids, _ = candidate_list_campaigns(list_id=list_id)
        for position, campaign_id in enumerate(ids):
            count = events - listed_at[(list_id, position)]
            if count:
                decided[(str(campaign_id), CONDITION_FALSE)] += count
    return decided


def reports_retract_failure(*, event) -> None:
    """Takes back the failure counted for ``event`` (failed, locked, about to be queued again),
    so that the retry's outcome is the only one counted, as ``reports_rebuild`` would count it.
    The caller reopens the closed days that hold its bucket (``days.reports_reopen_days``)."""
    bucket = bucket_of(event.processed_at)
    key = (event.partnership_id, event.mode, bucket, event.trigger_id)
    _upsert_activity(Counter({(*key, None, Metric.EVENT_FAILED.value): -1}))
    # A bucket left at 0 goes, as a rebuild would never write it.
    ActivityBucket.objects.filter(
        partnership_id=event.partnership_id,
        mode=event.mode,
        bucket=bucket,
        trigger_id=event.trigger_id,
        campaign_id=None,
        metric=Metric.EVENT_FAILED,
        count=0,
    ).delete()


# --- Events received, after the fact --------------------------------------------------------

RECEIVED = "events_received"
_COUNT_RECEIVED = f"""
INSERT INTO rewards_activitybucket ({", ".join(ACTIVITY_KEY)}, count)
SELECT e.partnership_id, e.mode, {BUCKET_SQL.format(column="e.received_at")}, e.trigger_id,
       NULL, %(metric)s, count(*)
  FROM partnerships_partnership p
 CROSS JOIN LATERAL (
       SELECT partnership_id, mode, received_at, trigger_id FROM triggers_triggerevent
        WHERE partnership_id = p.id AND received_at >= %(start)s AND received_at < %(end)s
       ) e
 GROUP BY 1, 2, 3, 4
 ORDER BY 1, 2, 3, 4
    ON CONFLICT ({", ".join(ACTIVITY_KEY)}) DO UPDATE
   SET count = rewards_activitybucket.count + EXCLUDED.count
"""  # noqa: S608 (built from the constants above)
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
# The oldest transaction still open in this database (an insert not yet committed is one).
_OLDEST_OPEN = """
SELECT min(xact_start) FROM pg_stat_activity
 WHERE datname = current_database() AND xact_start IS NOT NULL AND pid <> pg_backend_pid()
   AND backend_type = 'client backend'
"""


def reports_count_received(*, now: datetime | None = None) -> datetime:
    """Counts the events received since the watermark and moves it up to
    ``REPORTS_RECEIVED_SETTLE_SECONDS`` before now, and before the oldest transaction still
    open (less the same margin); returns the watermark.

    An event's ``received_at`` is read from the web process's clock before its insert starts;
    an insert still running (a slow disk, a stalled replica) is an open transaction, so the
    watermark waits for it, however long it takes. The margin covers the time between the
    stamp and the statement, and the web hosts' clocks running behind the database's."""
    settle = timedelta(seconds=settings.REPORTS_RECEIVED_SETTLE_SECONDS)
    end = (now or timezone.now()) - settle
    with connection.cursor() as cursor:
        cursor.execute(_OLDEST_OPEN)
        oldest = cursor.fetchone()[0]
    if oldest is not None:
        end = min(end, oldest - settle)
    with transaction.atomic():
        mark, _ = ReportWatermark.objects.select_for_update().get_or_create(
            name=RECEIVED, defaults={"through": _EPOCH}
        )
        if end <= mark.through:
            return mark.through
        with connection.cursor() as cursor:
            cursor.execute(
                _COUNT_RECEIVED,
                {"metric": Metric.EVENT_RECEIVED.value, "start": mark.through, "end": end},
            )
        mark.through = end
        mark.save(update_fields=["through"])
    return end


def reports_received_through() -> datetime | None:
    """Events received are counted up to this moment (None: not yet counted)."""
    return ReportWatermark.objects.filter(name=RECEIVED).values_list("through", flat=True).first()
