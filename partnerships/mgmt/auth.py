"""Staff-token authentication for the management API.

``Authorization: Bearer staff_<8 chars>.<secret>``. A missing, malformed, unknown, revoked or
expired token (or one whose creator is inactive) is 401 ``invalid_token``; a partner API key
(in ``x-api-key`` or as the bearer) is 401 ``partner_key_not_accepted``. A token sees only its
partnerships (others answer 404, lists leave them out) and may do what its role and its
creator both may (403 ``permission_denied`` otherwise).
"""

from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from config.errors import ApplicationError, ErrorCode

from .. import keys
from ..models import Partnership, StaffToken
from ..staff_tokens import (
    staff_token_matches,
    staff_token_partnerships,
    staff_token_permissions,
    staff_token_split,
    staff_token_touch,
)

AUTHENTICATE = 'Bearer realm="management"'


@dataclass(frozen=True)
class StaffPrincipal:
    """Who is calling: a staff token, acting as the Pilot user who created it."""

    token: StaffToken
    permissions: frozenset[str]

    @property
    def user(self):
        return self.token.created_by

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def label(self) -> str:
        """How the audit log names the token."""
        return f"staff token {self.token.prefix} ({self.token.name})"

    def may(self, permission: str) -> bool:
        return permission in self.permissions

    def require(self, *permissions: str) -> None:
        missing = [name for name in permissions if not self.may(name)]
        if missing:
            raise ApplicationError(
                403,
                ErrorCode.PERMISSION_DENIED,
                f"This token (role {self.token.role}, acting as "
                f"{self.user.get_username()}) lacks the permission “{missing[0]}”",
            )

    def partnerships(self) -> QuerySet[Partnership]:
        return staff_token_partnerships(token=self.token)

    def partnership(self, partnership_id) -> Partnership:
        """One of the token's partnerships, else 404 (another's is not told apart)."""
        found = self.partnerships().filter(pk=partnership_id).first()
        if found is None:
            raise ApplicationError(404, ErrorCode.PARTNERSHIP_DOES_NOT_EXIST)
        return found


def _refused(code: ErrorCode = ErrorCode.INVALID_TOKEN, message: str | None = None):
    return ApplicationError(401, code, message, headers={"WWW-Authenticate": AUTHENTICATE})


def authenticate_staff(*, authorization: str, api_key: str | None) -> StaffPrincipal:
    scheme, _, raw = authorization.partition(" ")
    raw = raw.strip()
    if api_key or (raw and keys.split(raw)):
        raise _refused(ErrorCode.PARTNER_KEY_NOT_ACCEPTED)
    if scheme.lower() != "bearer" or not raw:
        raise _refused(message="Send a staff token: Authorization: Bearer staff_...")
    prefix = staff_token_split(raw)
    token = (
        StaffToken.objects.select_related("created_by").filter(prefix=prefix).first()
        if prefix
        else None
    )
    if token is None or not staff_token_matches(raw, token.hashed_token):
        raise _refused(message="Unknown staff token")
    if token.revoked_at is not None:
        raise _refused(message="This staff token was revoked")
    if token.expires_at is not None and token.expires_at <= timezone.now():
        raise _refused(message="This staff token has expired")
    if not token.created_by.is_active:
        raise _refused(message="The account this staff token acts as is deactivated")
    if not token.created_by.is_staff:
        raise _refused(message="The account this staff token acts as no longer has Pilot access")
    staff_token_touch(token=token)
    return StaffPrincipal(token=token, permissions=staff_token_permissions(token=token))


class StaffTokenAuthentication(BaseAuthentication):
    def authenticate(self, request) -> tuple[StaffPrincipal, StaffToken]:
        principal = authenticate_staff(
            authorization=request.META.get("HTTP_AUTHORIZATION", ""),
            api_key=request.META.get("HTTP_X_API_KEY"),
        )
        return principal, principal.token

    def authenticate_header(self, request) -> str:
        return AUTHENTICATE


class IsStaffToken(BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, StaffPrincipal)
