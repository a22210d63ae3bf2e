"""Counters in memory, keyed like the real ones: what a simulation reserves against.

``CampaignCounter`` is (campaign, mode); ``UserCounter`` is (campaign, mode, user, period), the
period being "" for a user's lifetime or ``campaigns.engine.period_key`` of the event in the
partnership's time zone; here a campaign is named by its ``key``, its id as a string, whose
hash Python caches. The check is ``campaigns.engine.limits_check``, as in the workers'
``Ledger``; nothing is locked or written.
"""

import uuid
from datetime import datetime, tzinfo
from decimal import Decimal

from campaigns.decisions import Outcome
from campaigns.engine import CompiledCampaign, Usage, limits_check, period_key

from ..services.ledger import ALL_TIME

_NOTHING = (0, Decimal(0))


class Tally:
    """Starts empty: every campaign as if it had issued nothing yet."""

    def __init__(self) -> None:
        self.campaigns: dict[tuple, tuple[int, Decimal]] = {}
        self.users: dict[tuple, tuple[int, Decimal]] = {}

    def reserve(
        self,
        campaign: CompiledCampaign,
        amount: Decimal,
        *,
        mode: str,
        user_id: uuid.UUID,
        occurred_at: datetime,
        zone: tzinfo,
    ) -> Outcome | None:
        """The limit one more reward would break, or None after counting it (the ``reserve`` of
        ``campaigns.judge.event_settle``)."""
        limits = campaign.limits
        key = (campaign.key, mode)
        count, spent = self.campaigns.get(key, _NOTHING)
        if not limits.per_user:
            blocked = limits_check(limits, Usage(count, spent), amount)
            if blocked is None:
                self.campaigns[key] = (count + 1, spent + amount)
            return blocked
        period = period_key(limits.period, occurred_at, zone) if limits.period else None
        lifetime_key = (campaign.key, mode, user_id, ALL_TIME)
        lifetime = self.users.get(lifetime_key, _NOTHING)
        period_key_ = (campaign.key, mode, user_id, period)
        in_period = self.users.get(period_key_, _NOTHING) if period is not None else _NOTHING
        usage = Usage(count, spent, lifetime[0], lifetime[1], in_period[0])
        blocked = limits_check(limits, usage, amount)
        if blocked is None:
            self.campaigns[key] = (count + 1, spent + amount)
            self.users[lifetime_key] = (lifetime[0] + 1, lifetime[1] + amount)
            if period is not None:
                self.users[period_key_] = (in_period[0] + 1, in_period[1] + amount)
        return blocked
