"""Accepting a trigger event: validate, store durably in one round trip, wake the workers."""

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from config import timestamps
from config.errors import (
    ApplicationError,
    ErrorCode,
    field_error,
    idempotency_key_errors,
    validation_error,
)
from partnerships.auth import PartnerPrincipal
from partnerships.pseudonyms import erased_external_id, reserved_external_id_errors, user_erased

from ..dispatch import wake_workers
from ..models import TriggerEvent
from ..schemas import compile_schema, schema_errors
from ..selectors import TriggerRecord, trigger_record

DELAY_UNITS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
_MAX_DELAY_SECONDS = settings.EVENT_MAX_DELAY_DAYS * DELAY_UNITS["days"]
_MAX_DELAY_MESSAGE = f"Delivery can be delayed by at most {settings.EVENT_MAX_DELAY_DAYS} days"

# The request body, as a JSON Schema: validated in one pass and served in the OpenAPI docs.
# Every bound is here, so nothing past it reaches the arithmetic (a delay of 3,000,000 days
# would overflow a timedelta); what the schema cannot know (the clock, the partnership's
# lateness bound, the trigger's own schema) is checked after it.
INGEST_BODY_SCHEMA = {
    "type": "object",
    "properties": {
        "trigger_name": {"type": "string", "minLength": 1, "maxLength": 64},
        "external_user_id": {"type": "string", "minLength": 1, "maxLength": 255},
        "user_uuid": {"type": "string", "format": "uuid"},
        "transaction_context": {"type": "object"},
        "occurred_at": timestamps.SCHEMA,
        "deliver_at": timestamps.SCHEMA,
        "delay": {
            "type": "object",
            "properties": {
                unit: {"type": "integer", "minimum": 1, "maximum": _MAX_DELAY_SECONDS // seconds}
                for unit, seconds in DELAY_UNITS.items()
            },
            "additionalProperties": False,
            "minProperties": 1,
            "maxProperties": 1,
        },
        "tags": {
            "type": "object",
            "maxProperties": 16,
            "propertyNames": {"pattern": "^[A-Za-z0-9_.:-]{1,64}$"},
            "additionalProperties": {"type": "string", "maxLength": 200},
        },
        "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 255},
    },
    "required": ["trigger_name"],
    "anyOf": [{"required": ["external_user_id"]}, {"required": ["user_uuid"]}],
    "not": {"required": ["delay", "deliver_at"]},
    "additionalProperties": False,
}
_body_validator = compile_schema(INGEST_BODY_SCHEMA)


@dataclass(frozen=True, slots=True)
class IngestResult:
    trigger_event_id: uuid.UUID
    status: str
    user_uuid: uuid.UUID
    replayed: bool


def trigger_event_ingest(
    *, principal: PartnerPrincipal, body: Any, idempotency_key: str | None
) -> IngestResult:
    now = timezone.now()
    idempotency_key = _idempotency_key(body, idempotency_key)
    trigger = _active_trigger(principal.partnership.id, body["trigger_name"])
    context = body.get("transaction_context", {})
    errors = schema_errors(trigger.validator, context, "transaction_context")
    if errors:
        raise validation_error(errors, "transaction_context does not match the trigger's schema")
    occurred_at, deliver_at = _times(body, now, principal.partnership.max_event_lateness_days)
    status = TriggerEvent.Status.SCHEDULED if deliver_at > now else TriggerEvent.Status.QUEUED
    row = {
        "event_id": uuid.uuid4(),
        "partnership_id": principal.partnership.id,
        "trigger_id": trigger.id,
        "context": orjson.dumps(context).decode(),
        "idempotency_key": idempotency_key,
        # Only a keyed request can be replayed, so only it needs its fingerprint.
        "request_hash": _request_hash(body) if idempotency_key is not None else "",
        "mode": principal.mode,
        "tags": orjson.dumps(body.get("tags", {})).decode(),
        "occurred_at": occurred_at,
        "received_at": now,
        "deliver_at": deliver_at,
        "status": status,
    }
    result = _store(row, body)
    if status == TriggerEvent.Status.QUEUED and not result.replayed:
        wake_workers()
    return result


def _idempotency_key(body: Any, header: str | None) -> str | None:
    if not isinstance(body, dict):
        raise validation_error([field_error("", "type", "The body must be a JSON object")])
    key = body.get("idempotency_key")
    errors = _body_errors(body) + idempotency_key_errors(header, key)
    errors += reserved_external_id_errors(body.get("external_user_id"))
    if errors:
        raise validation_error(errors)
    return header if header is not None else key


def _body_errors(body: dict) -> list[dict]:
    """The body schema's errors; those of its cross-field keywords and bounds in our words."""
    errors = []
    for error in schema_errors(_body_validator, body, ""):
        field, code = error["field"], error["code"]
        if field == "" and code == "any_of":
            message = "Send external_user_id or user_uuid"
            error = field_error("external_user_id", "required", message)
        elif field == "" and code == "not":
            error = field_error("deliver_at", "conflict", "Send delay or deliver_at, not both")
        elif field.startswith("delay.") and code == "maximum":
            error = field_error(field, "too_late", _MAX_DELAY_MESSAGE)
        elif field in ("occurred_at", "deliver_at") and code in ("format", "pattern"):
            error = field_error(field, "format", timestamps.MESSAGE)
        if error not in errors:  # a bad timestamp fails both its format and its pattern
            errors.append(error)
    return errors


def _active_trigger(partnership_id: uuid.UUID, name: str) -> TriggerRecord:
    trigger = trigger_record(partnership_id=partnership_id, name=name)
    if trigger is None:
        raise ApplicationError(
            404, ErrorCode.TRIGGER_DOES_NOT_EXIST, f"No trigger named {name!r} in this partnership"
        )
    if not trigger.is_active:
        raise ApplicationError(422, ErrorCode.TRIGGER_INACTIVE, f"The trigger {name!r} is archived")
    return trigger


def _times(body: dict, now: datetime, max_lateness_days: int | None) -> tuple[datetime, datetime]:
    """occurred_at and deliver_at of a body that passed INGEST_BODY_SCHEMA, within bounds."""
    occurred_at = now
    if "occurred_at" in body:
        occurred_at = _timestamp(body, "occurred_at")
        if occurred_at > now + timedelta(seconds=settings.EVENT_CLOCK_SKEW_SECONDS):
            raise validation_error(
                [field_error("occurred_at", "in_future", "occurred_at is in the future")]
            )
        if max_lateness_days is not None and occurred_at < now - timedelta(days=max_lateness_days):
            message = f"Events that occurred more than {max_lateness_days} days ago are refused"
            raise ApplicationError(
                422,
                ErrorCode.EVENT_TOO_LATE,
                message,
                errors=[field_error("occurred_at", ErrorCode.EVENT_TOO_LATE, message)],
            )
    deliver_at = now
    if "delay" in body:
        ((unit, amount),) = body["delay"].items()
        deliver_at = now + timedelta(seconds=amount * DELAY_UNITS[unit])
        field = f"delay.{unit}"
    elif "deliver_at" in body:
        deliver_at = max(now, _timestamp(body, "deliver_at"))
        field = "deliver_at"
    if deliver_at > now + timedelta(seconds=_MAX_DELAY_SECONDS):
        raise validation_error([field_error(field, "too_late", _MAX_DELAY_MESSAGE)])
    return occurred_at, deliver_at


def _timestamp(body: dict, field: str) -> datetime:
    value = timestamps.parse(body[field])
    if value is None:  # the schema takes only what parses; should they ever part, a 422
        raise validation_error([field_error(field, "format", timestamps.MESSAGE)])
    return value


def _request_hash(body: dict) -> str:
    canonical = {key: value for key, value in body.items() if key != "idempotency_key"}
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


# Idempotency keys are scoped to (partnership, mode), the unique constraint on TriggerEvent.
# ON CONFLICT names no arbiter, so the statements work in every schema of an upgrade: before
# triggers 0004 (keys unique per partnership), between 0004 and 0006 (both constraints) and
# after; any conflict (a key, or the primary key on a recovery retry) is looked up after.
#
# One statement, one round trip, atomic on its own. The event references the user it finds
# or a new id; that new user is inserted only when the event is. If another request created
# the user meanwhile, the (deferred) foreign key fails the whole statement and we retry: a
# refused or replayed request never leaves a user or an event behind.
#
# Erasure: an erased user's row holds the keyed hash of its old external id
# (partnerships.pseudonyms), found here by the same unique index; if it is there, nothing is
# stored (the caller answers 410 user_erased). FOR KEY SHARE (the lock the foreign key check
# takes anyway) orders this statement with an erasure: one waits for the other, so an event
# never lands on a user erased meanwhile with its context kept.
_INSERT_FOR_EXTERNAL_ID = """
WITH existing AS (
    SELECT id, erased_at FROM partnerships_enduser
     WHERE partnership_id = %(partnership_id)s
       AND external_user_id IN (%(external_user_id)s, %(erased_external_id)s)
       FOR KEY SHARE
), event AS (
    INSERT INTO triggers_triggerevent (
        id, partnership_id, trigger_id, end_user_id, context, idempotency_key, request_hash,
        mode, tags, occurred_at, received_at, deliver_at, status, attempts, error, decisions
    )
    SELECT
        %(event_id)s, %(partnership_id)s, %(trigger_id)s,
        COALESCE((SELECT id FROM existing WHERE erased_at IS NULL LIMIT 1), %(new_user_id)s),
        %(context)s::jsonb, %(idempotency_key)s, %(request_hash)s, %(mode)s, %(tags)s::jsonb,
        %(occurred_at)s, %(received_at)s, %(deliver_at)s, %(status)s, 0, '', '[]'
     WHERE NOT EXISTS (SELECT 1 FROM existing WHERE erased_at IS NOT NULL)
    ON CONFLICT DO NOTHING
    RETURNING id, end_user_id
), new_user AS (
    INSERT INTO partnerships_enduser (id, partnership_id, external_user_id, attributes, created_at)
    SELECT %(new_user_id)s, %(partnership_id)s, %(external_user_id)s, '{}'::jsonb, %(received_at)s
      FROM event WHERE event.end_user_id = %(new_user_id)s
    ON CONFLICT (partnership_id, external_user_id) DO NOTHING
)
SELECT id, end_user_id FROM event
"""

# A user known by id (user_uuid, or this process's memory of an external id): stored only if
# the user is there and not erased (locked as above).
_INSERT_FOR_USER = """
INSERT INTO triggers_triggerevent (
    id, partnership_id, trigger_id, end_user_id, context, idempotency_key, request_hash,
    mode, tags, occurred_at, received_at, deliver_at, status, attempts, error, decisions
)
SELECT
    %(event_id)s, %(partnership_id)s, %(trigger_id)s, u.id, %(context)s::jsonb,
    %(idempotency_key)s, %(request_hash)s, %(mode)s, %(tags)s::jsonb, %(occurred_at)s,
    %(received_at)s, %(deliver_at)s, %(status)s, 0, '', '[]'
  FROM partnerships_enduser u
 WHERE u.id = %(user_id)s AND u.erased_at IS NULL
   FOR KEY SHARE
ON CONFLICT DO NOTHING
RETURNING id, end_user_id
"""

# What an insert that stored nothing conflicted with: this request's own event (a lost insert
# that did commit, met by the recovery retry) or the event holding its key in its mode.
_SELECT_CONFLICT = """
SELECT id, request_hash, status, end_user_id,
       EXISTS (SELECT 1 FROM partnerships_enduser u
                WHERE u.id = end_user_id AND u.erased_at IS NOT NULL)
  FROM triggers_triggerevent
 WHERE id = %(event_id)s
    OR (partnership_id = %(partnership_id)s AND mode = %(mode)s
        AND idempotency_key = %(idempotency_key)s)
"""

_SELECT_USER = """
SELECT external_user_id, erased_at IS NOT NULL FROM partnerships_enduser
 WHERE partnership_id = %s AND id = %s
"""

_SELECT_ERASED = """
SELECT 1 FROM partnerships_enduser
 WHERE (partnership_id = %(partnership_id)s AND external_user_id = %(erased_external_id)s)
    OR (id = %(user_id)s AND erased_at IS NOT NULL)
"""


@contextmanager
def _prepared() -> Iterator[None]:
    """Statements run inside are prepared on this connection: planned once, not per request.

    Unprepared, planning the ingest statement cost PostgreSQL more than running it. Django
    keeps psycopg's preparation off for everything else (see DATABASES in settings). Off with
    ``DATABASE_PREPARE_INGEST=false`` (a transaction-mode pooler).
    """
    if not settings.DATABASE_PREPARE_INGEST:
        yield
        return
    raw = connection.connection
    threshold = raw.prepare_threshold
    raw.prepare_threshold = 0
    try:
        yield
    finally:
        raw.prepare_threshold = threshold


def _store(row: dict, body: dict) -> IngestResult:
    """Stores the event, surviving a database connection that died since the last request.

    Django would check a reused connection with a ``SELECT 1`` before each request's first
    query: a round trip of its own, as long as the insert. This path skips that check and
    recovers instead, once, on a fresh connection. Retrying cannot store the event twice: its
    id is chosen here, so if the lost insert did commit, the retry conflicts on the primary key
    and finds it (see _conflict).
    """
    if connection.in_atomic_block:  # a caller's transaction (tests): nothing to recover
        return _store_once(row, body)
    connection.health_check_done = True
    had_connection = connection.connection is not None
    try:
        return _store_once(row, body)
    except (OperationalError, InterfaceError):
        if not had_connection:
            raise  # connecting failed: the database is down, a 503 (not a second wait)
        if connection.is_usable():
            raise  # a live connection refused the statement (a timeout): a 503, not a retry
        connection.close()
    return _store_once(row, body)


def _store_once(row: dict, body: dict) -> IngestResult:
    with connection.cursor() as cursor, _prepared():
        user_id = _known_user(cursor, row, body) if "user_uuid" in body else None
        for _ in range(2):  # a second try if the event in the way was purged meanwhile
            if user_id is not None:
                try:
                    cursor.execute(_INSERT_FOR_USER, {**row, "user_id": user_id})
                except IntegrityError:
                    _refuse_if_gone(cursor, row)
                    raise
                inserted = cursor.fetchone()
            else:
                inserted = _insert_for_external_id(cursor, row, body["external_user_id"])
            if inserted is not None:
                return IngestResult(inserted[0], row["status"], inserted[1], replayed=False)
            result = _conflict(cursor, row)
            if result is not None:
                return result
            _refuse_if_erased(cursor, row, body, user_id)
    # Twice in the way and not in this mode: a key of the other mode, which only the
    # per-partnership constraint (until triggers 0006) holds against this one.
    raise ApplicationError(
        409,
        ErrorCode.IDEMPOTENCY_KEY_REUSED,
        "This Idempotency-Key was already used with a different request (in the other mode)",
    )


# The user ids behind external user ids this process has stored events for. A known user
# needs only the plain insert, which costs PostgreSQL about half the statement that also
# looks the user up or creates it. An entry goes stale if its user is erased: the plain insert
# then stores nothing and the entry is dropped; the caller finds the erased row by its hashed
# id and refuses the event.
_user_ids: dict[tuple[uuid.UUID, str], uuid.UUID] = {}
_USER_IDS_MAX = 20_000  # ~6 MB per process


def _insert_for_external_id(cursor, row: dict, external_user_id: str) -> tuple | None:
    key = (row["partnership_id"], external_user_id)
    # Inside a caller's transaction the deferred foreign key would fail only at its commit.
    user_id = None if connection.in_atomic_block else _user_ids.get(key)
    if user_id is not None:
        try:
            cursor.execute(_INSERT_FOR_USER, {**row, "user_id": user_id})
            inserted = cursor.fetchone()
        except IntegrityError:
            _refuse_if_gone(cursor, row)
            inserted = None
        if inserted is None:  # a replay, or the user erased: the caller finds out which
            _user_ids.pop(key, None)
        return inserted
    params = {**row, "external_user_id": external_user_id, **_erased_id(row, external_user_id)}
    for attempt in range(3):
        try:
            # Inside an outer transaction (tests) a failed try must not poison it.
            with transaction.atomic() if connection.in_atomic_block else nullcontext():
                cursor.execute(_INSERT_FOR_EXTERNAL_ID, {**params, "new_user_id": uuid.uuid4()})
            break
        except IntegrityError:  # the user was created concurrently: now it exists
            _refuse_if_gone(cursor, row)
            if attempt == 2:
                raise
    inserted = cursor.fetchone()
    if inserted is not None:
        if len(_user_ids) >= _USER_IDS_MAX:
            _user_ids.clear()
        _user_ids[key] = inserted[1]
    return inserted


def _known_user(cursor, row: dict, body: dict) -> uuid.UUID:
    user_id = uuid.UUID(body["user_uuid"])
    cursor.execute(_SELECT_USER, [row["partnership_id"], user_id])
    found = cursor.fetchone()
    if found is None:
        raise ApplicationError(404, ErrorCode.USER_DOES_NOT_EXIST, "No user with this user_uuid")
    if found[1]:
        raise user_erased()
    if "external_user_id" in body and body["external_user_id"] != found[0]:
        raise validation_error(
            [field_error("user_uuid", "mismatch", "user_uuid and external_user_id differ")]
        )
    return user_id


def _conflict(cursor, row: dict) -> IngestResult | None:
    """The answer from the event an insert conflicted with; None if it is not found."""
    cursor.execute(_SELECT_CONFLICT, row)
    found = cursor.fetchone()
    if found is None:
        return None
    event_id, request_hash, status, user_id, erased = found
    if event_id == row["event_id"]:  # the lost insert did commit: not a replay
        return IngestResult(event_id, row["status"], user_id, replayed=False)
    if request_hash != row["request_hash"]:  # another request (another user's, too)
        raise ApplicationError(
            409,
            ErrorCode.IDEMPOTENCY_KEY_REUSED,
            "This Idempotency-Key was already used with a different request",
        )
    if erased:  # a retry of an erased user's event: their data is not served again
        raise user_erased()
    return IngestResult(event_id, status, user_id, replayed=True)


_SELECT_GONE = """
SELECT NOT EXISTS (SELECT 1 FROM partnerships_partnership WHERE id = %(partnership_id)s),
       NOT EXISTS (SELECT 1 FROM triggers_trigger WHERE id = %(trigger_id)s)
"""


def _refuse_if_gone(cursor, row: dict) -> None:
    """After a foreign key refused the event at commit: was its partnership or trigger deleted
    meanwhile (Pilot, the management API, a configuration apply deletes a never-used one)?
    Then the answer is the 404 the request would get a moment later, not a 500."""
    cursor.execute(_SELECT_GONE, row)
    partnership_gone, trigger_gone = cursor.fetchone()
    if partnership_gone:
        raise ApplicationError(404, ErrorCode.PARTNERSHIP_DOES_NOT_EXIST)
    if trigger_gone:
        raise ApplicationError(
            404, ErrorCode.TRIGGER_DOES_NOT_EXIST, "No trigger by this name in this partnership"
        )


def _erased_id(row: dict, external_user_id: str) -> dict:
    erased = erased_external_id(
        partnership_id=row["partnership_id"], external_user_id=external_user_id
    )
    return {"erased_external_id": erased}


def _refuse_if_erased(cursor, row: dict, body: dict, user_id: uuid.UUID | None) -> None:
    """After an insert that stored nothing and met no event in the way: was it the user?"""
    erased = _erased_id(row, body["external_user_id"]) if user_id is None else {}
    cursor.execute(
        _SELECT_ERASED,
        {
            "partnership_id": row["partnership_id"],
            "user_id": user_id,
            "erased_external_id": "",
            **erased,
        },
    )
    if cursor.fetchone() is not None:
        raise user_erased()
