"""Clients retry: the same events sent four times each, shuffled, sixteen at a time, while the
workers evaluate them, then all once more after they are evaluated."""

import random
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from tests.support import celery_worker, free_port, http_ready, wait_until, web_server

from .support import Partner, events_check, ledger_check, settled, stack_env

pytestmark = [pytest.mark.faults, pytest.mark.slow]
EVENTS, COPIES = 200, 4


def test_duplicated_and_reordered_retries_make_one_event_and_one_reward_each(
    private_db, broker, tmp_path
):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    partner = Partner.rewarded([base], budgeted=100)
    sends = [(f"order-{n}", f"user-{n % 20}") for n in range(EVENTS) for _ in range(COPIES)]
    random.Random(13).shuffle(sends)
    env = stack_env(private_db.url, broker)

    with (
        web_server(port, env, tmp_path / "web.log", workers=2),
        celery_worker(env, tmp_path / "worker.log", beat=True),
        ThreadPoolExecutor(16) as clients,
    ):
        wait_until(lambda: http_ready(f"{base}/readyz"), 30, "the web server ready (see web.log)")
        list(clients.map(lambda send: partner.deliver(*send), sends))
        wait_until(settled(partner, EVENTS), 60, "every event evaluated (see worker.log)")
        late = list(clients.map(lambda send: partner.deliver(*send), reversed(sends[:EVENTS])))

    assert partner.unexpected() == []
    assert all(answer.replayed for answer in late)
    originals = [a for a in partner.answers if 200 <= a.status < 300 and not a.replayed]
    assert sorted(a.key for a in originals) == sorted(f"order-{n}" for n in range(EVENTS))
    assert len(events_check(partner)) == EVENTS
    assert ledger_check(partner) == {
        "every": (EVENTS, Decimal(EVENTS)),
        "budgeted": (100, Decimal("500")),
    }
