"""What the bench runs against: the servers the test suite would use, a database of its own
(``campaign_rewards_bench``), its fixtures, and gunicorn serving the project."""

import contextlib
import fcntl
import math
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from config import devstack

# `python -m bench.ab` gives each side of an A/B run its own database (their migrations differ).
DATABASE = os.environ.get("BENCH_DATABASE", "campaign_rewards_bench")
REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "14"))  # tests use 15, `make run` 0
TRIGGER_NAME = "transaction_completed"
CONTEXT_SCHEMA = {
    "type": "object",
    "properties": {
        "amount": {"type": "number"},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "merchant_category": {"type": "string"},
    },
    "required": ["amount", "currency"],
}
GUNICORN = ["-k", "gthread", "-w", "2", "--threads", "4", "--no-control-socket"]


def _with_path(url: str, path: str) -> str:
    return urllib.parse.urlsplit(url)._replace(path=path).geturl()


def resolve() -> dict[str, str]:
    """The environment for Django and gunicorn: the test suite's servers, our own database."""
    servers = devstack.resolve("test")
    print(f"bench: {devstack.summary(servers)}", file=sys.stderr)
    _create_database(servers["DATABASE_URL"])
    return {
        **os.environ,
        "DATABASE_URL": _with_path(servers["DATABASE_URL"], f"/{DATABASE}"),
        "CELERY_BROKER_URL": _with_path(servers["CELERY_BROKER_URL"], f"/{REDIS_DB}"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false",
        "BENCH_VIEWS": "true",
        "LOG_LEVEL": "WARNING",
    }


def run_with_django(run: Callable[[dict[str, str]], int]) -> int:
    """``run(env)`` with Django set up in this process on the bench's servers (``resolve``);
    embedded servers started for it are stopped afterwards."""
    env = resolve()
    os.environ.update(env)
    import django

    django.setup()
    try:
        return run(env)
    finally:
        devstack.stop_started()


def _create_database(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone():
            conn.execute(f'CREATE DATABASE "{DATABASE}"')


@dataclass(frozen=True)
class Fixture:
    partnership_id: uuid.UUID
    api_key: str


def prepare(users: int) -> Fixture:
    """Migrates, then a partnership with a fresh key, the trigger and `users` end users."""
    _exclusive()
    from django.core.management import call_command

    from partnerships.models import ApiKey, EndUser, Partnership
    from partnerships.services import api_key_issue, partnership_create
    from triggers.models import Trigger

    call_command("migrate", interactive=False, verbosity=0)
    partnership = Partnership.objects.filter(name="bench").first()
    if partnership is None:
        partnership, _ = partnership_create(name="bench", partner_name="Bench")
    ApiKey.objects.filter(partnership=partnership).delete()
    # High enough never to refuse bench traffic; the Redis counter is still paid per request.
    issued = api_key_issue(
        api_key=ApiKey(partnership=partnership, name="bench", rate_limit_per_second=10**7)
    )
    Trigger.objects.update_or_create(
        partnership=partnership,
        name=TRIGGER_NAME,
        defaults={"context_schema": CONTEXT_SCHEMA, "status": Trigger.Status.ACTIVE},
    )
    EndUser.objects.bulk_create(
        [EndUser(partnership=partnership, external_user_id=user_id(n)) for n in range(users)],
        ignore_conflicts=True,
    )
    return Fixture(partnership_id=partnership.id, api_key=issued.plaintext)


def _exclusive() -> None:
    """One bench at a time: they share the database, its fixture key and its events table."""
    hold_lock(devstack.VAR / "bench" / ".lock", "bench")


_held: list = []


def hold_lock(path: Path, what: str) -> None:
    """Takes the lock file ``path`` until this process exits, or exits if another holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    held = path.open("w")
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"bench: another {what} is running (lock {path}); retry later") from None
    _held.append(held)


def user_id(n: int) -> str:
    return f"user-{n:05d}"


def events_reset() -> None:
    """Empties the events table (and the broker queue) so every round starts alike."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE triggers_triggerevent CASCADE")
    broker_empty()


def broker_empty() -> None:
    """Drops the unconsumed task messages of the ``celery`` queue, and the wake-up mark with
    them: those messages are gone, so the next wake-up must be published."""
    from django.conf import settings
    from redis import Redis

    from triggers.dispatch import wake_up_pending_clear

    Redis.from_url(settings.CELERY_BROKER_URL).delete("celery")
    wake_up_pending_clear()


def events_count() -> int:
    from triggers.models import TriggerEvent

    return TriggerEvent.objects.count()


def database_facts() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        (version,) = cursor.fetchone()
        cursor.execute("SHOW synchronous_commit")
        (sync,) = cursor.fetchone()
        cursor.execute("SHOW fsync")
        (fsync,) = cursor.fetchone()
    return f"PostgreSQL {version} (synchronous_commit={sync}, fsync={fsync})"


@dataclass(frozen=True)
class Server:
    base_url: str
    pid: int

    def cpu_seconds(self) -> float:
        """CPU time used so far by the gunicorn workers (Linux /proc; NaN elsewhere)."""
        try:
            return cpu_seconds(children(self.pid))
        except OSError:
            return math.nan


def children(pid: int) -> list[int]:
    """A process's children (Linux /proc)."""
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) these processes have used so far (Linux /proc)."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        ticks += int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_busy(seconds: float = 1.0) -> float:
    """Share of all CPUs busy over the next `seconds` (Linux /proc/stat; NaN elsewhere)."""

    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait

    try:
        total, idle = sample()
        time.sleep(seconds)
        total2, idle2 = sample()
    except OSError:
        return math.nan
    return 1 - (idle2 - idle) / max(1, total2 - total)


@contextlib.contextmanager
def gunicorn(env: dict[str, str], port: int, options: list[str] = GUNICORN) -> Iterator[Server]:
    base_url = f"http://{devstack.HOST}:{port}"
    command = [sys.executable, "-m", "gunicorn", "config.wsgi:application", *options]
    proc = subprocess.Popen(
        [*command, "-b", f"{devstack.HOST}:{port}", "--log-level", "warning"],
        cwd=devstack.ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        _wait_ready(base_url, proc)
        yield Server(base_url, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(devstack.STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_ready(base_url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{base_url}/readyz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("bench: gunicorn did not become ready")
        time.sleep(0.2)
