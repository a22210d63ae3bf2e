"""Budgets and caps for one batch of events, read under row locks and written back once.

The ledger locks the ``CampaignCounter`` rows of every campaign the batch may reward (creating
the missing ones), in the order of ``rewards.locks``, and holds them until the batch's
transaction commits. Every reward of a campaign is therefore issued under its counter's lock:
budget, total count and the per-user counters (read after the lock) cannot be overspent by
concurrent workers. Changes are kept in memory and written in a few statements at the end.
"""

import uuid
from decimal import Decimal

from django.db import connection

from campaigns.decisions import Outcome
from campaigns.engine import CompiledCampaign, Limits, Usage, limits_check

from ..locks import campaign_counters_lock
from ..models import CampaignCounter, UserCounter

ALL_TIME = ""

# The user counters the ledger writes back, column by column with their SQL types (a test holds
# them against the model): one statement of arrays; bulk_create built ~1,500 model rows a batch
# while the batch held its campaigns' counters, every other worker waiting.
USER_COUNTER_COLUMNS = {
    "campaign_id": "uuid",
    "mode": "text",
    "end_user_id": "uuid",
    "period": "text",
    "reward_count": "integer",
    "amount": "numeric",
}
_SAVE_USER_COUNTERS = f"""
INSERT INTO {UserCounter._meta.db_table} ({", ".join(USER_COUNTER_COLUMNS)})
SELECT * FROM unnest({", ".join(f"%s::{kind}[]" for kind in USER_COUNTER_COLUMNS.values())})
    ON CONFLICT (campaign_id, mode, end_user_id, period) DO UPDATE
   SET reward_count = EXCLUDED.reward_count, amount = EXCLUDED.amount
"""  # noqa: S608 (built from the constants above)


class Ledger:
    """Must be created inside the batch's transaction, after its events are locked."""

    def __init__(self, campaign_ids: set[uuid.UUID], modes: set[str], user_ids: set) -> None:
        counters = campaign_counters_lock(campaign_ids=campaign_ids, modes=modes)
        self._campaigns = {(c.campaign_id, c.mode): c for c in counters}
        self._before = {key: (c.reward_count, c.spent) for key, c in self._campaigns.items()}
        self._users: dict[tuple, UserCounter] = {
            (u.campaign_id, u.mode, u.end_user_id, u.period): u
            for u in UserCounter.objects.filter(
                campaign_id__in=campaign_ids, mode__in=modes, end_user_id__in=user_ids
            )
        }
        self._dirty_campaigns: set[tuple] = set()
        self._dirty_users: set[tuple] = set()

    def check(
        self, campaign: CompiledCampaign, mode: str, user_id, period: str, amount: Decimal
    ) -> Outcome | None:
        """The limit this reward would break, or None if it fits (``limits_check`` over the
        counters as they stand in this batch)."""
        limits: Limits = campaign.limits
        counter = self._campaign(campaign.id, mode)
        if not limits.per_user:
            return limits_check(limits, Usage(counter.reward_count, counter.spent), amount)
        lifetime = self._user(campaign.id, mode, user_id, ALL_TIME)
        in_period = self._user(campaign.id, mode, user_id, period) if limits.period else None
        usage = Usage(
            counter.reward_count,
            counter.spent,
            lifetime.reward_count,
            lifetime.amount,
            in_period.reward_count if in_period else 0,
        )
        return limits_check(limits, usage, amount)

    def record(
        self, campaign: CompiledCampaign, mode: str, user_id, period: str, amount: Decimal
    ) -> list[str]:
        """Counts the reward; returns the per-user counters (periods) it was counted in."""
        self._add_campaign((campaign.id, mode), 1, amount)
        periods = []
        if campaign.limits.per_user:
            periods.append(ALL_TIME)
            if campaign.limits.period:
                periods.append(period)
        for user_period in periods:
            self._add_user((campaign.id, mode, user_id, user_period), 1, amount)
        return periods

    def issued(self) -> list[tuple]:
        """(campaign id, mode, rewards, amount) recorded in this batch, per campaign counter."""
        changes = []
        for key in self._dirty_campaigns:
            counter, (count, spent) = self._campaigns[key], self._before[key]
            changes.append((*key, counter.reward_count - count, counter.spent - spent))
        return changes

    def save(self) -> None:
        CampaignCounter.objects.bulk_update(
            [self._campaigns[key] for key in self._dirty_campaigns], ["reward_count", "spent"]
        )
        if not self._dirty_users:
            return
        users = [self._users[key] for key in self._dirty_users]
        columns = [[getattr(user, column) for user in users] for column in USER_COUNTER_COLUMNS]
        with connection.cursor() as cursor:
            cursor.execute(_SAVE_USER_COUNTERS, columns)

    def _campaign(self, campaign_id, mode: str) -> CampaignCounter:
        return self._campaigns[(campaign_id, mode)]

    def _user(self, campaign_id, mode: str, user_id, period: str) -> UserCounter:
        key = (campaign_id, mode, user_id, period)
        if key not in self._users:
            self._users[key] = UserCounter(
                campaign_id=campaign_id, mode=mode, end_user_id=user_id, period=period
            )
        return self._users[key]

    def _add_campaign(self, key: tuple, count: int, amount: Decimal) -> None:
        counter = self._campaign(*key)
        counter.reward_count += count
        counter.spent += amount
        self._dirty_campaigns.add(key)

    def _add_user(self, key: tuple, count: int, amount: Decimal) -> None:
        counter = self._user(*key)
        counter.reward_count += count
        counter.amount += amount
        self._dirty_users.add(key)
