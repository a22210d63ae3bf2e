"""Celery beat that can run twice: one beat leads, any other stands by.

Every beat process asks PostgreSQL for one session-level advisory lock, on a connection of
its own; the one that holds it sends the schedule's messages, the others send nothing and ask
again every second. When the leader stops, crashes or loses its connection (PostgreSQL
restarted, the network), its session ends, the lock is free, and a standby takes over within
a second or two; the leader checks its connection every second, so a leader cut off stops
sending too. Each beat keeps its own schedule file (`--schedule`): the file only records when
entries last ran, and a new leader sends an overdue entry once, not its backlog.

The scheduled tasks are safe to run twice (they claim their rows), so the second or so in which
an old leader that lost its connection and a new one might overlap costs work, not money.
"""

import contextlib
import time

import psycopg
from celery.beat import PersistentScheduler
from celery.utils.log import get_logger
from django.conf import settings

logger = get_logger(__name__)

# pg_try_advisory_lock's key (a bigint, per database): "beat" in ASCII, with a project prefix.
LOCK_KEY = 0x4352_0000_6265_6174


def _conninfo() -> str:
    database = settings.DATABASES["default"]
    return psycopg.conninfo.make_conninfo(
        dbname=database["NAME"],
        user=database.get("USER") or None,
        password=database.get("PASSWORD") or None,
        host=database.get("HOST") or None,
        port=database.get("PORT") or None,
        connect_timeout=3,
        application_name="campaign-rewards-beat",
    )


class LeaderScheduler(PersistentScheduler):
    """``PersistentScheduler`` that ticks only while it holds the beat lock."""

    check_interval = 1.0  # seconds between checks of the lock (standby) or connection (leader)

    def __init__(self, *args, **kwargs) -> None:
        self._connection: psycopg.Connection | None = None
        self._leading = False
        self._said: bool | None = None  # what the log last said
        self._checked_at = float("-inf")
        super().__init__(*args, **kwargs)

    def tick(self, *args, **kwargs) -> float:
        if not self._lead():
            return self.check_interval
        return min(super().tick(*args, **kwargs), self.check_interval)

    def _lead(self) -> bool:
        now = time.monotonic()
        if now - self._checked_at < self.check_interval:
            return self._leading
        self._checked_at = now
        try:
            if self._connection is None or self._connection.closed:
                self._leading = False
                self._connection = psycopg.connect(_conninfo(), autocommit=True)
            if self._leading:  # still our session, so still our lock
                self._connection.execute("SELECT 1")
            else:
                row = self._connection.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
                self._leading = bool(row.fetchone()[0])
        except psycopg.Error as exc:
            self._leading = False
            self._disconnect()
            logger.warning("beat: no database for the leader lock (%s); standing by", exc)
        if self._leading != self._said:
            self._said = self._leading
            if self._leading:
                logger.info("beat: leading (holds the beat lock), sending the schedule")
            else:
                logger.info("beat: standing by (another beat leads)")
        return self._leading

    def _disconnect(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(psycopg.Error):
                self._connection.close()
            self._connection = None

    def close(self) -> None:
        super().close()
        self._disconnect()  # ends the session: the lock is free for a standby at once
