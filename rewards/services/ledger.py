"""Budgets and caps for one batch of events, read under row locks and written back once.

The ledger locks the ``CampaignCounter`` rows of every campaign the batch may reward (creating
the missing ones), in the order of ``rewards.locks``, and holds them until the batch's
transaction commits. Every reward of a campaign is therefore issued under its counter's lock:
budget, total count and the per-user counters (read after the lock) cannot be overspent by
concurrent workers. Changes are kept in memory and written in a few statements at the end.

A dry run reads the same counters without locking them (``Ledger.read``) and never saves: its
reservations are counted in memory by the same code, so its limits are the workers' limits.
"""

import uuid
from collections.abc import Iterable
from datetime import tzinfo
from decimal import Decimal

from django.db import connection

from campaigns.decisions import Outcome
from campaigns.engine import CompiledCampaign, Limits, Usage, limits_check, period_key

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
# The campaign counters, written back by id (locked since ``Ledger.locked``): one statement of
# arrays, not bulk_update's CASE per row, while every other worker waits on these rows.
_SAVE_CAMPAIGN_COUNTERS = f"""
UPDATE {CampaignCounter._meta.db_table} c
   SET reward_count = v.reward_count, spent = v.spent
  FROM unnest(%s::bigint[], %s::integer[], %s::numeric[]) AS v(id, reward_count, spent)
 WHERE c.id = v.id
"""  # noqa: S608 (built from the constants above)


class UserTally:
    """One user counter as the ledger counts it: a stored ``UserCounter`` row's values, or a new
    one's (a batch reads ~1,500 of them under its counters' locks; model instances cost ~5x)."""

    __slots__ = tuple(USER_COUNTER_COLUMNS)

    def __init__(
        self, campaign_id, mode: str, end_user_id, period: str, reward_count=0, amount=Decimal(0)
    ) -> None:
        self.campaign_id, self.mode, self.end_user_id = campaign_id, mode, end_user_id
        self.period, self.reward_count, self.amount = period, reward_count, amount


class Ledger:
    """The counters of some campaigns, modes and users, and the rewards counted against them.

    ``Ledger.locked`` for the workers; ``Ledger.read`` for a dry run."""

    def __init__(self, counters: Iterable[CampaignCounter], users: Iterable[UserTally]) -> None:
        self._campaigns = {(c.campaign_id, c.mode): c for c in counters}
        self._before = {key: (c.reward_count, c.spent) for key, c in self._campaigns.items()}
        self._users: dict[tuple, UserTally] = {
            (u.campaign_id, u.mode, u.end_user_id, u.period): u for u in users
        }
        self._dirty_campaigns: set[tuple] = set()
        self._dirty_users: set[UserTally] = set()  # by identity
        # (campaign id, mode) -> the budget that ran out in this batch (``exhausted``).
        self._exhausted: dict[tuple, Decimal] = {}

    @classmethod
    def locked(cls, campaign_ids: set[uuid.UUID], modes: set[str], user_ids: set) -> "Ledger":
        """Must be called inside the batch's transaction, after its events are locked."""
        counters = campaign_counters_lock(campaign_ids=campaign_ids, modes=modes)
        return cls(counters, _user_counters(campaign_ids, modes, user_ids))

    @classmethod
    def read(cls, campaign_ids: set[uuid.UUID], modes: set[str], user_ids: set) -> "Ledger":
        """The counters as they stand, unlocked (a missing one reads as zero, in memory)."""
        stored = {
            (c.campaign_id, c.mode): c
            for c in CampaignCounter.objects.filter(campaign_id__in=campaign_ids, mode__in=modes)
        }
        counters = [
            stored.get((campaign_id, mode)) or CampaignCounter(campaign_id=campaign_id, mode=mode)
            for campaign_id in campaign_ids
            for mode in modes
        ]
        return cls(counters, _user_counters(campaign_ids, modes, user_ids))

    def usage(self, campaign: CompiledCampaign, mode: str, user_id, period: str) -> Usage:
        """The campaign's counters before one more reward, where its limits read them."""
        return _usage(*self._tallies(campaign, mode, user_id, period))

    def reserve(
        self, campaign: CompiledCampaign, event, zone: tzinfo, amount: Decimal
    ) -> tuple[Outcome | None, list[str]]:
        """Checks one reward of ``event`` (a trigger event, stored or not) and counts it if it
        fits: (the limit it would break, or None; the per-user counters it was counted in).
        ``limits_check`` over the counters as they stand in this batch; each counter is looked
        up once (~9 rewards per event with 100 campaigns)."""
        limits = campaign.limits
        period = ""
        if limits.period and limits.per_user:
            period = period_key(limits.period, event.occurred_at, zone)
        tallies = self._tallies(campaign, event.mode, event.end_user_id, period)
        counter, lifetime, in_period = tallies
        key = (campaign.id, event.mode)
        blocked = limits_check(limits, _usage(*tallies), amount)
        if blocked:
            if blocked == Outcome.BUDGET_EXHAUSTED:
                self._exhausted[key] = limits.budget
            return blocked, []
        counter.reward_count += 1
        counter.spent += amount
        self._dirty_campaigns.add(key)
        if limits.budget is not None and counter.spent >= limits.budget:
            self._exhausted[key] = limits.budget
        if lifetime is None:
            return None, []
        for tally in (lifetime, in_period) if in_period is not None else (lifetime,):
            tally.reward_count += 1
            tally.amount += amount
            self._dirty_users.add(tally)
        return None, [ALL_TIME, period] if in_period is not None else [ALL_TIME]

    def _tallies(
        self, campaign: CompiledCampaign, mode: str, user_id, period: str
    ) -> tuple[CampaignCounter, UserTally | None, UserTally | None]:
        """The campaign's counter, and the user's lifetime and period tallies where its limits
        read them (None where they do not)."""
        counter = self._campaigns[(campaign.id, mode)]
        limits: Limits = campaign.limits
        if not limits.per_user:
            return counter, None, None
        lifetime = self._user(campaign.id, mode, user_id, ALL_TIME)
        in_period = self._user(campaign.id, mode, user_id, period) if limits.period else None
        return counter, lifetime, in_period

    def issued(self) -> list[tuple]:
        """(campaign id, mode, rewards, amount) recorded in this batch, per campaign counter."""
        changes = []
        for key in self._dirty_campaigns:
            counter, (count, spent) = self._campaigns[key], self._before[key]
            changes.append((*key, counter.reward_count - count, counter.spent - spent))
        return changes

    def exhausted(self) -> list[tuple[CampaignCounter, Decimal]]:
        """(counter, budget) of each campaign and mode whose budget ran out in this batch: a
        reward it earned was refused for the budget, or nothing is left. Only those whose
        running out of that budget was not announced yet (``CampaignCounter.exhausted_budget``,
        read under the lock): a budget raised above the one announced runs out anew."""
        found = []
        for key, budget in self._exhausted.items():
            counter = self._campaigns[key]
            if counter.exhausted_budget is None or counter.exhausted_budget < budget:
                found.append((counter, budget))
        return found

    def save(self) -> None:
        counters = [self._campaigns[key] for key in self._dirty_campaigns]
        if not counters:
            return  # nothing recorded, so no user counter either
        with connection.cursor() as cursor:
            cursor.execute(
                _SAVE_CAMPAIGN_COUNTERS,
                [
                    [counter.pk for counter in counters],
                    [counter.reward_count for counter in counters],
                    [counter.spent for counter in counters],
                ],
            )
            if cursor.rowcount != len(counters):  # each was locked, so each row is there
                raise RuntimeError(f"{cursor.rowcount} of {len(counters)} counters written")
            if self._dirty_users:
                users = list(self._dirty_users)
                columns = [
                    [getattr(user, column) for user in users] for column in USER_COUNTER_COLUMNS
                ]
                cursor.execute(_SAVE_USER_COUNTERS, columns)

    def _user(self, campaign_id, mode: str, user_id, period: str) -> UserTally:
        key = (campaign_id, mode, user_id, period)
        tally = self._users.get(key)
        if tally is None:
            tally = self._users[key] = UserTally(campaign_id, mode, user_id, period)
        return tally


def _usage(
    counter: CampaignCounter, lifetime: UserTally | None, in_period: UserTally | None
) -> Usage:
    if lifetime is None:
        return Usage(counter.reward_count, counter.spent)
    return Usage(
        counter.reward_count,
        counter.spent,
        lifetime.reward_count,
        lifetime.amount,
        in_period.reward_count if in_period is not None else 0,
    )


def _user_counters(campaign_ids, modes, user_ids) -> list[UserTally]:
    rows = UserCounter.objects.filter(
        campaign_id__in=campaign_ids, mode__in=modes, end_user_id__in=user_ids
    ).values_list(*USER_COUNTER_COLUMNS)
    return [UserTally(*row) for row in rows]
