"""Two web processes, two workers and two beats (config/beat.py: one leads) against one
PostgreSQL and one Redis: each event is sent to both web processes (a retry that lands on the
other node), and still stored once, rewarded once, within the budget."""

import random
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from tests.support import (
    celery_beat,
    celery_worker,
    free_port,
    http_ready,
    wait_until,
    web_server,
)

from .support import Partner, events_check, ledger_check, settled, stack_env

pytestmark = [pytest.mark.faults, pytest.mark.slow]
EVENTS = 600


def test_two_of_every_process_keep_exactly_once_and_the_budget(private_db, broker, tmp_path):
    ports = [free_port(), free_port()]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    partner = Partner.rewarded(bases, budgeted=300)
    partner.campaign("capped", reward_value=Decimal("2"), max_rewards_per_user=5)  # 5 x 50
    sends = [(f"order-{n}", f"user-{n % 50}", base) for n in range(EVENTS) for base in bases]
    random.Random(6).shuffle(sends)
    env = stack_env(private_db.url, broker)

    with (
        web_server(ports[0], env, tmp_path / "web-1.log"),
        web_server(ports[1], env, tmp_path / "web-2.log"),
        celery_worker(env, tmp_path / "worker-1.log", queues="celery"),
        celery_worker(env, tmp_path / "worker-2.log", queues="celery"),
        celery_beat(env, tmp_path / "beat-1.log"),
        celery_beat(env, tmp_path / "beat-2.log"),
        ThreadPoolExecutor(12) as clients,
    ):
        wait_until(
            lambda: all(http_ready(f"{base}/readyz") for base in bases),
            30,
            "both web servers ready (see web-*.log)",
        )
        list(clients.map(lambda send: partner.deliver(*send), sends))
        wait_until(settled(partner, EVENTS), 60, "every event evaluated (see worker-*.log)")

    assert partner.unexpected() == []
    assert len(events_check(partner)) == EVENTS
    assert ledger_check(partner) == {
        "every": (EVENTS, Decimal(EVENTS)),
        "capped": (250, Decimal("500")),
        "budgeted": (300, Decimal("1500")),
    }
