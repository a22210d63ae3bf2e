"""The row locks of issuing and reversing rewards, and the one order every transaction takes
them in:

0. a keyed reversal's advisory lock on (partnership, mode, Idempotency-Key), first of all, so
   that twins with one key wait for each other before either locks a row
   (``services/reversal.py``);
1. trigger event rows: a worker's batch, in id order (``triggers.services.processing``), or a
   reversal's one event (``services/reversal.py``);
2. the rewards of that event (a reversal), in id order;
3. campaign counter rows, in id order, through ``campaign_counters_lock`` below (or
   ``campaign_counters_lock_ids``: beat's low-budget notices, which take no other lock);
4. report money buckets (``reports.maintain``), upserted in key order: rows of campaigns whose
   counters the transaction holds, so they never wait on each other beyond the counters;
5. report activity buckets, upserted in key order, last thing before the commit (the queue's
   ``on_recorded``); the beat job that counts events received takes its watermark row, then
   these, and nothing else. A retried failed event (``rewards.retry``) upserts its one bucket
   here, after its event row;
6. the advisory lock on a partnership and mode's closed report days, held by a retry while it
   deletes the days it reopens, and by whoever sums closed days (``reports.days``), who takes
   no other lock.

Erasing a user (``services/users.py``) takes kind 1 (the user's events, in id order), then the
user row, which workers and ingests only ever hold ``FOR KEY SHARE`` (foreign keys); an event
stored and claimed between its two locks can close a cycle, broken by PostgreSQL and retried.

Retention (``services/retention.py``) takes kind 1 only, ``SKIP LOCKED`` (it never waits for a
row another transaction holds), then deletes those events and their reversals.

No transaction takes a lock of an earlier kind once it holds one of a later kind, so workers
and reversals wait for each other but never in a cycle. The counters are what makes budgets
and caps hold: every reward is issued or clawed back under its campaign counter's lock.
"""

from collections.abc import Iterable

from django.db import connection

from .models import CampaignCounter

# What a new counter row holds, column by column (a test holds them against the model).
NEW_COUNTER = {
    "campaign_id": "p.campaign_id",
    "mode": "p.mode",
    "reward_count": "0",
    "spent": "0",
    # Nothing announced about its budget yet (services/notices.py).
    "exhausted_budget": "NULL",
    "exhausted_at": "NULL",
    "low_warned_budget": "NULL",
    "low_warned_at": "NULL",
}
_CREATE_MISSING = f"""
INSERT INTO rewards_campaigncounter ({", ".join(NEW_COUNTER)})
SELECT {", ".join(NEW_COUNTER.values())}
  FROM unnest(%s::uuid[], %s::text[]) AS p(campaign_id, mode)
 ORDER BY p.campaign_id, p.mode
    ON CONFLICT (campaign_id, mode) DO NOTHING
"""  # noqa: S608 (built from the constants above)


def campaign_counters_lock(
    *, campaign_ids: Iterable, modes: Iterable[str]
) -> list[CampaignCounter]:
    """The counters of these campaigns in these modes, created if missing, locked ``FOR UPDATE``
    in id order until the transaction ends. Call it inside the transaction, after its event
    locks and before any other counter lock.

    Missing rows are inserted first, in (campaign, mode) order: two transactions creating the
    counters of the same new campaigns wait for each other in that order, never in a cycle
    (and ``ON CONFLICT DO NOTHING`` does not wait for rows that others have only locked).
    """
    pairs = [(campaign_id, mode) for campaign_id in set(campaign_ids) for mode in set(modes)]
    if not pairs:
        return []
    with connection.cursor() as cursor:
        cursor.execute(_CREATE_MISSING, [[c for c, _ in pairs], [m for _, m in pairs]])
    return list(
        CampaignCounter.objects.select_for_update()
        .filter(campaign_id__in={c for c, _ in pairs}, mode__in={m for _, m in pairs})
        .order_by("id")
    )


def campaign_counters_lock_ids(*, ids: Iterable[int]) -> list[CampaignCounter]:
    """These counter rows (which exist), locked ``FOR UPDATE`` in id order until the
    transaction ends; none is created (a counter says a campaign ran in its mode)."""
    return list(CampaignCounter.objects.select_for_update().filter(pk__in=set(ids)).order_by("id"))
