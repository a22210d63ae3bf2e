"""Ingest behind PgBouncer in transaction mode (Debian's 1.18, which cannot carry prepared
statements across server connections): with ``DATABASE_PREPARE_INGEST=false`` every event is
stored; with the statement prepared, a transaction that lands on another server connection
fails. ``.ci/run`` installs PgBouncer; without it the test says so and is skipped (it fails
under CI=true)."""

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import orjson
import psycopg
import pytest
from django.db import connection

from tests.servers import answers
from tests.support import database_at, free_port, wait_until
from triggers.models import TriggerEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
PGBOUNCER = Path("/usr/sbin/pgbouncer")


@pytest.fixture
def pgbouncer():
    """A PgBouncer in transaction mode in front of the test database, with two server
    connections used in turn (``server_round_robin``), as a busy pool would hand them out."""
    if not PGBOUNCER.exists():
        reason = f"PgBouncer is missing at {PGBOUNCER} (apt-get install pgbouncer; .ci/run does)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    db = connection.settings_dict
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    (directory / "users.txt").write_text(f'"{db["USER"]}" ""\n')
    (directory / "pgbouncer.ini").write_text(
        f"""[databases]
rewards = host={db["HOST"] or "127.0.0.1"} port={db["PORT"] or 5432} dbname={db["NAME"]}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory / "users.txt"}
pool_mode = transaction
default_pool_size = 2
min_pool_size = 2
server_round_robin = 1
ignore_startup_parameters = extra_float_digits,options
logfile = {directory / "pgbouncer.log"}
"""
    )
    command = [str(PGBOUNCER), str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:  # it refuses to run as root: as postgres, owning its directory
        command[1:1] = ["-u", "postgres"]
        for path in [directory, *directory.iterdir()]:
            shutil.chown(path, user="postgres")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: answers(port), 10, "PgBouncer listening")
        # The pool starts with its first client; its janitor then opens the second server
        # connection (min_pool_size) within a second or so.
        url = f"postgres://{db['USER']}@127.0.0.1:{port}/rewards"
        with psycopg.connect(url, autocommit=True, prepare_threshold=None) as first:
            first.execute("SELECT 1")
            wait_until(lambda: _servers(url) >= 2, 10, "two server connections in the pool")
        yield port
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


def _servers(url: str) -> int:
    """Distinct server backends a few transactions land on (round robin over the pool)."""
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
        return len({conn.execute("SELECT pg_backend_pid()").fetchone()[0] for _ in range(6)})


def through(port: int):
    """The default connection goes through PgBouncer inside (the test database's tables)."""
    return database_at(f"postgres://{connection.settings_dict['USER']}@127.0.0.1:{port}/rewards")


def _send(client, trigger, n: int):
    body = {
        "trigger_name": trigger.name,
        "external_user_id": f"user-{n % 3}",
        "transaction_context": {"amount": 30, "currency": "EUR"},
    }
    return client.post(
        f"/partnerships/{trigger.partnership_id}/triggers",
        orjson.dumps(body),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=f"order-{n}",
    )


def test_ingest_without_preparing_works_behind_pgbouncer_in_transaction_mode(
    pgbouncer, partner_client, trigger, settings
):
    settings.DATABASE_PREPARE_INGEST = False
    with through(pgbouncer):
        answers = [_send(partner_client, trigger, n) for n in range(12)]
        replay = _send(partner_client, trigger, 0)

    assert [a.status_code for a in answers] == [200] * 12, [a.content for a in answers]
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert TriggerEvent.objects.count() == 12


def test_the_prepared_ingest_statement_fails_there(pgbouncer, partner_client, trigger, settings):
    settings.DATABASE_PREPARE_INGEST = True
    partner_client.raise_request_exception = False  # "prepared statement does not exist"
    with through(pgbouncer):
        statuses = [_send(partner_client, trigger, n).status_code for n in range(12)]

    assert 500 in statuses, statuses  # why the setting exists
