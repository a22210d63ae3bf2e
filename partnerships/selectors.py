"""Reads on the request path, served from the per-process config cache when warm."""

import ipaddress
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db.models import Exists, OuterRef, QuerySet

from config.localcache import config_cache

from .models import ApiKey, Partnership, PartnershipMember


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: int
    prefix: str
    hashed_key: str
    partnership_id: uuid.UUID
    mode: str
    expires_at: datetime | None
    revoked: bool
    rate_limit_per_second: int


@dataclass(frozen=True, slots=True)
class PartnershipRecord:
    id: uuid.UUID
    name: str
    status: str
    reward_unit: str
    # occurred_at may be at most this many days old; None: no bound.
    max_event_lateness_days: int | None
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    # Browser origins allowed to call with user tokens (CORS).
    origins: frozenset[str] = frozenset()

    @property
    def is_active(self) -> bool:
        return self.status == Partnership.Status.ACTIVE

    def allows_ip(self, ip: str) -> bool:
        if not self.networks:
            return True
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


def api_key_record(*, prefix: str) -> KeyRecord | None:
    def load() -> KeyRecord | None:
        key = ApiKey.objects.filter(prefix=prefix).first()
        if key is None:
            return None
        return KeyRecord(
            id=key.id,
            prefix=key.prefix,
            hashed_key=key.hashed_key,
            partnership_id=key.partnership_id,
            mode=key.mode,
            expires_at=key.expires_at,
            revoked=key.revoked_at is not None,
            rate_limit_per_second=key.rate_limit_per_second or settings.API_RATE_LIMIT_PER_SECOND,
        )

    return config_cache.get(("api_key", prefix), load, cache_none=False)


def partnership_record(*, partnership_id: uuid.UUID) -> PartnershipRecord | None:
    def load() -> PartnershipRecord | None:
        partnership = Partnership.objects.filter(pk=partnership_id).first()
        if partnership is None:
            return None
        return PartnershipRecord(
            id=partnership.id,
            name=partnership.name,
            status=partnership.status,
            reward_unit=partnership.reward_unit,
            max_event_lateness_days=partnership.max_event_lateness_days,
            networks=tuple(
                ipaddress.ip_network(cidr, strict=False) for cidr in partnership.allowed_cidrs
            ),
            origins=frozenset(partnership.allowed_origins),
        )

    return config_cache.get(("partnership", partnership_id), load)


def partnerships_for_operator(*, user) -> QuerySet[Partnership]:
    """The partnerships a Pilot user may see: the one place that limits it (every report page
    and export asks here). Superusers see all; others their memberships, none without any."""
    if not user.is_active:
        return Partnership.objects.none()
    partnerships = Partnership.objects.select_related("partner").order_by("partner__name", "name")
    if user.is_superuser:
        return partnerships
    return partnerships.filter(members__user=user)


def pilot_users_for_operator(*, user) -> QuerySet:
    """The Pilot users an operator may see and manage: all for a superuser. Others manage only
    users wholly inside their partnerships (every membership one of theirs; a user of A and B
    is managed by someone of both, or a superuser), including users of none yet (a new user,
    who sees nothing until added to one), and never a superuser or a user who may approve
    campaigns: taking over an approver's account (a new password) would defeat four eyes."""
    users = get_user_model().objects.all()
    if not user.is_active:
        return users.none()
    if user.is_superuser:
        return users
    elsewhere = PartnershipMember.objects.filter(user=OuterRef("pk")).exclude(
        partnership__in=partnerships_for_operator(user=user)
    )
    approve = Permission.objects.filter(
        content_type__app_label="campaigns", codename="approve_campaign"
    )
    return (
        users.filter(is_superuser=False)
        .exclude(Exists(elsewhere))
        .exclude(groups__permissions__in=approve)
        .exclude(user_permissions__in=approve)
    )
