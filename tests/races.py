"""Racing calls queued behind a row lock: each is started while this test holds the lock and
joins the queue before the next starts, so the order they are let through is the one given.
A call that reads the row without the lock reads it as it was before any of them."""

import threading
from collections.abc import Callable

from django.db import connection, transaction
from django.db.models import QuerySet

WAIT_SECONDS = 10


def lock_waiters() -> int:
    """How many sessions of the test database wait for a lock: the first racer for ours, the
    next for the first's (read afresh: inside a transaction PostgreSQL would keep showing its
    first snapshot of the activity)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def race_behind_lock(row: QuerySet, calls: dict[str, Callable], order: list[str]) -> dict:
    """Runs ``calls`` (each in its own thread and connection) queued in ``order`` behind a
    lock on ``row``; returns each one's answer, or the exception it raised."""
    answers: dict = {}
    pause = threading.Event()

    def run(name: str) -> None:
        try:
            answers[name] = calls[name]()
        except Exception as exc:  # the caller's assertions show it
            answers[name] = exc
        finally:
            connection.close()

    racers = [threading.Thread(target=run, args=(name,)) for name in order]
    with transaction.atomic():
        row.select_for_update().get()
        for waiting, racer in enumerate(racers, start=1):
            racer.start()
            for _ in range(WAIT_SECONDS * 20):
                if lock_waiters() >= waiting:
                    break
                pause.wait(0.05)
    for racer in racers:
        racer.join(timeout=30)
    return answers
