"""Per-user facts for a backtest, chunk by chunk, to the workers' definition
(``campaigns.facts``)."""

import bisect
import uuid
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.db import connection

from campaigns.engine import FactSpec
from campaigns.facts import EVENT_TABLE

from .events import EPOCH, EVENT_COLUMNS, MICROSECOND, NOT_COUNTED_SQL, EventRow, time_of

# Each user's events (by the user's place in the list: ids as UUIDs or strings alike) from their
# own lower bound (new users: what their facts reach back to;
# users already loaded: where their history ends; microseconds since the epoch, exact) up to the
# chunk's last occurred_at.
_HISTORY_SQL = """
SELECT u.n, (extract(epoch FROM e.{occurred_at}) * 1000000)::bigint{{sums}}
  FROM unnest(%(users)s::uuid[], %(lows)s::bigint[]) WITH ORDINALITY AS u(id, low, n)
  JOIN {table} e ON e.{end_user} = u.id
 WHERE e.{trigger} = %(trigger_id)s AND e.{mode} = %(mode)s
   AND e.{occurred_at} > 'epoch'::timestamptz + u.low * interval '1 microsecond'
   AND e.{occurred_at} <= %(high)s
   AND e.{status} NOT IN ({not_counted})
 ORDER BY u.n, e.{occurred_at}
""".format(table=EVENT_TABLE, not_counted=NOT_COUNTED_SQL, **EVENT_COLUMNS)
# A number in the context is summed; anything else counts as nothing (as campaigns.facts sums).
_SUMMED = (
    ", CASE WHEN jsonb_typeof(e.{context} -> %(field_{n})s) = 'number' "
    "THEN (e.{context} ->> %(field_{n})s)::numeric END"
)
_DAY = 86_400_000_000  # microseconds
# Users whose histories are kept between chunks, per trigger; beyond it they are read again.
MAX_USERS_KEPT = 50_000


class _History:
    """One user's events of one trigger, complete over ``(low, high]``: times in order, and
    running sums per summed field."""

    __slots__ = ("high", "low", "sums", "times")

    def __init__(self, fields: int, low: int) -> None:
        self.low = self.high = low
        self.times: list[int] = []  # occurred_at, microseconds since the epoch
        self.sums: list[list[Decimal]] = [[Decimal(0)] for _ in range(fields)]


def _array(items) -> str:
    """A PostgreSQL array literal of items that need no quoting (ids, integers)."""
    return "{" + ",".join(items) + "}"


class EventFacts:
    """One event's facts, each computed when read (a mapping by ``FactSpec``)."""

    __slots__ = ("_at", "_histories", "_owner", "_user")

    def __init__(self, owner: "FactHistories", histories: dict, user, at: int) -> None:
        self._owner, self._histories, self._user, self._at = owner, histories, user, at

    def __getitem__(self, spec: FactSpec) -> int | float:
        history = self._histories[spec.trigger_id][self._user]
        times, at = history.times, self._at
        first = bisect.bisect_right(times, at - spec.window_days * _DAY)
        last = bisect.bisect_right(times, at)
        if spec.aggregate == "count":
            return last - first
        sums = history.sums[self._owner.fields[spec.trigger_id].index(spec.field)]
        return float(sums[last] - sums[first])

    def get(self, spec: FactSpec, default=None):
        if spec.trigger_id not in self._histories:
            return default
        return self[spec]


class FactHistories:
    """The facts of each chunk's events, equal to what ``campaigns.facts`` computes: over the
    same user's events of the fact's trigger and mode, not cancelled or failed, with
    ``occurred_at`` in ``(occurred_at - window_days, occurred_at]``, whatever order they were
    received in. One query per trigger and chunk reads, per user of the chunk, the events its
    facts reach that were not read for an earlier chunk; histories are kept between chunks
    (at most ``MAX_USERS_KEPT`` users per trigger)."""

    def __init__(self, *, specs: list[FactSpec], mode: str) -> None:
        self.mode = mode
        self.by_trigger: dict[int, list[FactSpec]] = defaultdict(list)
        for spec in specs:
            self.by_trigger[spec.trigger_id].append(spec)
        self.fields = {
            trigger_id: list(dict.fromkeys(s.field for s in listed if s.aggregate == "sum"))
            for trigger_id, listed in self.by_trigger.items()
        }
        self.kept: dict[int, dict[Any, _History]] = defaultdict(dict)  # by user id

    def values(self, rows: list[EventRow]) -> dict[str | uuid.UUID, dict[FactSpec, int | float]]:
        """{event id: {fact: value}} for a chunk."""
        facts_of = self.prepared(rows)
        specs = [spec for listed in self.by_trigger.values() for spec in listed]
        return {row.id: {spec: facts_of(row)[spec] for spec in specs} for row in rows}

    def prepared(
        self, rows: list[EventRow], raw_connection=None
    ) -> Callable[[EventRow], "EventFacts"]:
        """Reads what the chunk's facts need (through ``raw_connection``, a psycopg connection,
        if given: from a reader thread); then each event's facts, computed when read.

        Chunks are prepared in order, one at a time, possibly while the one before is being
        read: a history is only ever extended past what that chunk's events read of it (its
        users' histories are complete up to its latest occurred_at), or replaced."""
        histories: dict[int, dict[Any, _History]] = {}
        if rows:
            occurred = {row.id: (row.occurred_at - EPOCH) // MICROSECOND for row in rows}
            for trigger_id, specs in self.by_trigger.items():
                longest = max(s.window_days for s in specs)
                histories[trigger_id] = self._read(
                    trigger_id, rows, occurred, longest, raw_connection
                )
        else:
            occurred = {}
        return lambda row: EventFacts(self, histories, row.end_user_id, occurred[row.id])

    def _read(
        self, trigger_id: int, rows, occurred, longest: int, raw_connection
    ) -> dict[Any, _History]:
        """The chunk's users' histories of one trigger, read where they are not yet complete."""
        kept = self.kept[trigger_id]
        if len(kept) > MAX_USERS_KEPT:
            kept.clear()
        fields = self.fields[trigger_id]
        high = max(occurred.values())
        reach: dict[Any, int] = {}  # how far back each user's facts reach
        span, known = longest * _DAY, reach.get
        for row in rows:
            since, user = occurred[row.id] - span, row.end_user_id
            earliest = known(user)
            if earliest is None or since < earliest:
                reach[user] = since
        wanted: dict[Any, _History] = {}
        for user, since in reach.items():
            history = kept.get(user)
            if history is None or history.low > since:
                history = kept[user] = _History(len(fields), since)
            if history.high < high:
                wanted[user] = history
        if wanted:
            self._extend(trigger_id, fields, wanted, high, raw_connection)
        return {user: kept[user] for user in reach}

    def _extend(self, trigger_id, fields, wanted: dict[Any, _History], high: int, raw) -> None:
        sums = "".join(_SUMMED.format(n=n, **EVENT_COLUMNS) for n in range(len(fields)))
        params = {
            # Arrays as their text (cast in the query): psycopg adapts a list item by item.
            "users": _array(str(user) for user in wanted),
            "lows": _array(str(history.high) for history in wanted.values()),
            "trigger_id": trigger_id,
            "mode": self.mode,
            "high": time_of(high),
        }
        params |= {f"field_{n}": field for n, field in enumerate(fields)}
        histories = list(wanted.values())
        sql = _HISTORY_SQL.format(sums=sums)
        if raw is not None:
            read = raw.execute(sql, params).fetchall()
        else:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                read = cursor.fetchall()
        for n, at, *amounts in read:
            history = histories[n - 1]
            history.times.append(at)
            for running, amount in zip(history.sums, amounts, strict=True):
                running.append(running[-1] + amount if amount is not None else running[-1])
        for history in wanted.values():
            history.high = high
