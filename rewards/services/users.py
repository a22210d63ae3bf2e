"""End users through the partner API and Pilot: their attributes, and their erasure.

Users are shared by both modes (an event of either mode creates the same row), and live
rules read their attributes: so only a live key changes a user (attributes, erasure); a test
key reads them (403 ``test_key_read_only`` otherwise). See docs/decisions.md.
"""

import uuid
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from config.errors import ApplicationError, ErrorCode, field_error, validation_error
from config.localcache import config_cache
from partnerships.auth import PartnerPrincipal
from partnerships.models import ApiKey, AuditEntry, EndUser, Partnership
from partnerships.pseudonyms import erased_external_id
from partnerships.services import audit_record
from triggers.models import TriggerEvent
from triggers.schemas import compile_schema, schema_errors
from triggers.services.ingest import user_erased

# The attributes body: bounded so that a user row stays small (rules read it on every event).
ATTRIBUTES_SCHEMA = {
    "type": "object",
    "maxProperties": 100,
    "propertyNames": {"minLength": 1, "maxLength": 64},
}
_attributes_validator = compile_schema(ATTRIBUTES_SCHEMA)


def end_user_find(*, partnership_id: uuid.UUID, external_user_id: str) -> EndUser | None:
    """The user with this external id; 410 ``user_erased`` if it was erased."""
    user = EndUser.objects.filter(
        partnership_id=partnership_id, external_user_id=external_user_id
    ).first()
    if user is None and _erased_row(partnership_id, external_user_id).exists():
        raise user_erased()
    return user


def _erased_row(partnership_id: uuid.UUID, external_user_id: str):
    erased = erased_external_id(partnership_id=partnership_id, external_user_id=external_user_id)
    return EndUser.objects.filter(partnership_id=partnership_id, external_user_id=erased)


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
    errors = schema_errors(_attributes_validator, attributes, "attributes")
    if errors:
        raise validation_error(errors)
    try:
        return _attributes_write(principal.partnership.id, external_user_id, attributes, merge)
    except IntegrityError:  # an event created the user meanwhile: now it exists
        return _attributes_write(principal.partnership.id, external_user_id, attributes, merge)


def _attributes_write(
    partnership_id: uuid.UUID, external_user_id: str, attributes: dict, merge: bool
) -> tuple[EndUser, bool]:
    with transaction.atomic():
        user = (
            EndUser.objects.select_for_update()
            .filter(partnership_id=partnership_id, external_user_id=external_user_id)
            .first()
        )
        created = user is None
        if created:
            if _erased_row(partnership_id, external_user_id).exists():
                raise user_erased()
            user = EndUser(partnership_id=partnership_id, external_user_id=external_user_id)
        new = {**user.attributes, **attributes} if merge else dict(attributes)
        new = {key: value for key, value in new.items() if value is not None}
        errors = schema_errors(_validator(partnership_id), new, "attributes")
        if errors:
            raise validation_error(errors, "attributes do not match the user-attribute schema")
        user.attributes = new
        user.save()
    return user, created


class EndUserEraseError(Exception):
    """Erasing a user already erased (Pilot says why)."""


@transaction.atomic
def end_user_erase(*, end_user: EndUser, actor=None, via: str) -> EndUser:
    """Erases a user (GDPR-style): the row stays (rewards, reversals, events and counters keep
    their foreign keys, so reports and budgets stay exact), but its external id becomes a keyed
    hash of it, its attributes and block reason go, and its events' contexts and tags are
    cleared (those not yet evaluated are cancelled). Audited as ``enduser.erase``, without the
    external id; earlier audit entries about the user name it by the hash from now on.

    The user row is locked first: an ingest storing an event for this user holds the same row
    (FOR KEY SHARE, triggers/services/ingest.py), so one waits for the other and no event
    lands on the erased user with its context kept. ``via``: "api", "pilot" or "command"."""
    locked = EndUser.objects.select_for_update().get(pk=end_user.pk)
    if locked.erased_at is not None:
        raise EndUserEraseError(f"{locked} is already erased.")
    pseudonym = erased_external_id(
        partnership_id=locked.partnership_id, external_user_id=locked.external_user_id
    )
    locked.external_user_id = pseudonym
    locked.attributes = {}
    locked.blocked_reason = ""
    locked.erased_at = timezone.now()
    locked.save(update_fields=["external_user_id", "attributes", "blocked_reason", "erased_at"])
    events = TriggerEvent.objects.filter(end_user=locked)
    cancelled = events.filter(
        status__in=[TriggerEvent.Status.SCHEDULED, TriggerEvent.Status.QUEUED]
    ).update(status=TriggerEvent.Status.CANCELLED, context={}, tags={})
    cleared = events.update(context={}, tags={})
    AuditEntry.objects.filter(
        target_type=EndUser._meta.label_lower, target_id=str(locked.pk)
    ).update(target_repr=pseudonym[:200])
    audit_record(
        actor=actor,
        action="enduser.erase",
        target=locked,
        partnership=locked.partnership,
        changes={"via": via, "events_cleared": cleared, "events_cancelled": cancelled},
    )
    return locked


def end_user_erase_by_key(*, principal: PartnerPrincipal, external_user_id: str) -> EndUser:
    """The partner API's erasure: a live key, a user of its partnership (404, or 410 if
    erased already)."""
    _writable(principal)
    user = end_user_find(partnership_id=principal.partnership.id, external_user_id=external_user_id)
    if user is None:
        raise ApplicationError(404, ErrorCode.USER_DOES_NOT_EXIST, "No user with this id")
    try:
        return end_user_erase(end_user=user, via="api")
    except EndUserEraseError as exc:  # erased by someone else meanwhile
        raise user_erased() from exc


def attribute_errors_for_pilot(*, schema: dict, attributes: Any) -> list[dict]:
    """The problems of attributes typed in Pilot, as the API reports them."""
    if not isinstance(attributes, dict):
        return [field_error("attributes", "type", "A JSON object")]
    return schema_errors(compile_schema(schema), attributes, "attributes")
