"""The broker (a Redis of this test's own) killed during sustained ingest and started again,
empty: the events are in PostgreSQL, not in its messages, so every accepted one is evaluated,
and none twice (real gunicorn, worker and beat)."""

import contextlib
import signal
import time
from decimal import Decimal

import pytest

from tests.servers import answers
from tests.support import (
    celery_worker,
    free_port,
    http_ready,
    redis_server,
    stop,
    wait_until,
    web_server,
)

from .support import Load, Partner, events_check, ledger_check, settled, stack_env

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def test_every_event_accepted_while_the_broker_dies_and_returns_is_evaluated_once(
    private_db, tmp_path
):
    redis_port, port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    partner = Partner.rewarded([base], budgeted=200)
    env = stack_env(private_db.url, f"redis://127.0.0.1:{redis_port}/0")

    with contextlib.ExitStack() as brokers:  # stopped last: the workers stop with a broker
        broker = brokers.enter_context(redis_server(redis_port, tmp_path / "redis-1.log"))
        wait_until(lambda: answers(redis_port), 10, "the broker up (see redis-1.log)")
        with (
            web_server(port, env, tmp_path / "web.log"),
            celery_worker(env, tmp_path / "worker.log", beat=True),
        ):
            wait_until(lambda: http_ready(f"{base}/readyz"), 30, "web server ready (web.log)")
            with Load(partner) as load:
                wait_until(settled(partner, 200), 60, "events evaluated (see worker.log)")
                stop(broker, signal.SIGKILL)  # with every message in it
                before = load.accepted
                time.sleep(3)
                assert load.accepted > before  # ingest goes on without a broker
                brokers.enter_context(redis_server(redis_port, tmp_path / "redis-2.log"))
                wait_until(lambda: answers(redis_port), 10, "the broker back (redis-2.log)")
                load.wait_for(300)
            accepted = len(partner.accepted())
            wait_until(settled(partner, accepted), 60, "every event evaluated (see worker.log)")

    assert partner.unexpected() == []
    assert len(events_check(partner)) == accepted
    assert ledger_check(partner) == {
        "every": (accepted, Decimal(accepted)),
        "budgeted": (200, Decimal("1000")),
    }
