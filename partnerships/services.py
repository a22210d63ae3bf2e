import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError, RestrictedError
from django.utils import timezone

from config.errors import ApplicationError, ErrorCode, field_error, validation_error
from config.localcache import config_cache
from config.revisions import revision_bump, row_save

from . import keys
from .models import ApiKey, AuditEntry, EndUser, Partner, Partnership, PartnershipMember
from .pseudonyms import erased_external_id, reserved_external_id_errors, user_erased


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    plaintext: str  # shown once, never stored


def api_key_issue(*, api_key: ApiKey) -> IssuedKey:
    """Generates the secret of an unsaved key and saves it; the plaintext is returned once."""
    plaintext, api_key.prefix, api_key.hashed_key = keys.generate(api_key.mode)
    api_key.save()
    return IssuedKey(api_key=api_key, plaintext=plaintext)


def api_key_create(
    *,
    partnership: Partnership,
    mode: str = ApiKey.Mode.LIVE,
    name: str = "",
    expires_in_days: int | None = None,
) -> IssuedKey:
    expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
    return api_key_issue(
        api_key=ApiKey(partnership=partnership, name=name, mode=mode, expires_at=expires_at)
    )


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        config_cache.invalidate()
    return api_key


# What Pilot's key page edits (the rest is the key's identity, or written by its own action).
API_KEY_EDITABLE = ("name", "expires_at", "rate_limit_per_second")
ROTATED_EXPIRY = (
    "This key was rotated: it stops at the end of the overlap chosen then. To stop it sooner, "
    "revoke it."
)


@transaction.atomic
def api_key_update(*, api_key: ApiKey, changes: dict) -> ApiKey:
    """Writes ``changes`` (``API_KEY_EDITABLE`` fields: only those the operator changed) to the
    key, under its row lock, and nothing else: a revocation or rotation committed since the
    page was loaded stays. A rotated key's expiry is the end of its overlap: a change of it is
    refused (422 at ``expires_at``)."""
    locked = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if "expires_at" in changes and locked.replaced_by_id is not None:
        raise validation_error([field_error("expires_at", "rotated", ROTATED_EXPIRY)])
    for name, value in changes.items():
        if name not in API_KEY_EDITABLE:
            raise ValueError(f"{name} is not an editable field of an API key")
        setattr(locked, name, value)
    if changes:
        locked.save(update_fields=list(changes))  # post_save clears the key caches
    return locked


# How long a rotated key may keep working beside its replacement.
ROTATION_MAX_OVERLAP_HOURS = 168


@dataclass(frozen=True)
class RotatedKey:
    old: ApiKey  # works until old.expires_at, the end of the overlap
    new: IssuedKey


@transaction.atomic
def api_key_rotate(*, api_key: ApiKey, overlap_hours: int) -> RotatedKey:
    """Issues a key in ``api_key``'s place (same partnership, mode, name, rate limit and
    expiry: rotating replaces a secret, it never lengthens a key's life) and lets the old one
    work ``overlap_hours`` more (0: it stops now). Refused for a revoked, expired or already
    rotated key: rotate its replacement instead."""
    if not 0 <= overlap_hours <= ROTATION_MAX_OVERLAP_HOURS:
        message = f"The overlap is 0 to {ROTATION_MAX_OVERLAP_HOURS} hours"
        raise validation_error([field_error("overlap_hours", "out_of_range", message)], message)
    old = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if old.replaced_by_id is not None:
        message = f"This key was already rotated (to {old.replaced_by.prefix}): rotate that one"
        raise ApplicationError(409, ErrorCode.API_KEY_NOT_ROTATABLE, message)
    if not old.is_active:
        state = "revoked" if old.revoked_at else "expired"
        raise ApplicationError(409, ErrorCode.API_KEY_NOT_ROTATABLE, f"This key is {state}")
    new = api_key_issue(
        api_key=ApiKey(
            partnership_id=old.partnership_id,
            name=old.name,
            mode=old.mode,
            rate_limit_per_second=old.rate_limit_per_second,
            expires_at=old.expires_at,
        )
    )
    overlap_end = timezone.now() + timedelta(hours=overlap_hours)
    old.expires_at = min(old.expires_at or overlap_end, overlap_end)
    old.replaced_by = new.api_key
    old.save(update_fields=["expires_at", "replaced_by"])  # post_save clears the key caches
    return RotatedKey(old=old, new=new)


@transaction.atomic
def api_key_rotate_audited(*, api_key: ApiKey, overlap_hours: int, actor) -> RotatedKey:
    """``api_key_rotate``, audited as ``apikey.rotate`` in its transaction: Pilot's action,
    the management API and ``manage.py rotate_api_key`` (``actor`` None)."""
    rotated = api_key_rotate(api_key=api_key, overlap_hours=overlap_hours)
    changes = {"replaced_by": rotated.new.api_key.prefix, "expires_at": rotated.old.expires_at}
    _api_key_audit(actor, "apikey.rotate", rotated.old, changes)
    return rotated


@transaction.atomic
def partnership_create(
    *, name: str, partner_name: str | None = None, reward_unit: str = "Points"
) -> tuple[Partnership, IssuedKey]:
    partner, _ = Partner.objects.get_or_create(name=partner_name or name)
    partnership = Partnership.objects.create(partner=partner, name=name, reward_unit=reward_unit)
    return partnership, api_key_create(partnership=partnership)


_audit_via: ContextVar[str] = ContextVar("audit_via", default="")


@contextmanager
def audit_via(label: str) -> Iterator[None]:
    """Every audit entry recorded inside says how the actor acted (``changes["via"]``), e.g.
    through a staff token of theirs: the management API wraps each request in it."""
    reset = _audit_via.set(label)
    try:
        yield
    finally:
        _audit_via.reset(reset)


def audit_record(
    *,
    actor,
    action: str,
    target=None,
    partnership=None,
    mode: str = "",
    changes: dict | None = None,
    actor_name: str | None = None,
):
    """Records what an operator did (``AuditEntry``): ``action`` is a stable code such as
    ``"reward.reverse"``, ``target`` the object acted on, ``changes`` what changed
    (``{"field": [before, after]}``) or the action's details. In the caller's transaction.
    ``actor_name``: who acted when it is no Pilot user (e.g. ``"api key <prefix>"``)."""
    from .models import AuditEntry

    if via := _audit_via.get():
        changes = {**(changes or {}), "via": via}
    return AuditEntry.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        actor_name=actor_name or _actor_name(actor),
        action=action,
        partnership=partnership,
        mode=mode,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:200] if target is not None else "",
        changes=changes or {},
    )


def _actor_name(actor) -> str:
    return getattr(actor, "get_username", lambda: "system")() if actor else "system"


def end_user_refuse_new(*, partnership_id: uuid.UUID, external_user_id: str) -> None:
    """Refuses an external id no new user may take: a pseudonym (422), or one erased (410:
    a fresh user under it would start its per-user caps again)."""
    errors = reserved_external_id_errors(external_user_id)
    if errors:
        raise validation_error(errors)
    erased = erased_external_id(partnership_id=partnership_id, external_user_id=external_user_id)
    if EndUser.objects.filter(partnership_id=partnership_id, external_user_id=erased).exists():
        raise user_erased()


def end_user_get_or_create(
    *, partnership_id: uuid.UUID, external_user_id: str, for_update: bool = False
) -> tuple[EndUser, bool]:
    """The user with this external id, created if unknown (token issue, the user API, Pilot):
    never an erased one (410 ``user_erased``), nor one named by a pseudonym (422). Returns
    (user, created); ``for_update`` locks it (call it inside a transaction)."""
    errors = reserved_external_id_errors(external_user_id)
    if errors:
        raise validation_error(errors)
    users = EndUser.objects.filter(partnership_id=partnership_id, external_user_id=external_user_id)
    if for_update:
        users = users.select_for_update()
    user = users.first()
    created = user is None
    if created:
        end_user_refuse_new(partnership_id=partnership_id, external_user_id=external_user_id)
        try:
            with transaction.atomic():
                user = EndUser.objects.create(
                    partnership_id=partnership_id, external_user_id=external_user_id
                )
        except IntegrityError:  # created meanwhile (an event, another request): it exists now
            user, created = users.get(), False
    if user.erased_at is not None:
        raise user_erased()
    return user, created


ATTRIBUTES_CHANGED = (
    "Someone changed this user's attributes since you opened the page (the partner API, or "
    "Pilot). Your changes were not saved: reload the page to see theirs, then make yours again."
)


def end_user_attributes_stale(*, end_user: EndUser, loaded: dict) -> bool:
    """Whether the user's attributes are no longer those a form ``loaded``."""
    current = EndUser.objects.filter(pk=end_user.pk).values_list("attributes", flat=True)
    return current.first() != loaded


@transaction.atomic
def end_user_attributes_replace(*, end_user: EndUser, attributes: dict, loaded: dict) -> EndUser:
    """Pilot's write of a user's attributes (checked against the schema by its form): only if
    they are still those the page ``loaded``, under the user's row lock (the partner API's
    writes take it too), else 412 ``version_conflict``: users have no revision, their
    attributes are their state. Writes nothing else of the row."""
    locked = EndUser.objects.select_for_update().get(pk=end_user.pk)
    if locked.erased_at is not None:
        raise user_erased()
    if locked.attributes != loaded:
        raise ApplicationError(412, ErrorCode.VERSION_CONFLICT, ATTRIBUTES_CHANGED)
    locked.attributes = attributes
    locked.save(update_fields=["attributes"])
    return locked


class EndUserBlockError(Exception):
    """Blocking a blocked user, or unblocking one who is not: the operator is told why."""


@transaction.atomic
def end_user_block(*, end_user: EndUser, operator, reason: str) -> EndUser:
    """Blocks a user: from the next evaluation on, every campaign decides ``user_blocked``
    for their events (rewards already issued stand). Audited as ``enduser.block``."""
    reason = reason.strip()
    if not reason:
        raise EndUserBlockError("Give a reason for blocking this user.")
    locked = EndUser.objects.select_for_update().get(pk=end_user.pk)
    if locked.erased_at is not None:
        raise EndUserBlockError(f"{locked} is erased: there is no one left to block.")
    if locked.blocked_at is not None:
        raise EndUserBlockError(f"{locked} is already blocked.")
    locked.blocked_at, locked.blocked_by, locked.blocked_reason = timezone.now(), operator, reason
    locked.save(update_fields=["blocked_at", "blocked_by", "blocked_reason"])
    audit_record(
        actor=operator,
        action="enduser.block",
        target=locked,
        partnership=locked.partnership,
        changes={"blocked": [False, True], "reason": reason},
    )
    return locked


@transaction.atomic
def end_user_unblock(*, end_user: EndUser, operator) -> EndUser:
    """Lets a blocked user earn again (events evaluated while blocked stay as decided).
    Audited as ``enduser.unblock``, with the reason the block had."""
    locked = EndUser.objects.select_for_update().get(pk=end_user.pk)
    if locked.blocked_at is None:
        raise EndUserBlockError(f"{locked} is not blocked.")
    reason = locked.blocked_reason
    locked.blocked_at, locked.blocked_by, locked.blocked_reason = None, None, ""
    locked.save(update_fields=["blocked_at", "blocked_by", "blocked_reason"])
    audit_record(
        actor=operator,
        action="enduser.unblock",
        target=locked,
        partnership=locked.partnership,
        changes={"blocked": [True, False], "reason": reason},
    )
    return locked


def model_changes(before: dict, instance, fields) -> dict:
    """{field: [before, after]} (as text) of ``fields`` that differ on ``instance``."""
    from .pilot_audit import audit_text

    def shown(value):
        return value if isinstance(value, dict) else audit_text(value)  # a schema: as JSON

    return {
        name: [shown(before.get(name)), shown(getattr(instance, name))]
        for name in fields
        if before.get(name) != getattr(instance, name)
    }


PARTNERSHIP_FIELDS = (
    "name",
    "status",
    "reward_unit",
    "reward_decimal_places",
    "time_zone",
    "max_event_lateness_days",
    "allowed_cidrs",
    "allowed_origins",
    "user_attribute_schema",
)


@transaction.atomic
def partnership_save(
    *, partnership: Partnership, actor, expected_revision: int | None = None
) -> Partnership:
    """Validates and writes a partnership (Pilot's form and the management API): a saved one
    only if it is still at ``expected_revision`` (None: unchecked), which is bumped (412
    ``version_conflict`` otherwise). Raises ``ValidationError`` per field. Audited."""
    partnership.full_clean()
    adding = partnership._state.adding
    before = {}
    if not adding:
        before = Partnership.objects.filter(pk=partnership.pk).values(*PARTNERSHIP_FIELDS).first()
        revision_bump(instance=partnership, expected=expected_revision)
    row_save(instance=partnership)
    if adding and actor is not None and not actor.is_superuser:
        # Whoever creates a partnership sees it (Pilot and tokens show members their own).
        PartnershipMember.objects.get_or_create(user=actor, partnership=partnership)
    audit_record(
        actor=actor,
        action="partnership.create" if adding else "partnership.change",
        target=partnership,
        partnership=partnership,
        changes=model_changes(before or {}, partnership, PARTNERSHIP_FIELDS),
    )
    return partnership


# What a partnership owns outright, by model label: removed with it when nothing else refers
# to it (the report's closed-day bookkeeping is written for every partnership, used or not).
# Every other row pointing at a partnership, hidden relations included, keeps it: fail closed.
_OWN_ROWS = frozenset(
    {
        "partnerships.apikey",
        "partnerships.partnershipmember",
        "partnerships.stafftoken",
        "rewards.closedday",
    }
)


@transaction.atomic
def partnership_remove(*, partnership: Partnership, actor, expected_revision: int | None) -> bool:
    """ "Deletes" a partnership: really, if nothing refers to it but its own keys, members, staff
    tokens and closed-day bookkeeping (a partnership set up and never used); else it is
    suspended (its keys and user tokens stop; other processes within
    ``CONFIG_CACHE_CHECK_SECONDS``) and every trigger, campaign, user, endpoint, event, reward
    and report stays whole. Any app's rows count without this app knowing them: every model
    with a foreign key to it (hidden reverse relations too) except ``_OWN_ROWS`` and the audit
    log. True if deleted. Audited as ``partnership.delete`` (naming the keys and staff tokens it
    removed) or ``partnership.suspend``; an already suspended one is 409 ``action_refused``."""
    locked = Partnership.objects.select_for_update().get(pk=partnership.pk)
    referenced = any(
        field.related_model._base_manager.filter(**{field.field.name: locked}).exists()
        for field in Partnership._meta.get_fields(include_hidden=True)
        if field.auto_created
        and not field.concrete
        and field.related_model._meta.label_lower not in _OWN_ROWS
        and field.related_model is not AuditEntry
    )
    if referenced and locked.status == Partnership.Status.SUSPENDED:
        raise ApplicationError(409, ErrorCode.ACTION_REFUSED, "It is suspended already")
    revision_bump(instance=partnership, expected=expected_revision)
    if not referenced:
        removed = {
            "api_keys": sorted(locked.api_keys.values_list("prefix", flat=True)),
            "staff_tokens": sorted(locked.staff_tokens.values_list("prefix", flat=True)),
        }
        try:
            with transaction.atomic():  # the entry goes with the delete if it is refused
                audit_record(
                    actor=actor,
                    action="partnership.delete",
                    target=locked,
                    changes={"partnership_id": str(locked.pk), **removed},
                )
                locked.delete()
        except (ProtectedError, RestrictedError):  # a row this check did not foresee
            pass
        else:
            config_cache.invalidate()
            return True
    before = locked.status
    locked.status = partnership.status = Partnership.Status.SUSPENDED
    locked.revision = partnership.revision
    locked.save(update_fields=["status", "revision", "updated_at"])
    config_cache.invalidate()
    audit_record(
        actor=actor,
        action="partnership.suspend",
        target=locked,
        partnership=locked,
        changes={"status": [before, locked.status]},
    )
    return False


@transaction.atomic
def api_key_create_audited(*, api_key: ApiKey, actor) -> IssuedKey:
    """A new key (unsaved ``api_key``: partnership, name, mode, expiry), validated as Pilot's
    form validates it (``ValidationError`` per field), issued and audited as
    ``apikey.create``; the plaintext is returned once."""
    api_key.full_clean(exclude=["prefix", "hashed_key"])
    issued = api_key_issue(api_key=api_key)
    changes = {"name": api_key.name, "expires_at": api_key.expires_at}
    _api_key_audit(actor, "apikey.create", api_key, changes)
    return issued


@dataclass(frozen=True)
class KeyRevocation:
    key: ApiKey  # as it now is
    revoked: bool  # False: it was revoked already, nothing changed and nothing was audited


@transaction.atomic
def api_key_revoke_audited(*, api_key: ApiKey, actor) -> KeyRevocation:
    """Revokes a key: Pilot's action, the management API and ``manage.py revoke_api_key``
    (``actor`` None). Under the key's row lock, audited as ``apikey.revoke`` in the same
    transaction; a key revoked already, by anyone, keeps its time and is not audited again."""
    locked = ApiKey.objects.select_related("partnership").select_for_update(of=("self",))
    locked = locked.get(pk=api_key.pk)
    if locked.revoked_at is not None:
        return KeyRevocation(locked, revoked=False)
    api_key_revoke(api_key=locked)
    _api_key_audit(actor, "apikey.revoke", locked)
    return KeyRevocation(locked, revoked=True)


def _api_key_audit(actor, action: str, api_key: ApiKey, changes: dict | None = None) -> None:
    """A key's audit entry; its moments (``expires_at``) written in ISO 8601."""
    changes = {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name, value in (changes or {}).items()
    }
    audit_record(
        actor=actor,
        action=action,
        target=api_key,
        partnership=api_key.partnership,
        mode=api_key.mode,
        changes=changes,
    )
