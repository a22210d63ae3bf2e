"""Short-lived user tokens: what a partner's backend gives its app so the app can call for one
user (``Authorization: Bearer <token>``) without holding the partner key.

A token is a JWT (PyJWT, HS256 with ``USER_TOKEN_SECRET``) naming a ``UserToken`` row; the row
is read on every request, so revoking the token, or its key, holds from the next request. A
token carries its key's mode and ends no later than its key (a rotation's overlap included).

Refusals, in the order they are checked: malformed, badly signed or unknown token -> 400
``invalid_token`` (as a bad key); partnership unknown -> 404; token of another partnership ->
401 ``unauthorized_request``; expired (itself or its key) -> 401 ``token_expired``; revoked
(itself or its key), or its user erased -> 401 ``token_revoked``; suspended partnership ->
403; then the view's own: 403 ``token_wrong_user``, ``token_scope_not_granted``,
``trigger_not_client_sendable``. The partnership's IP allow-list is for its backends and does
not apply: apps run anywhere.
"""

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from config.errors import ApplicationError, ErrorCode, field_error, validation_error

from .auth import HEADER, PartnerKeyAuthentication, PartnerPrincipal, _existing_partnership
from .models import ApiKey, UserToken
from .ratelimit import rate_limit_check
from .selectors import PartnershipRecord
from .services import audit_record, end_user_get_or_create

ALGORITHM = "HS256"
AUDIENCE = "user"
ISSUER = "campaign-rewards"
BEARER = "Bearer "
SCOPE_READ = UserToken.SCOPE_READ
SCOPE_TRIGGER = UserToken.SCOPE_TRIGGER


def _secret() -> bytes:
    configured = settings.USER_TOKEN_SECRET
    if configured:
        return configured.encode()
    # A key of its own, derived from SECRET_KEY: a token is no other signature's valid input.
    return hmac.new(settings.SECRET_KEY.encode(), b"user-tokens", hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class UserPrincipal:
    """Who is calling: one user of a partnership, through a token one of its keys issued."""

    partnership: PartnershipRecord
    token_id: uuid.UUID
    end_user_id: uuid.UUID
    external_user_id: str
    mode: str
    scopes: frozenset[str]

    @property
    def is_authenticated(self) -> bool:
        return True

    def require_user(self, external_user_id: str) -> None:
        if external_user_id != self.external_user_id:
            raise ApplicationError(
                403, ErrorCode.TOKEN_WRONG_USER, "This token is for another user"
            )

    def require_scope(self, scope: str) -> None:
        if scope not in self.scopes:
            raise ApplicationError(
                403,
                ErrorCode.TOKEN_SCOPE_NOT_GRANTED,
                f"This token was not granted the scope {scope!r}",
            )


# --- Issuing and revoking -----------------------------------------------------------------


@dataclass(frozen=True)
class IssuedUserToken:
    token: UserToken
    jwt: str  # shown once, never stored


def user_token_issue(
    *, principal: PartnerPrincipal, external_user_id: str, scopes: list[str], lifetime_minutes: int
) -> IssuedUserToken:
    """A token for one user (created if the partnership has not seen them yet; never an erased
    one: 410 ``user_erased``), with scopes
    the caller has checked (``trigger:<name>`` for client-sendable triggers only), ending
    after ``lifetime_minutes`` or with its key, whichever is first."""
    maximum = settings.USER_TOKEN_MAX_LIFETIME_MINUTES
    if not 1 <= lifetime_minutes <= maximum:
        message = f"The lifetime is 1 to {maximum} minutes"
        raise validation_error([field_error("lifetime_minutes", "out_of_range", message)])
    key = principal.key
    now = timezone.now()
    expires_at = now + timedelta(minutes=lifetime_minutes)
    if key.expires_at is not None:
        expires_at = min(expires_at, key.expires_at)
    with transaction.atomic():
        # Locked: an erasure under way is waited for, and its user then found erased (410).
        user, _ = end_user_get_or_create(
            partnership_id=principal.partnership.id,
            external_user_id=external_user_id,
            for_update=True,
        )
        token = UserToken.objects.create(
            partnership_id=principal.partnership.id,
            api_key_id=key.id,
            end_user=user,
            mode=principal.mode,
            scopes=sorted(set(scopes)),
            created_at=now,
            expires_at=expires_at,
        )
    return IssuedUserToken(token=token, jwt=_encode(token, external_user_id))


def _encode(token: UserToken, external_user_id: str) -> str:
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "jti": str(token.id),
        "pid": str(token.partnership_id),
        "sub": external_user_id,
        "mode": token.mode,
        "scope": " ".join(token.scopes),
        "iat": int(token.created_at.timestamp()),
        "exp": int(token.expires_at.timestamp()),
    }
    return jwt.encode(claims, _secret(), algorithm=ALGORITHM)


def _user_tokens(principal: PartnerPrincipal, external_user_id: str):
    return UserToken.objects.filter(
        partnership_id=principal.partnership.id,
        mode=principal.mode,
        end_user__external_user_id=external_user_id,
    )


AUDIT_REVOKE = "usertoken.revoke"


@dataclass(frozen=True)
class TokenRevocation:
    token: UserToken
    revoked: bool  # False: it was revoked already, nothing changed and nothing was audited


def user_token_revoke_as(*, token_id: uuid.UUID, actor) -> TokenRevocation:
    """The one way a token is revoked, from Pilot (``actor``: the operator) and the partner
    API (``actor``: its ``PartnerPrincipal``, named by its key): under the token's row lock,
    audited as ``usertoken.revoke`` in the same transaction. Revoking a revoked token changes
    nothing and records nothing (``revoked`` False), whoever revoked it first."""
    with transaction.atomic():
        rows = UserToken.objects.select_related("partnership", "end_user")
        token = rows.select_for_update(of=("self",)).get(pk=token_id)
        return TokenRevocation(token=token, revoked=_revoke_locked(token, actor))


def _revoke_locked(token: UserToken, actor) -> bool:
    """Must be called in a transaction holding ``token``'s row lock (SELECT FOR UPDATE)."""
    if token.revoked_at is not None:
        return False
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    by_key = isinstance(actor, PartnerPrincipal)
    audit_record(
        actor=None if by_key else actor,
        actor_name=f"api key {actor.key.prefix}" if by_key else None,
        action=AUDIT_REVOKE,
        target=token,
        partnership=token.partnership,
        mode=token.mode,
        changes={"via": "api" if by_key else "pilot"},
    )
    return True


def user_token_revoke(
    *, principal: PartnerPrincipal, external_user_id: str, token_id: str
) -> UserToken:
    """The partner API's: one token of the user, of the key's mode (again: a no-op); unknown:
    404. Revoked and audited by ``user_token_revoke_as``."""
    try:
        token = _user_tokens(principal, external_user_id).filter(pk=uuid.UUID(token_id)).first()
    except ValueError:
        token = None
    if token is None:
        raise ApplicationError(
            404, ErrorCode.TOKEN_DOES_NOT_EXIST, "No token with this id for this user"
        )
    return user_token_revoke_as(token_id=token.pk, actor=principal).token


def user_token_revoke_all(*, principal: PartnerPrincipal, external_user_id: str) -> int:
    """Revokes every live token of the user, of the key's mode; returns how many. Each is
    locked (in id order) and audited as ``user_token_revoke_as`` does, in one transaction.
    Expired tokens are dead already: left alone (a long-standing user may have thousands)."""
    with transaction.atomic():
        live = _user_tokens(principal, external_user_id).filter(
            revoked_at__isnull=True, expires_at__gt=timezone.now()
        )
        tokens = live.select_related("partnership").select_for_update(of=("self",))
        return sum(_revoke_locked(token, principal) for token in tokens.order_by("pk"))


# --- Authenticating -------------------------------------------------------------------------


def bearer_token(request: HttpRequest) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if any (no key header beside it)."""
    header = request.META.get("HTTP_AUTHORIZATION")
    if header is None or not header.startswith(BEARER) or HEADER in request.META:
        return None
    return header[len(BEARER) :].strip()


def authenticate_user_token(*, raw_token: str, partnership_id: str | uuid.UUID) -> UserPrincipal:
    claims = _claims(raw_token)
    partnership = _existing_partnership(partnership_id)
    if claims["pid"] != str(partnership.id):
        raise ApplicationError(401, ErrorCode.UNAUTHORIZED_REQUEST)
    token = _token_row(claims["jti"])
    now = timezone.now()
    key: ApiKey = token.api_key
    if token.expires_at <= now or _passed(key.expires_at, now):
        raise ApplicationError(401, ErrorCode.TOKEN_EXPIRED)
    # An erased user's tokens are revoked by the erasure; one issued as it ran is refused here.
    revoked = token.revoked_at is not None or token.end_user.erased_at is not None
    if revoked or key.revoked_at is not None:
        raise ApplicationError(401, ErrorCode.TOKEN_REVOKED)
    if not partnership.is_active:
        raise ApplicationError(403, ErrorCode.PARTNERSHIP_SUSPENDED)
    rate_limit_check(
        key_prefix=f"user:{token.end_user_id}", limit=settings.USER_TOKEN_RATE_LIMIT_PER_SECOND
    )
    return UserPrincipal(
        partnership=partnership,
        token_id=token.id,
        end_user_id=token.end_user_id,
        external_user_id=token.end_user.external_user_id,
        mode=token.mode,
        scopes=frozenset(token.scopes),
    )


def _passed(moment: datetime | None, now: datetime) -> bool:
    return moment is not None and moment <= now


def _claims(raw_token: str) -> dict:
    try:
        return jwt.decode(
            raw_token,
            _secret(),
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "jti", "pid", "sub", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise ApplicationError(401, ErrorCode.TOKEN_EXPIRED) from exc
    except jwt.InvalidTokenError as exc:
        raise ApplicationError(400, ErrorCode.INVALID_TOKEN) from exc


def _token_row(token_id) -> UserToken:
    try:
        token_uuid = uuid.UUID(str(token_id))
    except ValueError:
        token_uuid = None
    token = (
        UserToken.objects.select_related("api_key", "end_user").filter(pk=token_uuid).first()
        if token_uuid
        else None
    )
    if token is None:  # signed by us, but its row is gone (its user or key deleted)
        raise ApplicationError(400, ErrorCode.INVALID_TOKEN)
    return token


class KeyOrUserTokenAuthentication(BaseAuthentication):
    """For the endpoints an app may call: a user token (``Authorization: Bearer``) when no
    ``x-api-key`` is sent, else the partner key as everywhere."""

    def authenticate(self, request):
        raw = bearer_token(request)
        if raw is None:
            return PartnerKeyAuthentication().authenticate(request)
        partnership_id = request.parser_context["kwargs"].get("partnership_id", "")
        principal = authenticate_user_token(raw_token=raw, partnership_id=partnership_id)
        return principal, None

    def authenticate_header(self, request) -> str:
        return "Bearer"


class IsKeyOrUserToken(BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, PartnerPrincipal | UserPrincipal)
