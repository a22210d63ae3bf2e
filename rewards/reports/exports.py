"""Streamed CSV exports of reward rows and of reversal (adjustment) rows.

Constant memory whatever the size, and the first bytes leave at once: rows are read in keyset
chunks (``ORDER BY (at, id)``, ``WHERE (at, id) > (the chunk's last) LIMIT n``), each a short
statement served by an index (``reward_report_idx`` on (partnership, mode, issued_at, id);
``adjustment_created_idx`` on created_at, ties put in order by an incremental sort), formatted
by PostgreSQL as text and written as CSV lines. Not ``QuerySet.iterator()``: in autocommit Django
declares a ``WITH HOLD`` cursor, which PostgreSQL materializes whole before the first row.

Which moment an export reflects (docs/decisions.md, "Report exports read keyset chunks"):

- ``as_of`` is read from the database clock before the first row; only rows with their time
  (``issued_at``, or an adjustment's ``created_at``) at or before it are listed.
- Every chunk reads one REPEATABLE READ snapshot, taken at the first chunk (a moment after
  ``as_of``). So the listing is one state of the ledger: a reward's ``status`` and
  ``reversed_amount`` agree with the reversals listed, and the sums equal the report's figures at
  that moment. Without the snapshot, chunks read in autocommit would each see a later state:
  never a row twice or a committed row skipped (keys never change and rewards are never
  deleted), but a reward issued by a transaction committing mid-export, with an ``issued_at``
  behind the reader, would be missing while a later one was listed, and status columns would
  mix moments.
- A worker sets ``issued_at`` when it evaluates, before its batch commits. A batch still open
  when the snapshot is taken is not in the export although its ``issued_at`` may be before
  ``as_of``: the export is exact for the committed ledger, and a range that ended more than a
  batch's duration before ``as_of`` is final.
- The snapshot holds back VACUUM's horizon while the export runs (a client reading slowly
  keeps it open longer); a command-line export of a million rows takes seconds.
"""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from django.db import connection, transaction

from campaigns.models import Campaign
from config.csv_output import csv_text
from partnerships.models import EndUser, Partnership
from triggers.models import Trigger, TriggerEvent

from ..models import Reversal, Reward, RewardAdjustment

CHUNK_ROWS = 5000


class ExportKind(StrEnum):
    REWARDS = "rewards"
    REVERSALS = "reversals"


@dataclass(frozen=True)
class RowFilter:
    partnership: Partnership
    mode: str
    start: datetime  # inclusive
    end: datetime  # exclusive
    campaign_ids: frozenset[uuid.UUID] = frozenset()
    trigger_ids: frozenset[int] = frozenset()

    @classmethod
    def of_scope(cls, scope) -> "RowFilter":
        """The rows behind a report (``rewards.reports.selectors.ReportScope``)."""
        return cls(
            partnership=scope.partnership,
            mode=scope.mode,
            start=scope.start,
            end=scope.end,
            campaign_ids=frozenset(scope.campaign_ids),
            trigger_ids=frozenset(scope.trigger_ids),
        )


# --- SQL: every column is text formatted by PostgreSQL --------------------------------------


def _utc(column: str) -> str:
    """RFC 3339 in UTC to the microsecond: exact, and read back as the keyset position."""
    return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"


def _local_day(column: str) -> str:
    return f"({column} AT TIME ZONE %(zone)s::text)::date::text"


def amount_sql(column: str) -> str:
    """The partnership's decimal places, or more where the ledger holds finer digits (kept
    from before a change of decimal places): never rounded."""
    rounded = f"round({column}, %(places)s::int)"
    return (
        f"CASE WHEN {column} = {rounded} THEN {rounded}::text ELSE trim_scale({column})::text END"
    )


def _free_text(column: str) -> str:
    """Text a partner chose, neutralized against spreadsheet formulas (OWASP "CSV injection"):
    a value starting with = + - @ tab or CR gets a leading apostrophe."""
    return (
        f"CASE WHEN left({column}, 1) IN ('=', '+', '-', '@', E'\\t', E'\\r') "
        f"THEN '''' || {column} ELSE {column} END"
    )


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


@dataclass(frozen=True)
class RowSource:
    columns: tuple[tuple[str, str], ...]  # (CSV header, SQL expression); the first two: id, at
    tables: str  # FROM ... JOIN ...
    at: str  # the keyset's time column
    key: str  # the keyset's tie-breaker (the row's id)
    key_type: str

    @property
    def header(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)


_EVENT_JOINS = f"""
    JOIN {_table(Campaign)} c ON c.id = r.campaign_id
    JOIN {_table(TriggerEvent)} e ON e.id = r.trigger_event_id
    JOIN {_table(Trigger)} t ON t.id = e.trigger_id
    JOIN {_table(EndUser)} u ON u.id = r.end_user_id"""

REWARDS = RowSource(
    columns=(
        ("reward_id", "r.id::text"),
        ("issued_at", _utc("r.issued_at")),
        ("local_day", _local_day("r.issued_at")),
        ("campaign_id", "r.campaign_id::text"),
        ("campaign", "c.slug"),
        ("trigger", "t.name"),
        ("trigger_event_id", "r.trigger_event_id::text"),
        ("user_uuid", "r.end_user_id::text"),
        ("external_user_id", _free_text("u.external_user_id")),
        ("amount", amount_sql("r.amount")),
        ("reversed_amount", amount_sql("r.reversed_amount")),
        ("unit", "r.unit"),
        ("status", "r.status"),
        ("mode", "r.mode"),
        ("occurred_at", _utc("r.occurred_at")),
        ("campaign_version", "r.campaign_version::text"),
    ),
    tables=f"{_table(Reward)} r {_EVENT_JOINS}",
    at="r.issued_at",
    key="r.id",
    key_type="uuid",
)

REVERSALS = RowSource(
    columns=(
        ("adjustment_id", "a.id::text"),
        ("created_at", _utc("a.created_at")),
        ("local_day", _local_day("a.created_at")),
        ("reversal_id", "a.reversal_id::text"),
        ("reward_id", "a.reward_id::text"),
        ("trigger_event_id", "r.trigger_event_id::text"),
        ("campaign_id", "r.campaign_id::text"),
        ("campaign", "c.slug"),
        ("trigger", "t.name"),
        ("user_uuid", "r.end_user_id::text"),
        ("external_user_id", _free_text("u.external_user_id")),
        ("amount", amount_sql("a.amount")),
        ("unit", "r.unit"),
        ("mode", "r.mode"),
        ("reason", _free_text("v.reason")),
        ("reward_amount", amount_sql("r.amount")),
        ("reward_issued_at", _utc("r.issued_at")),
    ),
    tables=f"""{_table(RewardAdjustment)} a
    JOIN {_table(Reward)} r ON r.id = a.reward_id
    JOIN {_table(Reversal)} v ON v.id = a.reversal_id {_EVENT_JOINS}""",
    at="a.created_at",
    key="a.id",
    key_type="bigint",
)

SOURCES = {ExportKind.REWARDS: REWARDS, ExportKind.REVERSALS: REVERSALS}


def _chunk_sql(source: RowSource, rows: RowFilter, *, first: bool) -> str:
    where = [
        "r.partnership_id = %(partnership)s",
        "r.mode = %(mode)s",
        f"{source.at} >= %(start)s",
        f"{source.at} < %(end)s",
        f"{source.at} <= %(as_of)s",
    ]
    if not first:
        after = f"(%(after_at)s::timestamptz, %(after_key)s::{source.key_type})"
        where.append(f"({source.at}, {source.key}) > {after}")
    if rows.campaign_ids:
        where.append("r.campaign_id = ANY(%(campaigns)s)")
    if rows.trigger_ids:
        where.append("e.trigger_id = ANY(%(triggers)s)")
    columns = ",\n    ".join(expression for _, expression in source.columns)
    return (
        f"SELECT {columns}\nFROM {source.tables}\nWHERE {' AND '.join(where)}\n"
        f"ORDER BY {source.at}, {source.key}\nLIMIT %(limit)s"
    )


# --- The export -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvExport:
    kind: ExportKind
    rows: RowFilter
    as_of: datetime  # the database's clock when the export began

    def lines(self, *, chunk_rows: int = CHUNK_ROWS) -> Iterator[str]:
        """The CSV text, header first, one chunk of rows at a time."""
        source = SOURCES[self.kind]
        yield csv_text([source.header])
        params = {
            "partnership": self.rows.partnership.id,
            "mode": self.rows.mode,
            "start": self.rows.start,
            "end": self.rows.end,
            "as_of": self.as_of,
            "zone": self.rows.partnership.time_zone,
            "places": self.rows.partnership.reward_decimal_places,
            "campaigns": list(self.rows.campaign_ids),
            "triggers": list(self.rows.trigger_ids),
            "limit": chunk_rows,
        }
        first_sql = _chunk_sql(source, self.rows, first=True)
        next_sql = _chunk_sql(source, self.rows, first=False)
        with _snapshot(), connection.cursor() as cursor:
            cursor.execute(first_sql, params)
            while True:
                chunk = cursor.fetchall()
                if chunk:
                    yield csv_text(chunk)
                if len(chunk) < chunk_rows:
                    return
                after = {"after_key": chunk[-1][0], "after_at": chunk[-1][1]}
                del chunk  # one chunk in memory at a time
                cursor.execute(next_sql, {**params, **after})


def csv_export_start(*, kind: ExportKind, rows: RowFilter) -> CsvExport:
    """An export of the rows in ``rows`` as of now (the database's clock); nothing is read
    until its ``lines()`` are."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        (as_of,) = cursor.fetchone()
    return CsvExport(kind=kind, rows=rows, as_of=as_of)


@contextmanager
def _snapshot() -> Iterator[None]:
    """One REPEATABLE READ, read-only snapshot for all chunks; inside a transaction already
    (a test's, a caller's), that transaction's."""
    outer = connection.in_atomic_block
    with transaction.atomic():
        if not outer:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield
