"""The reports benchmark's data: rewards, events, reversals and users made by SQL in batches
(``INSERT ... SELECT generate_series``), never as model instances, then the report aggregates
counted from those raw rows by the core's rebuild (``rewards.reports.rebuild``).

Deterministic shape (row ``g`` of the series decides everything about its event):
- every event is processed; events ``g < rewards`` earn one reward from campaign ``g % C`` and
  are turned down by the next campaign (``condition_false``); one extra event per ten rewards
  earns nothing (both campaigns ``condition_false``);
- spread evenly over ``days`` local days of the partnership's zone (Asia/Kolkata, UTC+05:30:
  local days cut 15-minute buckets in the middle of UTC hours), ending at today's local midnight;
- one event in ten is test mode; amounts 0.01-10.00; user ``g * 2654435761 mod U``;
- one reward in fifty (runs of ten in every 500, so both modes) is reversed 0-47 hours
  after it was issued (never after the window's end), every other one by half (a partial
  clawback).
"""

import json
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

TIME_ZONE = "Asia/Kolkata"
BATCH = 100_000
SEED_VERSION = 1  # bump when the shape changes: the next run reseeds


@dataclass(frozen=True)
class Shape:
    rewards: int = 1_000_000
    days: int = 90
    campaigns: int = 20
    users: int = 100_000

    @property
    def events(self) -> int:
        return self.rewards + self.rewards // 10


@dataclass(frozen=True)
class Seeded:
    partnership_id: str
    api_key: str
    first_day: date  # local days, inclusive
    last_day: date
    seconds: float  # 0.0: reused from an earlier run


def seed(shape: Shape, *, reseed: bool = False) -> Seeded:
    """The seeded data set of this shape, reused when the database already holds it."""
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", interactive=False, verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_reports_seed (shape jsonb, partnership_id uuid, "
            "first_day date, last_day date)"
        )
        cursor.execute(
            "SELECT shape::text, partnership_id, first_day, last_day FROM bench_reports_seed"
        )
        row = cursor.fetchone()
    wanted = {**shape.__dict__, "version": SEED_VERSION}
    if row and json.loads(row[0]) == wanted and not reseed and _still_there(row[1], shape):
        return Seeded(str(row[1]), _fresh_key(row[1]), row[2], row[3], 0.0)
    began = time.monotonic()
    partnership = _catalog(shape)
    last_day = datetime.now(ZoneInfo(TIME_ZONE)).date() - timedelta(days=1)
    first_day = last_day - timedelta(days=shape.days - 1)
    _raw_rows(shape, partnership, first_day)
    aggregates_build(partnership_id=partnership.id)
    with connection.cursor() as cursor:
        cursor.execute("RESET ALL")  # the seeding's session settings
        if not connection.in_atomic_block:  # (a test's transaction: no VACUUM there)
            cursor.execute("VACUUM ANALYZE")  # as autovacuum would have, before any report
        cursor.execute("DELETE FROM bench_reports_seed")
        cursor.execute(
            "INSERT INTO bench_reports_seed VALUES (%s::jsonb, %s, %s, %s)",
            [json.dumps(wanted), partnership.id, first_day, last_day],
        )
    seconds = time.monotonic() - began
    return Seeded(str(partnership.id), _fresh_key(partnership.id), first_day, last_day, seconds)


def _still_there(partnership_id, shape: Shape) -> bool:
    """The seeded rewards are all there (another bench on the same database may have emptied
    the tables since)."""
    from rewards.models import Reward

    return Reward.objects.filter(partnership_id=partnership_id).count() == shape.rewards


def _fresh_key(partnership_id) -> str:
    from partnerships.models import ApiKey
    from partnerships.services import api_key_issue

    ApiKey.objects.filter(partnership_id=partnership_id).delete()
    issued = api_key_issue(
        api_key=ApiKey(partnership_id=partnership_id, name="bench", rate_limit_per_second=10**7)
    )
    return issued.plaintext


def _catalog(shape: Shape):
    """Empties the tables, then the partnership, its trigger, campaigns and users."""
    from decimal import Decimal

    from django.db import connection

    from campaigns.models import Campaign
    from campaigns.services import campaign_save
    from partnerships.models import Partnership
    from partnerships.services import partnership_create
    from triggers.models import Trigger

    from .stack import CONTEXT_SCHEMA, TRIGGER_NAME

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE rewards_rewardadjustment, rewards_reversal, rewards_reward, "
            "rewards_moneybucket, rewards_activitybucket, rewards_reportwatermark, "
            "rewards_campaigncounter, rewards_usercounter, rewards_webhookdelivery, "
            "triggers_triggerevent, campaigns_campaignversion, campaigns_campaign, "
            "triggers_trigger, partnerships_enduser, partnerships_apikey, "
            "partnerships_partnership CASCADE"
        )
    partnership, _ = partnership_create(name="bench reports", partner_name="Bench")
    Partnership.objects.filter(pk=partnership.pk).update(time_zone=TIME_ZONE)
    trigger = Trigger.objects.create(
        partnership=partnership, name=TRIGGER_NAME, context_schema=CONTEXT_SCHEMA
    )
    for index in range(shape.campaigns):
        campaign_save(
            campaign=Campaign(
                partnership=partnership,
                trigger=trigger,
                name=f"bench {index}",
                slug=f"bench-{index}",
                status="active",
                condition="context.amount >= 1.0",
                reward_type="fixed",
                reward_value=Decimal("1"),
                budget=Decimal("100000000"),
            )
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO partnerships_enduser (id, partnership_id, external_user_id, attributes, "
            "created_at) SELECT gen_random_uuid(), %s, 'user-' || lpad(n::text, 6, '0'), '{}', "
            "now() FROM generate_series(0, %s - 1) AS n",
            [partnership.id, shape.users],
        )
        # Numbered lookups for the series: user n, campaign n.
        cursor.execute(
            "DROP TABLE IF EXISTS bench_reports_users, bench_reports_campaigns;"
            "CREATE TABLE bench_reports_users AS SELECT substr(external_user_id, 6)::int AS n, "
            "id FROM partnerships_enduser;"
            "ALTER TABLE bench_reports_users ADD PRIMARY KEY (n);"
            "CREATE TABLE bench_reports_campaigns AS SELECT (row_number() OVER (ORDER BY slug))"
            " - 1 AS n, id, version FROM campaigns_campaign;"
        )
    return Partnership.objects.get(pk=partnership.pk)


_RAW = """
WITH src AS MATERIALIZED (
  SELECT g, g < %(rewards)s AS rewarded,
         gen_random_uuid() AS event_id, gen_random_uuid() AS reward_id,
         gen_random_uuid() AS reversal_id,
         CASE WHEN g %% 10 = 9 THEN 'test' ELSE 'live' END AS mode,
         %(start)s::timestamptz + make_interval(secs => %(span)s * CASE WHEN g < %(rewards)s
             THEN (g + 0.5) / %(rewards)s ELSE (g - %(rewards)s + 0.5) / %(unrewarded)s END)
           AS at,
         (g::bigint * 2654435761) %% %(users)s AS user_n,
         g %% %(campaigns)s AS campaign_n,
         round(((g::bigint * 37) %% 1000 + 1) / 100.0, 2) AS amount,
         g < %(rewards)s AND (g / 10) %% 50 = 3 AS picked,
         g %% 2 = 1 AS partial,
         make_interval(hours => g %% 48) AS delay
    FROM generate_series(%(lo)s, %(hi)s - 1) AS g
), rows AS MATERIALIZED (
  SELECT src.*, picked AND at + delay < %(end)s AS reversed,
         CASE WHEN partial THEN round(amount / 2, 6) ELSE amount END AS clawback,
         u.id AS end_user_id, c.id AS campaign_id, c.version, o.id AS other_id
    FROM src
    JOIN bench_reports_users u ON u.n = src.user_n
    JOIN bench_reports_campaigns c ON c.n = src.campaign_n
    JOIN bench_reports_campaigns o ON o.n = (src.campaign_n + 1) %% %(campaigns)s
), events AS (
  INSERT INTO triggers_triggerevent (id, partnership_id, trigger_id, end_user_id, context,
         idempotency_key, request_hash, mode, tags, occurred_at, received_at, deliver_at, status,
         processed_at, attempts, last_attempt_at, error, decisions)
  SELECT event_id, %(partnership)s, %(trigger)s, end_user_id,
         jsonb_build_object('amount', amount * 20, 'currency', 'USD'), NULL, '', mode, '{}',
         at - interval '2 seconds', at - interval '1 second', at - interval '1 second',
         'processed', at, 1, at, '',
         CASE WHEN rewarded
              THEN jsonb_build_array(jsonb_build_array(campaign_id::text, 'rewarded', amount::text),
                                     jsonb_build_array(other_id::text, 'condition_false'))
              ELSE jsonb_build_array(jsonb_build_array(campaign_id::text, 'condition_false'),
                                     jsonb_build_array(other_id::text, 'condition_false')) END
    FROM rows
), rewards AS (
  INSERT INTO rewards_reward (id, partnership_id, campaign_id, trigger_event_id, end_user_id,
         amount, reversed_amount, unit, mode, status, issued_at, occurred_at, campaign_version,
         user_periods)
  SELECT reward_id, %(partnership)s, campaign_id, event_id, end_user_id, amount,
         CASE WHEN reversed THEN clawback ELSE 0 END, %(unit)s, mode,
         CASE WHEN reversed AND NOT partial THEN 'reversed' ELSE 'issued' END,
         at, at - interval '2 seconds', version, '{}'
    FROM rows WHERE rewarded
), reversals AS (
  INSERT INTO rewards_reversal (id, partnership_id, trigger_event_id, mode, reason,
         requested_amount, cancelled_event, idempotency_key, request_hash, created_at)
  SELECT reversal_id, %(partnership)s, event_id, mode, 'bench',
         CASE WHEN partial THEN clawback END, false, NULL, '', at + delay
    FROM rows WHERE reversed
)
INSERT INTO rewards_rewardadjustment (reversal_id, reward_id, amount, created_at)
SELECT reversal_id, reward_id, clawback, at + delay FROM rows WHERE reversed
"""

_COUNTERS = """
INSERT INTO rewards_campaigncounter (campaign_id, mode, reward_count, spent)
SELECT campaign_id, mode, count(*) FILTER (WHERE status = 'issued'), sum(amount - reversed_amount)
  FROM rewards_reward GROUP BY 1, 2
"""


def _raw_rows(shape: Shape, partnership, first_day: date) -> None:
    from django.db import connection

    zone = ZoneInfo(TIME_ZONE)
    start = datetime.combine(first_day, datetime.min.time(), zone)
    end = start + timedelta(days=shape.days)
    params = {
        "rewards": shape.rewards,
        "unrewarded": shape.events - shape.rewards,
        "users": shape.users,
        "campaigns": shape.campaigns,
        "start": start,
        "end": end,
        "span": (end - start).total_seconds(),
        "partnership": partnership.id,
        "trigger": partnership.triggers.get().id,
        "unit": partnership.reward_unit,
    }
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        cursor.execute("SET work_mem = '256MB'")
        for lo in range(0, shape.events, BATCH):
            cursor.execute(_RAW, {**params, "lo": lo, "hi": min(lo + BATCH, shape.events)})
            print(f"bench.reports: seeded {min(lo + BATCH, shape.events):,} events", flush=True)
        cursor.execute(_COUNTERS)


# --- The aggregates, from the raw rows --------------------------------------------------------


def aggregates_build(*, partnership_id) -> None:
    """The report aggregates of one partnership, counted from its raw rows by the core's own
    rebuild (``rewards.reports.rebuild``: the maintenance's rules in set-based SQL, held to
    them by the core's tests), with events received counted up to now."""
    from django.db import connection
    from django.utils import timezone

    from rewards.reports.maintain import RECEIVED
    from rewards.reports.models import ReportWatermark
    from rewards.reports.rebuild import reports_rebuild

    with connection.cursor() as cursor:
        cursor.execute("SET work_mem = '256MB'")  # its joins of 10^6 rows, in memory
    ReportWatermark.objects.update_or_create(name=RECEIVED, defaults={"through": timezone.now()})
    reports_rebuild(partnership_ids=[partnership_id])
