"""Staff tokens: the management API's credentials (``/management/v1/``), never partner keys.

``staff_<8 chars>.<secret>``: the prefix is kept in clear (and cannot be read as a partner key,
whose prefixes are ``pk_live_`` / ``pk_test_``), only a SHA-256 of the whole token is stored,
the plaintext is shown once. A token has one of Pilot's roles and acts as the Pilot user who
created it: it may do what both the role and that user may (``staff_token_permissions``), in
the partnership it is scoped to, or in those its creator sees.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from . import roles
from .keys import PREFIX_ALPHABET
from .models import Partnership, StaffToken
from .selectors import partnerships_for_operator
from .services import audit_record

TOKEN_PREFIX = "staff_"  # noqa: S105 - a prefix, not a secret


def _hash(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def staff_token_split(plaintext: str) -> str | None:
    """The prefix of a well-formed staff token, or None."""
    prefix, dot, secret = plaintext.partition(".")
    if not dot or not secret or not prefix.startswith(TOKEN_PREFIX) or len(prefix) > 32:
        return None
    return prefix


def staff_token_matches(plaintext: str, hashed: str) -> bool:
    return hmac.compare_digest(_hash(plaintext), hashed)


def role_permission_names(*, role: str) -> frozenset[str]:
    """ "app_label.codename" of every permission of a Pilot role (``partnerships.roles``)."""
    found = roles.role_permissions(role=role).select_related("content_type")
    return frozenset(f"{p.content_type.app_label}.{p.codename}" for p in found)


def staff_token_permissions(*, token: StaffToken) -> frozenset[str]:
    """What a token may do: its role's permissions that its creator also holds (a token never
    does more than the person who made it; the tokens of a creator deactivated or without
    Pilot access any more, is_staff unticked, do nothing)."""
    user = token.created_by
    if not (user.is_active and user.is_staff):
        return frozenset()
    return frozenset(name for name in role_permission_names(role=token.role) if user.has_perm(name))


def staff_token_partnerships(*, token: StaffToken) -> QuerySet[Partnership]:
    """The partnerships a token sees: its own if scoped, and only among its creator's."""
    partnerships = partnerships_for_operator(user=token.created_by)
    if token.partnership_id is not None:
        partnerships = partnerships.filter(pk=token.partnership_id)
    return partnerships


@dataclass(frozen=True)
class IssuedStaffToken:
    token: StaffToken
    plaintext: str  # shown once, never stored


def staff_token_errors(*, creator, role: str, partnership: Partnership | None, expires_at) -> dict:
    errors = {}
    if role not in roles.ROLES:
        errors["role"] = f"One of: {', '.join(roles.ROLES)}."
    elif not creator.is_superuser and not all(
        creator.has_perm(name) for name in role_permission_names(role=role)
    ):
        errors["role"] = (
            f"You cannot give a token the role {role}: it may do things you may not "
            "(a token acts as you)."
        )
    if (
        partnership is not None
        and not partnerships_for_operator(user=creator).filter(pk=partnership.pk).exists()
    ):
        errors["partnership"] = "Not one of your partnerships."
    if expires_at is not None and expires_at <= timezone.now():
        errors["expires_at"] = "Must be in the future."
    return errors


@transaction.atomic
def staff_token_create(
    *,
    creator,
    name: str,
    role: str,
    partnership: Partnership | None = None,
    expires_at=None,
    expires_in_days: int | None = None,
) -> IssuedStaffToken:
    """Issues a token acting as ``creator``; raises ``ValidationError`` (per field) if the
    creator may not give it this role or partnership. Audited as ``stafftoken.create``."""
    if expires_in_days is not None:
        expires_at = timezone.now() + timedelta(days=expires_in_days)
    errors = staff_token_errors(
        creator=creator, role=role, partnership=partnership, expires_at=expires_at
    )
    if not name.strip():
        errors["name"] = "Name the token (what uses it)."
    if not (creator.is_active and creator.is_staff):
        errors["user"] = f"{creator} has no Pilot access (active, staff): its token would not work."
    if errors:
        raise ValidationError(errors)
    prefix = TOKEN_PREFIX + "".join(secrets.choice(PREFIX_ALPHABET) for _ in range(8))
    plaintext = f"{prefix}.{secrets.token_urlsafe(32)}"
    token = StaffToken.objects.create(
        name=name.strip(),
        role=role,
        partnership=partnership,
        prefix=prefix,
        hashed_token=_hash(plaintext),
        created_by=creator,
        expires_at=expires_at,
    )
    audit_record(
        actor=creator,
        action="stafftoken.create",
        target=token,
        partnership=partnership,
        changes={"role": role, "expires_at": expires_at.isoformat() if expires_at else None},
    )
    return IssuedStaffToken(token=token, plaintext=plaintext)


@transaction.atomic
def staff_token_revoke(*, token: StaffToken, actor) -> StaffToken:
    """Stops a token at once (idempotent). Audited as ``stafftoken.revoke``."""
    revoked = StaffToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    token.refresh_from_db(fields=["revoked_at"])
    if revoked:
        audit_record(
            actor=actor, action="stafftoken.revoke", target=token, partnership=token.partnership
        )
    return token


def staff_token_touch(*, token: StaffToken) -> None:
    """Records use, at most once a minute per token."""
    now = timezone.now()
    if token.last_used_at is None or token.last_used_at < now - timedelta(minutes=1):
        StaffToken.objects.filter(pk=token.pk).update(last_used_at=now)
