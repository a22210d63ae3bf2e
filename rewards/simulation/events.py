"""Reading a backtest's window: the events of one trigger and mode received in it, in keyset
chunks in the order received, and the attributes of their users.

Raw SQL (the replay reads thousands of rows a second), its columns named once
(``EVENT_COLUMNS``, held to the model by a test); served by ``event_partnership_idx``.
"""

import uuid
from collections.abc import Iterator
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
# Times as microseconds since the epoch: ~10x cheaper to read than timestamps through Django's
# time zone loader, and exact (extract gives numeric).
_MICROS = "(extract(epoch FROM {}) * 1000000)::bigint"
_CHUNK_SQL = (
    "SELECT {id}, {end_user}, {context}, {tags}, ".format(**EVENT_COLUMNS)
    + ", ".join(_MICROS.format(EVENT_COLUMNS[name]) for name in ("occurred_at", "received_at"))
    + _WINDOW
    + """
   AND {received_at} >= %(after_at)s AND ({received_at}, {id}) > (%(after_at)s, %(after_id)s)
 ORDER BY {received_at}, {id}
 LIMIT %(size)s""".format(**EVENT_COLUMNS)
)
_BEFORE_ALL = uuid.UUID(int=0)


class EventRow(NamedTuple):
    id: uuid.UUID
    end_user_id: uuid.UUID
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
    *, setup: "Setup", start: datetime, end: datetime, size: int
) -> Iterator[list[EventRow]]:
    """The window's events of the subject's trigger and mode, ``size`` at a time, in the order
    received (one query per chunk, after the last key read: nothing else is held)."""
    params = {**_window(setup, start, end), "after_at": start, "after_id": _BEFORE_ALL}
    params["size"] = size
    while True:
        with connection.cursor() as cursor:
            cursor.execute(_CHUNK_SQL, params)
            rows = cursor.fetchall()
        if not rows:
            return
        chunk = [
            EventRow(pk, user, _json(context), _json(tags), time_of(occurred), time_of(received))
            for pk, user, context, tags, occurred, received in rows
        ]
        yield chunk
        params["after_at"], params["after_id"] = chunk[-1].received_at, chunk[-1].id


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def time_of(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def micros_of(at: datetime) -> int:
    return (at - _EPOCH) // _MICROSECOND


# The end users of a chunk: their attributes (the rules' ``user``) and who is blocked now.
_USERS_SQL = (
    f"SELECT id, attributes, blocked_at IS NOT NULL FROM {EndUser._meta.db_table} "  # noqa: S608
    "WHERE id = ANY(%s)"
)


class Users(NamedTuple):
    attributes: dict[uuid.UUID, dict]
    blocked: set[uuid.UUID]  # blocked in Pilot: they earn nothing, as the workers decide


def users_read(user_ids: list[uuid.UUID]) -> Users:
    with connection.cursor() as cursor:
        cursor.execute(_USERS_SQL, [user_ids])
        rows = cursor.fetchall()
    return Users(
        attributes={pk: _json(attributes) for pk, attributes, _ in rows},
        blocked={pk for pk, _, blocked in rows if blocked},
    )
