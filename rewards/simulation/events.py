"""Reading a backtest's window: the events of one trigger and mode received in it, in keyset
chunks in the order received, and the attributes of their users.

Raw SQL (the replay reads thousands of rows a second), its columns named once
(``EVENT_COLUMNS``, held to the model by a test); served by ``event_partnership_idx``.
"""

import json
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson
from django.db import connection

from campaigns.facts import EVENT_TABLE, NOT_COUNTED
from partnerships.models import EndUser

if TYPE_CHECKING:
    from .backtest import Setup

# The columns of TriggerEvent read below, by field name (a test holds them to the model).
EVENT_COLUMNS = {
    "id": "id",
    "partnership": "partnership_id",
    "trigger": "trigger_id",
    "end_user": "end_user_id",
    "mode": "mode",
    "status": "status",
    "context": "context",
    "tags": "tags",
    "occurred_at": "occurred_at",
    "received_at": "received_at",
}
NOT_COUNTED_SQL = ", ".join(f"'{status.value}'" for status in NOT_COUNTED)
# Served by event_partnership_idx (partnership, -received_at), read backwards.
_WINDOW = """
  FROM {table}
 WHERE {partnership} = %(partnership_id)s AND {trigger} = %(trigger_id)s AND {mode} = %(mode)s
   AND {received_at} >= %(start)s AND {received_at} < %(end)s
   AND {status} NOT IN ({not_counted})
""".format(table=EVENT_TABLE, not_counted=NOT_COUNTED_SQL, **EVENT_COLUMNS)
_COUNT_SQL = "SELECT count(*)" + _WINDOW
# One chunk as one JSON document, built by PostgreSQL (on its own core): a list of
# [id, end_user_id, context, tags, occurred_at, received_at], ids as strings, times in ISO 8601
# (exact to the microsecond, with their offset). Decoding it is one orjson call in this
# process and ``datetime.fromisoformat`` (C) per time: ~3x cheaper here than psycopg's rows (a
# UUID, a context string and a timestamp at a time, then orjson on each context). Ids stay
# strings, whose hash Python caches. Beside it, whether a context or tags holds 19 digits in a
# row (ids and times never hold that many): orjson reads an integer outside [-2**63, 2**64) as
# a float, where the workers' json.loads (Django's JSONField) gives an int, which CEL refuses
# (an ``error`` decision, not a reward), so such a chunk is decoded with json.loads instead.
_CHUNK_SQL = (
    "SELECT json_agg(json_build_array({id}, {end_user}, {context}, {tags}, {occurred_at}, "  # noqa: S608
    "{received_at}) ORDER BY {received_at}, {id})::text,"
    " coalesce(bool_or({context}::text ~ '[0-9]{{19}}' OR {tags}::text ~ '[0-9]{{19}}'), false)"
    " FROM (SELECT {id}, {end_user}, {context}, {tags}, {occurred_at}, {received_at}"
    + _WINDOW
    + """
   AND {received_at} >= %(after_at)s AND ({received_at}, {id}) > (%(after_at)s, %(after_id)s::uuid)
 ORDER BY {received_at}, {id}
 LIMIT %(size)s) AS chunk"""
).format(**EVENT_COLUMNS)
_BEFORE_ALL = str(uuid.UUID(int=0))


class EventRow(NamedTuple):
    id: str | uuid.UUID  # a string as read here
    end_user_id: str | uuid.UUID
    context: dict
    tags: dict
    occurred_at: datetime
    received_at: datetime


def _window(setup: "Setup", start: datetime, end: datetime) -> dict[str, Any]:
    return {
        "partnership_id": setup.partnership_id,
        "trigger_id": setup.trigger_id,
        "mode": setup.mode,
        "start": start,
        "end": end,
    }


def events_count(*, setup: "Setup", start: datetime, end: datetime) -> int:
    with connection.cursor() as cursor:
        cursor.execute(_COUNT_SQL, _window(setup, start, end))
        return cursor.fetchone()[0]


def event_chunks(
    *,
    setup: "Setup",
    start: datetime,
    end: datetime,
    size: int,
    prepare: Callable[[Any, list[EventRow]], None] | None = None,
) -> Iterator[list[EventRow]]:
    """The window's events of the subject's trigger and mode, ``size`` at a time, in the order
    received (one query per chunk, after the last key read: nothing else is held).

    While the caller judges a chunk, PostgreSQL builds the next one on the other core: its query
    is sent from a thread, on this same connection (same transaction; psycopg serializes the
    connection's use, so a query of the caller's waits for it), and that thread waits on the
    server, not on the interpreter. ``prepare(raw_connection, chunk)`` is called in that thread
    with each chunk before it is handed over, for queries about the chunk (its facts' histories)
    to be answered meanwhile too. No query is left running when the iteration stops."""
    params = {**_window(setup, start, end), "after_at": start, "after_id": _BEFORE_ALL}
    params["size"] = size
    connection.ensure_connection()
    raw = connection.connection
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="backtest-read") as reader:
        pending = reader.submit(_chunk, raw, params, prepare)
        try:
            while (chunk := pending.result()) is not None:
                params = {**params, "after_at": chunk[-1].received_at, "after_id": chunk[-1].id}
                pending = reader.submit(_chunk, raw, params, prepare)
                yield chunk
        finally:
            wait([pending])


def _chunk(raw_connection, params: dict[str, Any], prepare) -> list[EventRow] | None:
    document, long = raw_connection.execute(_CHUNK_SQL, params).fetchone()
    if document is None:
        return None
    row = EventRow._make  # tuple.__new__ itself: no Python frame per event
    chunk = [
        row((pk, user, context, tags, _time(occurred), _time(received)))
        for pk, user, context, tags, occurred, received in (
            json.loads(document) if long else orjson.loads(document)
        )
    ]
    if prepare is not None:
        prepare(raw_connection, chunk)
    return chunk


def _json(value: Any) -> Any:
    """A user's attributes decoded as the workers' JSONField decodes them (``json.loads``: an
    integer beyond 64 bits stays an int, which CEL refuses, where orjson would give a float);
    read once per user, so its speed does not matter."""
    return json.loads(value) if isinstance(value, str | bytes) else value


_time = datetime.fromisoformat
# An event's time as microseconds since the epoch: (at - EPOCH) // MICROSECOND, exact.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def time_of(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


# The end users of a chunk: their attributes (the rules' ``user``) and who is blocked now, by
# their place in the list asked for (ids as UUIDs or strings alike).
_USERS_SQL = (
    "SELECT u.n, e.attributes, e.blocked_at IS NOT NULL"  # noqa: S608
    " FROM unnest(%s::uuid[]) WITH ORDINALITY AS u(id, n)"
    f" JOIN {EndUser._meta.db_table} e ON e.id = u.id"
)


class Users(NamedTuple):
    attributes: dict[str | uuid.UUID, dict]
    blocked: set[str | uuid.UUID]  # blocked in Pilot: they earn nothing, as the workers decide


def users_read(user_ids: list[str | uuid.UUID]) -> Users:
    with connection.cursor() as cursor:
        cursor.execute(_USERS_SQL, [user_ids])
        rows = cursor.fetchall()
    return Users(
        attributes={user_ids[n - 1]: _json(attributes) for n, attributes, _ in rows},
        blocked={user_ids[n - 1] for n, _, blocked in rows if blocked},
    )
