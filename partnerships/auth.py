"""Partner API key authentication with Benji's semantics.

Checked in this order, so that nothing about a partnership leaks to a caller without a key:
missing, malformed, unknown, revoked or expired key -> 400 ``invalid_token``; partnership id
unknown or not a UUID -> 404 ``partnership_does_not_exist``; key of another partnership, or a
client IP outside the partnership's allow-list -> 401 ``unauthorized_request``; suspended
partnership -> 403 ``partnership_suspended``.
"""

import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from config.errors import ApplicationError, ErrorCode

from . import keys
from .models import ApiKey
from .ratelimit import rate_limit_check
from .selectors import KeyRecord, PartnershipRecord, api_key_record, partnership_record

HEADER = "HTTP_X_API_KEY"


@dataclass(frozen=True, slots=True)
class PartnerPrincipal:
    """Who is calling: a partnership, through one of its keys."""

    partnership: PartnershipRecord
    key: KeyRecord

    @property
    def mode(self) -> str:
        return self.key.mode

    @property
    def is_authenticated(self) -> bool:
        return True


def client_ip(request: HttpRequest) -> str:
    if settings.NUM_PROXIES:
        forwarded = [ip.strip() for ip in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if len(forwarded) >= settings.NUM_PROXIES:
            return forwarded[-settings.NUM_PROXIES]
    return request.META.get("REMOTE_ADDR", "")


def authenticate_partner(
    *, raw_key: str | None, partnership_id: str | uuid.UUID, ip: str
) -> PartnerPrincipal:
    key = _verified_key(raw_key)
    partnership = _existing_partnership(partnership_id)
    if key.partnership_id != partnership.id or not partnership.allows_ip(ip):
        raise ApplicationError(401, ErrorCode.UNAUTHORIZED_REQUEST)
    if not partnership.is_active:
        raise ApplicationError(403, ErrorCode.PARTNERSHIP_SUSPENDED)
    rate_limit_check(key_prefix=key.prefix, limit=key.rate_limit_per_second)
    _touch_last_used(key)
    return PartnerPrincipal(partnership=partnership, key=key)


def _verified_key(raw_key: str | None) -> KeyRecord:
    prefix = keys.split(raw_key or "")
    key = api_key_record(prefix=prefix) if prefix else None
    if (
        key is None
        or key.revoked
        or (key.expires_at is not None and key.expires_at <= timezone.now())
        or not keys.matches(raw_key, key.hashed_key)
    ):
        raise ApplicationError(400, ErrorCode.INVALID_TOKEN)
    return key


def _existing_partnership(partnership_id: str | uuid.UUID) -> PartnershipRecord:
    try:
        partnership_uuid = (
            partnership_id if isinstance(partnership_id, uuid.UUID) else uuid.UUID(partnership_id)
        )
    except (ValueError, TypeError, AttributeError):
        partnership_uuid = None
    partnership = partnership_record(partnership_id=partnership_uuid) if partnership_uuid else None
    if partnership is None:
        raise ApplicationError(404, ErrorCode.PARTNERSHIP_DOES_NOT_EXIST)
    return partnership


_last_touched: dict[int, float] = {}


def _touch_last_used(key: KeyRecord) -> None:
    """Records use at most once a resolution period per key, process and database."""
    resolution = settings.API_KEY_LAST_USED_RESOLUTION_SECONDS
    now = time.monotonic()
    if now - _last_touched.get(key.id, -resolution) < resolution:
        return
    _last_touched[key.id] = now
    current = timezone.now()
    ApiKey.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=current - timedelta(seconds=resolution)),
        pk=key.id,
    ).update(last_used_at=current)


class PartnerKeyAuthentication(BaseAuthentication):
    """DRF authentication for ``/partnerships/{partnership_id}/...`` URLs (``x-api-key``)."""

    def authenticate(self, request) -> tuple[PartnerPrincipal, KeyRecord]:
        partnership_id = request.parser_context["kwargs"].get("partnership_id", "")
        principal = authenticate_partner(
            raw_key=request.META.get(HEADER),
            partnership_id=partnership_id,
            ip=client_ip(request),
        )
        return principal, principal.key

    def authenticate_header(self, request) -> str:
        return "x-api-key"


class IsPartnershipKey(BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, PartnerPrincipal)
