"""A trigger event sent by an app with a user token (issue 12).

The app's user writes the context, so the event is held tighter than a partner's: only
triggers the partnership marked client-sendable, and only those the token names; for the
token's user alone; at the time it arrives (``occurred_at``, ``delay``, ``deliver_at`` and
``user_uuid`` are refused: back-dated events would reopen period caps); and its
idempotency key is the user's own (stored as ``user:<user id>:<key>``), so one user can
neither replay nor block another's. Then it is stored as any event
(``trigger_event_ingest``).
"""

from typing import Any

from config.errors import (
    ApplicationError,
    ErrorCode,
    field_error,
    idempotency_key_errors,
    validation_error,
)
from partnerships.user_tokens import SCOPE_TRIGGER, UserPrincipal

from ..selectors import trigger_record
from .ingest import IngestResult, trigger_event_ingest

# Fields whose values would let a user choose when an event happened, or for whom.
REFUSED_FIELDS = ("occurred_at", "delay", "deliver_at", "user_uuid")
# The stored key adds "user:<uuid>:" (42 characters) to the app's key, within 255.
MAX_KEY_LENGTH = 200


def trigger_event_ingest_for_user(
    *, principal: UserPrincipal, body: Any, idempotency_key: str | None
) -> IngestResult:
    if not isinstance(body, dict):
        raise validation_error([field_error("", "type", "The body must be a JSON object")])
    errors = [
        field_error(name, "not_allowed", f"{name} cannot be sent with a user token")
        for name in REFUSED_FIELDS
        if name in body
    ]
    if not isinstance(body.get("external_user_id", ""), str):
        errors.append(field_error("external_user_id", "type", "Must be a string"))
    key = body.get("idempotency_key")
    errors += _body_key_errors(body) or idempotency_key_errors(idempotency_key, key)
    key = idempotency_key if idempotency_key is not None else key
    if isinstance(key, str) and len(key) > MAX_KEY_LENGTH:
        errors.append(
            field_error("Idempotency-Key", "max_length", f"1 to {MAX_KEY_LENGTH} characters")
        )
    if errors:
        raise validation_error(errors)
    if "external_user_id" in body:
        principal.require_user(body["external_user_id"])
    name = body.get("trigger_name")
    if isinstance(name, str):
        _sendable(principal, name)
    scoped = {**body, "external_user_id": principal.external_user_id}
    scoped.pop("idempotency_key", None)
    if isinstance(key, str) and key:
        key = f"user:{principal.end_user_id}:{key}"
    return trigger_event_ingest(principal=principal, body=scoped, idempotency_key=key)


def _body_key_errors(body: dict) -> list[dict]:
    """A body ``idempotency_key`` is a non-empty string, as with a partner key (null too)."""
    if "idempotency_key" not in body:
        return []
    key = body["idempotency_key"]
    if not isinstance(key, str):
        return [field_error("idempotency_key", "type", "Must be a string")]
    if not key:
        return [field_error("idempotency_key", "min_length", "1 to 255 characters")]
    return []


def _sendable(principal: UserPrincipal, name: str) -> None:
    """The trigger is client-sendable and the token names it (an unknown trigger is left to
    the ingest's own 404)."""
    trigger = trigger_record(partnership_id=principal.partnership.id, name=name)
    if trigger is None:
        return
    if not trigger.client_sendable:
        raise ApplicationError(
            403,
            ErrorCode.TRIGGER_NOT_CLIENT_SENDABLE,
            f"The trigger {name!r} cannot be sent with a user token",
        )
    principal.require_scope(f"{SCOPE_TRIGGER}{name}")
