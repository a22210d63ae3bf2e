"""A report's figures per local day: closed days summed once into ``DayFigure``, the others
read from the 15-minute buckets.

A day is closed once it ended ``REPORTS_DAY_CLOSE_SECONDS`` ago (longer than a batch can take
between stamping its rewards and committing: the task's hard time limit) and events received
are counted past its end. From then on none of its buckets can change, so its sums are kept,
per zone (a partnership that changes zones gets its days summed again in the new one). Beat's
``close_report_days`` sums yesterday for every partnership before anyone asks; a report that
meets a closed day not summed yet sums it itself.

One change reaches back into a closed day: a retried event's failure is taken back from the
bucket it was counted in (``reports_reopen_days``, in the retry's transaction), and the days
summed over that bucket are deleted, to be summed again. Summing and reopening the days of a
partnership and mode take one advisory lock, so a sum never commits what a reopening missed.
"""

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from .calendar import local_midnight
from .maintain import reports_received_through
from .models import ClosedDay, DayFigure, Movement


class Figure(NamedTuple):
    day: int  # 1-based index in the scope's days
    trigger_id: int
    campaign_id: object  # uuid.UUID | None
    unit: str  # "" for activity
    metric: str  # a Movement kind (money) or an activity metric
    count: int
    amount: object  # Decimal


MONEY_METRICS = frozenset(Movement.values)

_SUM_MONEY = """
INSERT INTO rewards_dayfigure
       (partnership_id, mode, zone, day, trigger_id, campaign_id, unit, metric, count, amount)
SELECT %(partnership)s::uuid, %(mode)s::varchar, %(zone)s::varchar,
       (%(days)s::date[])[width_bucket(bucket, %(starts)s::timestamptz[])],
       trigger_id, campaign_id, unit, kind, sum(count), sum(amount)
  FROM rewards_moneybucket
 WHERE partnership_id = %(partnership)s AND mode = %(mode)s
   AND bucket >= %(start)s AND bucket < %(end)s
 GROUP BY 4, 5, 6, 7, 8
"""
_SUM_ACTIVITY = """
INSERT INTO rewards_dayfigure
       (partnership_id, mode, zone, day, trigger_id, campaign_id, unit, metric, count, amount)
SELECT %(partnership)s::uuid, %(mode)s::varchar, %(zone)s::varchar,
       (%(days)s::date[])[width_bucket(bucket, %(starts)s::timestamptz[])],
       trigger_id, campaign_id, '', metric, sum(count), 0
  FROM rewards_activitybucket
 WHERE partnership_id = %(partnership)s AND mode = %(mode)s
   AND bucket >= %(start)s AND bucket < %(end)s
 GROUP BY 4, 5, 6, 7, 8
"""
_READ_CLOSED = """
SELECT day, trigger_id, campaign_id, unit, metric, count, amount FROM rewards_dayfigure
 WHERE partnership_id = %(partnership)s AND mode = %(mode)s AND zone = %(zone)s
   AND day >= %(first)s AND day <= %(last)s
"""
_READ_OPEN_MONEY = """
SELECT width_bucket(bucket, %(starts)s::timestamptz[]), trigger_id, campaign_id, unit, kind,
       sum(count)::bigint, sum(amount)
  FROM rewards_moneybucket
 WHERE partnership_id = %(partnership)s AND mode = %(mode)s
   AND bucket >= %(start)s AND bucket < %(end)s
 GROUP BY 1, 2, 3, 4, 5
"""
_READ_OPEN_ACTIVITY = """
SELECT width_bucket(bucket, %(starts)s::timestamptz[]), trigger_id, campaign_id, '', metric,
       sum(count)::bigint, 0
  FROM rewards_activitybucket
 WHERE partnership_id = %(partnership)s AND mode = %(mode)s
   AND bucket >= %(start)s AND bucket < %(end)s
 GROUP BY 1, 2, 3, 4, 5
"""


def closed_through(now: datetime | None = None) -> datetime | None:
    """Days that end at or before this moment are closed."""
    received = reports_received_through()
    if received is None:
        return None
    margin = timedelta(seconds=settings.REPORTS_DAY_CLOSE_SECONDS)
    return min((now or timezone.now()) - margin, received)


def day_figures(scope) -> list[Figure]:
    """Every figure of the scope's partnership and mode per day of the scope (filters are the
    caller's to apply)."""
    through = closed_through()
    closed = [
        index
        for index, day in enumerate(scope.days)
        if through is not None and scope.day_starts[index + 1] <= through
    ]
    figures: list[Figure] = []
    if closed:
        days = scope.days[: len(closed)]
        _close(scope.partnership, scope.mode, scope.zone, days, scope.day_starts[: len(days) + 1])
        index_of = {day: n + 1 for n, day in enumerate(days)}
        params = _key(scope) | {"first": days[0], "last": days[-1]}
        figures += [Figure(index_of[row[0]], *row[1:]) for row in fetch_all(_READ_CLOSED, params)]
    if len(closed) < len(scope.days):
        params = _key(scope) | {
            "starts": scope.day_starts,
            "start": scope.day_starts[len(closed)],
            "end": scope.end,
        }
        figures += [Figure(*row) for row in fetch_all(_READ_OPEN_MONEY, params)]
        figures += [Figure(*row) for row in fetch_all(_READ_OPEN_ACTIVITY, params)]
    return figures


def _close(partnership, mode: str, zone, days: list[date], starts: list[datetime]) -> None:
    """Sums the closed ``days`` not summed yet (``starts``: their first moments, then the end)."""
    zone_name = str(zone)
    done = set(
        ClosedDay.objects.filter(
            partnership=partnership, mode=mode, zone=zone_name, day__in=days
        ).values_list("day", flat=True)
    )
    if len(done) == len(days):
        return
    for run in _runs([n for n, day in enumerate(days) if day not in done]):
        with transaction.atomic():
            _days_lock(partnership.pk, mode)
            marked = _mark(partnership, mode, zone_name, [days[n] for n in run])
            for part in _runs([n for n in run if days[n] in marked]):
                params = {
                    "partnership": partnership.pk,
                    "mode": mode,
                    "zone": zone_name,
                    "days": [days[n] for n in part],
                    "starts": [starts[n] for n in part] + [starts[part[-1] + 1]],
                    "start": starts[part[0]],
                    "end": starts[part[-1] + 1],
                }
                with connection.cursor() as cursor:
                    cursor.execute(_SUM_MONEY, params)
                    cursor.execute(_SUM_ACTIVITY, params)


_MARK = """
INSERT INTO rewards_closedday (partnership_id, mode, zone, day)
SELECT %s, %s, %s, unnest(%s::date[])
    ON CONFLICT (partnership_id, mode, zone, day) DO NOTHING
RETURNING day
"""


_DAYS_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"


def _days_lock(partnership_id, mode: str) -> None:
    """Held until the transaction ends: summing or reopening the closed days of a partnership
    and mode (the last lock a retry takes, see ``rewards.locks``)."""
    with connection.cursor() as cursor:
        cursor.execute(_DAYS_LOCK, [f"closed-days:{partnership_id}:{mode}"])


def reports_reopen_days(*, partnership_id, mode: str, at: datetime) -> None:
    """Deletes the sums of the closed days that may hold the bucket of ``at`` (its UTC date,
    and the day either side: every zone's local days overlapping it), so they are summed again.
    In the transaction that changed the bucket, after its activity buckets."""
    _days_lock(partnership_id, mode)
    day = at.astimezone(UTC).date()
    days = [day - timedelta(days=1), day, day + timedelta(days=1)]
    for model in (DayFigure, ClosedDay):
        model.objects.filter(partnership_id=partnership_id, mode=mode, day__in=days).delete()


def _mark(partnership, mode: str, zone: str, days: list[date]) -> set[date]:
    """Marks the days closed; returns those this transaction marked (another one that marks
    the same day waits for it, then leaves the day to it)."""
    with connection.cursor() as cursor:
        cursor.execute(_MARK, [partnership.pk, mode, zone, days])
        return {row[0] for row in cursor.fetchall()}


def _runs(indexes: Iterable[int]) -> list[list[int]]:
    """Consecutive runs: [1, 2, 4] -> [[1, 2], [4]]."""
    runs: list[list[int]] = []
    for index in indexes:
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    return runs


def _key(scope) -> dict:
    return {"partnership": scope.partnership.pk, "mode": scope.mode, "zone": str(scope.zone)}


def fetch_all(sql: str, params: dict) -> list[tuple]:
    """The rows of one statement (the reports' raw reads)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def reports_close_days(*, days: int = 2) -> int:
    """Sums the last ``days`` closed local days of every partnership, in both modes, in its
    current zone (beat, so that reports find them summed); returns how many partnerships."""
    from partnerships.models import Partnership

    through = closed_through()
    if through is None:
        return 0
    partnerships = list(Partnership.objects.all())
    for partnership in partnerships:
        zone = partnership.zone
        last = (through.astimezone(zone) - timedelta(microseconds=1)).date() - timedelta(days=1)
        span = [last - timedelta(days=n) for n in reversed(range(days))]
        starts = [local_midnight(day, zone) for day in span] + [
            local_midnight(last + timedelta(days=1), zone)
        ]
        if starts[-1] > through:
            continue
        for mode in ("live", "test"):
            _close(partnership, mode, zone, span, starts)
    return len(partnerships)
