"""PostgreSQL down for a few seconds while events are ingested and evaluated (real gunicorn,
worker and beat on the run's private server): the web tier answers 503 with a stable code,
stores nothing half, and everything accepted is evaluated once the server is back, without a
hand on anything."""

import time
from decimal import Decimal

import pytest

from config.errors import ErrorCode
from tests.support import celery_worker, free_port, http_ready, wait_until, web_server

from .support import Load, Partner, events_check, ledger_check, settled, stack_env

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def test_while_the_database_is_down_ingest_is_503_and_afterwards_every_event_is_evaluated(
    private_db, broker, tmp_path
):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    partner = Partner.rewarded([base], budgeted=200)
    env = stack_env(private_db.url, broker)

    with (
        web_server(port, env, tmp_path / "web.log"),
        celery_worker(env, tmp_path / "worker.log", beat=True, concurrency=2),
    ):
        wait_until(lambda: http_ready(f"{base}/readyz"), 30, "the web server ready (see web.log)")
        with Load(partner) as load:
            load.wait_for(300)
            with private_db.stopped():
                down = len(partner.answers)
                time.sleep(3)
                refused = [a for a in partner.answers[down:] if a.status == 503]
            load.wait_for(300)  # accepted again, no restart of ours
        accepted = len(partner.accepted())
        wait_until(settled(partner, accepted), 60, "every accepted event evaluated (worker.log)")

    assert refused, "no request reached the web tier while the database was down"
    assert partner.unexpected() == []  # no 500, no lost connection
    refusals = {(a.status, a.code, a.retry_after) for a in partner.answers if a.status >= 300}
    assert refusals == {(503, ErrorCode.SERVICE_UNAVAILABLE, "1")}
    assert len(events_check(partner)) == accepted
    assert ledger_check(partner) == {
        "every": (accepted, Decimal(accepted)),
        "budgeted": (200, Decimal("1000")),
    }
