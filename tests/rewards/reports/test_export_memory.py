"""Exports of 10^5+ rows: memory stays flat (the process's resident size, measured), and the CSV
parses back to the sums PostgreSQL computes from the same rows."""

import csv
import json
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection

from tests.factories import CampaignFactory, PartnershipFactory, TriggerFactory
from tests.rewards.reports.support import run
from tests.support import ROOT, process_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROWS = 120_000
START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 2, 1, tzinfo=UTC)  # --from 2026-01-01 --to 2026-01-31, in UTC
# Loading the rows would take ~2 kB each (a tuple of 16 strings and their CSV line): 280 MB
# here. A chunk's buffers take ~15 MB, whatever the export's size.
FLAT_KB = 8 * 1024

SEED = [
    """
INSERT INTO partnerships_enduser (id, partnership_id, external_user_id, attributes, created_at)
SELECT gen_random_uuid(), %(p)s, 'user-' || g, '{}', now() FROM generate_series(0, 999) g
""",
    """
WITH users AS (
    SELECT id, (regexp_replace(external_user_id, '^user-', ''))::int AS n
    FROM partnerships_enduser WHERE partnership_id = %(p)s
), events AS (
    INSERT INTO triggers_triggerevent (
        id, partnership_id, trigger_id, end_user_id, context, idempotency_key, request_hash,
        mode, tags, occurred_at, received_at, deliver_at, status, processed_at, attempts,
        last_attempt_at, error, decisions)
    SELECT gen_random_uuid(), %(p)s, %(t)s, u.id, jsonb_build_object('g', g), NULL, '',
        'live', '{}', moment.at, moment.at, moment.at, 'processed', moment.at, 1,
        moment.at, '', '[]'
    FROM generate_series(1, %(rows)s) g
    CROSS JOIN LATERAL (SELECT %(start)s::timestamptz + (g / 3) * interval '1 minute' AS at) moment
    JOIN users u ON u.n = g %% 1000
    RETURNING id, end_user_id, occurred_at, (context->>'g')::int AS g
)
INSERT INTO rewards_reward (
    id, partnership_id, campaign_id, trigger_event_id, end_user_id, amount, reversed_amount,
    unit, mode, status, issued_at, occurred_at, campaign_version, user_periods)
SELECT gen_random_uuid(), %(p)s, %(c)s, e.id, e.end_user_id, ((e.g %% 997) + 1) * 0.01, 0,
    'Points', 'live', 'issued', e.occurred_at, e.occurred_at, 1, '{}'
FROM events e
""",
    # Every tenth reward is half clawed back an hour later (amounts of 3 decimals: 0.005...).
    """
WITH chosen AS (
    SELECT id, trigger_event_id, amount, issued_at FROM rewards_reward
    WHERE partnership_id = %(p)s AND (amount * 100)::int %% 10 = 0
), reversals AS (
    INSERT INTO rewards_reversal (
        id, partnership_id, trigger_event_id, mode, reason, requested_amount,
        cancelled_event, idempotency_key, request_hash, created_at)
    SELECT gen_random_uuid(), %(p)s, trigger_event_id, 'live', 'refund', NULL, false, NULL, '',
        issued_at + interval '1 hour'
    FROM chosen
    RETURNING id, trigger_event_id, created_at
)
INSERT INTO rewards_rewardadjustment (reversal_id, reward_id, amount, created_at)
SELECT v.id, c.id, c.amount / 2, v.created_at
FROM reversals v JOIN chosen c ON c.trigger_event_id = v.trigger_event_id
""",
    """
UPDATE rewards_reward r SET reversed_amount = a.amount
FROM rewards_rewardadjustment a WHERE a.reward_id = r.id
""",
]


@pytest.fixture
def big_shop():
    partnership = PartnershipFactory(time_zone="UTC")
    campaign = CampaignFactory(trigger=TriggerFactory(partnership=partnership))
    params = {
        "p": partnership.id,
        "t": campaign.trigger_id,
        "c": campaign.id,
        "rows": ROWS,
        "start": START,
    }
    with connection.cursor() as cursor:
        for statement in SEED:
            cursor.execute(
                statement, {name: params[name] for name in params if f"%({name})s" in statement}
            )
        cursor.execute("ANALYZE")
    return campaign


def sql_sums(query: str, partnership_id) -> tuple[int, Decimal, Decimal]:
    with connection.cursor() as cursor:
        cursor.execute(query, {"p": partnership_id, "start": START, "end": END})
        return cursor.fetchone()


def csv_sums(path: Path, *columns: str) -> tuple:
    count, sums = 0, [Decimal(0)] * len(columns)
    with path.open(newline="") as file:
        for row in csv.DictReader(file):
            count += 1
            sums = [
                total + Decimal(row[column]) for total, column in zip(sums, columns, strict=True)
            ]
    return (count, *sums)


def test_memory_stays_flat_and_the_csv_adds_up(big_shop, tmp_path):
    partnership = str(big_shop.partnership_id)
    target = tmp_path / "rewards.csv"
    days = ["--from", "2026-01-01", "--to", "2026-01-31"]
    small = [
        "--partnership",
        partnership,
        "--from",
        "2026-01-01",
        "--to",
        "2026-01-02",
        "--output",
        str(tmp_path / "small.csv"),
    ]
    export = ["--partnership", partnership, *days, "--output", str(target)]

    probe = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).with_name("rss_probe.py")),
            json.dumps(small),
            json.dumps(export),
        ],
        env=process_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert probe.returncode == 0, probe.stderr
    growth = json.loads(probe.stdout.strip().splitlines()[-1])
    # 120,000 rows raise the peak no more than 8,640 (two chunks) do.
    assert growth["large"] - growth["small"] < FLAT_KB, growth
    rewards = sql_sums(
        "SELECT count(*), sum(amount), sum(reversed_amount) FROM rewards_reward "
        "WHERE partnership_id = %(p)s AND mode = 'live' "
        "AND issued_at >= %(start)s AND issued_at < %(end)s",
        big_shop.partnership_id,
    )
    assert rewards[0] == ROWS
    assert csv_sums(target, "amount", "reversed_amount") == rewards


def test_the_reversals_csv_adds_up_too(big_shop, tmp_path):
    target = tmp_path / "reversals.csv"

    run(
        "--partnership",
        str(big_shop.partnership_id),
        "--from",
        "2026-01-01",
        "--to",
        "2026-01-31",
        "--reversals",
        "--output",
        str(target),
    )

    count, total = sql_sums(
        "SELECT count(*), sum(a.amount) FROM rewards_rewardadjustment a "
        "JOIN rewards_reward r ON r.id = a.reward_id "
        "WHERE r.partnership_id = %(p)s AND a.created_at >= %(start)s AND a.created_at < %(end)s",
        big_shop.partnership_id,
    )
    assert count >= ROWS // 10 - 100
    assert csv_sums(target, "amount") == (count, total)
