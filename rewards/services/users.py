"""End users through the partner API and Pilot: their attributes, and their erasure.

Users are shared by both modes (an event of either mode creates the same row), and live
rules read their attributes: so only a live key changes a user (attributes, erasure); a test
key reads them (403 ``test_key_read_only`` otherwise). See docs/decisions.md.
"""

import uuid
from typing import Any

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone

from config.errors import ApplicationError, ErrorCode, field_error, validation_error
from config.localcache import config_cache
from partnerships.auth import PartnerPrincipal
from partnerships.models import ApiKey, AuditEntry, EndUser, Partnership, UserToken
from partnerships.pseudonyms import erased_external_id, reserved_external_id_errors, user_erased
from partnerships.services import audit_record, end_user_get_or_create, end_user_refuse_new
from triggers.models import TriggerEvent
from triggers.schemas import compile_schema, schema_errors

from ..models import Reversal

# The attributes body: bounded so that a user row stays small (rules read it on every event).
ATTRIBUTES_SCHEMA = {
    "type": "object",
    "maxProperties": 100,
    "propertyNames": {"minLength": 1, "maxLength": 64},
}
_attributes_validator = compile_schema(ATTRIBUTES_SCHEMA)
# How deep attributes may nest (the attributes object is level 1): deeper values would break
# the JSON encoder that stores them (a RecursionError), and no rule reads that deep.
MAX_ATTRIBUTES_DEPTH = 32


def end_user_find(*, partnership_id: uuid.UUID, external_user_id: str) -> EndUser | None:
    """The user with this external id; 410 ``user_erased`` if it was erased, 422 for a
    pseudonym (``erased:...``)."""
    errors = reserved_external_id_errors(external_user_id)
    if errors:
        raise validation_error(errors)
    user = EndUser.objects.filter(
        partnership_id=partnership_id, external_user_id=external_user_id
    ).first()
    if user is None:
        end_user_refuse_new(partnership_id=partnership_id, external_user_id=external_user_id)
    elif user.erased_at is not None:
        raise user_erased()
    return user


def _writable(principal: PartnerPrincipal) -> None:
    if principal.mode != ApiKey.Mode.LIVE:
        raise ApplicationError(
            403,
            ErrorCode.TEST_KEY_READ_ONLY,
            "A test key cannot change users: they are shared with live mode, whose rules read "
            "their attributes. Use a live key.",
        )


def _validator(partnership_id: uuid.UUID):
    """The partnership's user-attribute schema, compiled (cached; saving the partnership
    invalidates it)."""

    def load():
        schema = Partnership.objects.values_list("user_attribute_schema", flat=True)
        return compile_schema(schema.get(pk=partnership_id) or {"type": "object"})

    return config_cache.get(("user-schema", partnership_id), load)


def end_user_attributes_set(
    *,
    principal: PartnerPrincipal,
    external_user_id: str,
    attributes: Any,
    merge: bool,
) -> tuple[EndUser, bool]:
    """Replaces (``merge=False``, PUT) or merges (PATCH: a null removes the key) a user's
    attributes, creating the user if unknown. Returns (user, created). The result must match
    the partnership's user-attribute schema (422 per field); nothing is written otherwise."""
    _writable(principal)
    errors = _depth_errors(attributes) or schema_errors(
        _attributes_validator, attributes, "attributes"
    )
    if errors:
        raise validation_error(errors)
    return _attributes_write(principal.partnership.id, external_user_id, attributes, merge)


def _attributes_write(
    partnership_id: uuid.UUID, external_user_id: str, attributes: dict, merge: bool
) -> tuple[EndUser, bool]:
    with transaction.atomic():
        user, created = end_user_get_or_create(
            partnership_id=partnership_id, external_user_id=external_user_id, for_update=True
        )
        new = {**user.attributes, **attributes} if merge else dict(attributes)
        new = {key: value for key, value in new.items() if value is not None}
        errors = schema_errors(_validator(partnership_id), new, "attributes")
        if errors:  # a user created above is rolled back with the transaction
            raise validation_error(errors, "attributes do not match the user-attribute schema")
        user.attributes = new
        user.save(update_fields=["attributes"])
    return user, created


def _depth_errors(attributes: Any) -> list[dict]:
    """Counted without recursion: the value may be nested past Python's own limit."""
    stack = [(attributes, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_ATTRIBUTES_DEPTH:
            message = f"Attributes nest at most {MAX_ATTRIBUTES_DEPTH} levels deep"
            return [field_error("attributes", "max_depth", message)]
        if isinstance(value, dict):
            stack.extend((child, depth + 1) for child in value.values())
        elif isinstance(value, list):
            stack.extend((child, depth + 1) for child in value)
    return []


class EndUserEraseError(Exception):
    """Erasing a user already erased (Pilot says why)."""


DEADLOCK = "40P01"
# What is left of a text that may hold the user's personal data (an error, a reason).
SCRUBBED = "[erased]"


def end_user_erase(
    *, end_user: EndUser, actor=None, via: str, actor_name: str | None = None
) -> EndUser:
    """Erases a user (GDPR-style): the row stays (rewards, reversals, events and counters keep
    their foreign keys, so reports and budgets stay exact), but its external id becomes a keyed
    hash of it, its attributes and block reason go, its tokens are revoked, and its events'
    contexts, tags, errors and idempotency keys are cleared (those not yet evaluated are
    cancelled), as are its reversals' reasons. Audited as ``enduser.erase``, without the
    external id; earlier audit entries about the user (and its test events) name it by the
    hash from now on, without the reasons they gave. ``via``: "api", "pilot" or "command";
    ``actor_name``: who acted when no Pilot user did (the partner API's key).

    Retried once if PostgreSQL breaks a deadlock by ending it (see ``_erase``); erased
    meanwhile by another: ``EndUserEraseError``."""
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                return _erase(end_user, actor, via, actor_name)
        except IntegrityError as exc:  # the pseudonym is taken: the id was erased before
            raise EndUserEraseError(f"{end_user} is already erased.") from exc
        except OperationalError as exc:
            sqlstate = getattr(exc.__cause__, "sqlstate", None)
            if sqlstate != DEADLOCK or attempt == 2 or transaction.get_connection().in_atomic_block:
                raise
    raise AssertionError("unreachable")


def _erase(end_user: EndUser, actor, via: str, actor_name: str | None = None) -> EndUser:
    """The lock order (rewards/locks.py): the user's event rows first, as a worker's batch
    takes them, then the user row. A worker evaluating one of these events holds it and needs
    only a KEY SHARE on the user (its rewards' foreign keys): locking the user first would wait
    on the worker while the worker waits on us. An ingest storing an event for this user holds
    the user row FOR KEY SHARE (triggers/services/ingest.py): the user lock waits for it, and
    any later one finds the user erased. An event stored between the two locks and claimed by
    a worker at once can still close a cycle: PostgreSQL ends one side (40P01), and the
    erasure is tried again."""
    events = TriggerEvent.objects.filter(end_user_id=end_user.pk)
    list(events.select_for_update(of=("self",)).order_by("pk").values_list("pk", flat=True))
    locked = EndUser.objects.select_for_update().get(pk=end_user.pk)
    if locked.erased_at is not None:
        raise EndUserEraseError(f"{locked} is already erased.")
    pseudonym = erased_external_id(
        partnership_id=locked.partnership_id, external_user_id=locked.external_user_id
    )
    now = timezone.now()
    locked.external_user_id = pseudonym
    locked.attributes = {}
    locked.blocked_reason = ""
    locked.erased_at = now
    locked.save(update_fields=["external_user_id", "attributes", "blocked_reason", "erased_at"])
    # Tokens locked in id order, as a partner's revoke-all locks them (one order, no cycle).
    tokens = UserToken.objects.filter(end_user=locked, revoked_at__isnull=True)
    list(tokens.select_for_update(of=("self",)).order_by("pk").values_list("pk", flat=True))
    tokens.update(revoked_at=now)
    cancelled = events.filter(
        status__in=[TriggerEvent.Status.SCHEDULED, TriggerEvent.Status.QUEUED]
    ).update(status=TriggerEvent.Status.CANCELLED, context={}, tags={})
    # The error of a failed event may quote the context; a retried event is refused by its
    # user (410), so its idempotency key, which may name the user, is not needed to refuse it.
    cleared = events.update(context={}, tags={}, idempotency_key=None, request_hash="")
    events.exclude(error="").update(error=SCRUBBED)
    Reversal.objects.filter(trigger_event__end_user=locked).exclude(reason="").update(
        reason=SCRUBBED
    )
    _audit_scrub(locked, pseudonym)
    audit_record(
        actor=actor,
        actor_name=actor_name,
        action="enduser.erase",
        target=locked,
        partnership=locked.partnership,
        changes={"via": via, "events_cleared": cleared, "events_cancelled": cancelled},
    )
    return locked


def _audit_scrub(user: EndUser, pseudonym: str) -> None:
    """Audit entries about the user name it by its pseudonym, without the reasons given for
    blocking it; its test events' entries, without the external id they were sent for."""
    about_user = AuditEntry.objects.filter(
        target_type=EndUser._meta.label_lower, target_id=str(user.pk)
    )
    about_user.update(target_repr=pseudonym[:200])
    for entry in about_user.filter(changes__has_key="reason"):
        entry.changes = {**entry.changes, "reason": SCRUBBED}
        entry.save(update_fields=["changes"])
    event_ids = TriggerEvent.objects.filter(end_user=user).values_list("pk", flat=True)
    sent = AuditEntry.objects.filter(
        target_type=TriggerEvent._meta.label_lower,
        target_id__in=[str(pk) for pk in event_ids],
        changes__has_key="external_user_id",
    )
    for entry in sent:
        entry.changes = {**entry.changes, "external_user_id": pseudonym}
        entry.save(update_fields=["changes"])
    LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(EndUser), object_id=str(user.pk)
    ).update(object_repr=pseudonym[:200])


def end_user_erase_by_key(*, principal: PartnerPrincipal, external_user_id: str) -> EndUser:
    """The partner API's erasure: a live key, a user of its partnership (404, or 410 if
    erased already)."""
    _writable(principal)
    user = end_user_find(partnership_id=principal.partnership.id, external_user_id=external_user_id)
    if user is None:
        raise ApplicationError(404, ErrorCode.USER_DOES_NOT_EXIST, "No user with this id")
    try:
        return end_user_erase(
            end_user=user, via="api", actor_name=f"api key {principal.key.prefix}"
        )
    except EndUserEraseError as exc:  # erased by someone else meanwhile
        raise user_erased() from exc


def attribute_errors_for_pilot(*, schema: dict, attributes: Any) -> list[dict]:
    """The problems of attributes typed in Pilot, as the API reports them."""
    if not isinstance(attributes, dict):
        return [field_error("attributes", "type", "A JSON object")]
    return _depth_errors(attributes) or schema_errors(
        compile_schema(schema), attributes, "attributes"
    )
