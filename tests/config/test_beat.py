"""Two beats against one PostgreSQL (config/beat.py): one leads and sends the schedule, the
other stands by, and takes over when the leader dies or the database restarts. Messages are
counted on a private Redis by their sender (Celery's ``origin`` header: ``gen<pid>@host``)."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from redis import Redis

from tests.support import ROOT, process_env, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]
DISPATCH = "triggers.tasks.dispatch_due_events"  # every EVENT_DISPATCH_INTERVAL seconds


class Beat:
    def __init__(self, directory: Path, name: str, postgres_url: str, broker_url: str) -> None:
        self.log = directory / f"beat-{name}.log"
        env = process_env(
            DATABASE_URL=postgres_url, CELERY_BROKER_URL=broker_url, EVENT_DISPATCH_INTERVAL="0.5"
        )
        command = [sys.executable, "-m", "celery", "-A", "config", "beat", "-l", "info"]
        command += ["--schedule", str(directory / f"beat-{name}-schedule")]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def said(self, text: str) -> bool:
        return text in self.log.read_text()

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def _senders(redis: Redis, seconds: float) -> Counter:
    """The pids that sent the dispatch task during the next ``seconds``."""
    redis.delete("celery")
    time.sleep(seconds)
    senders = Counter()
    for raw in redis.lrange("celery", 0, -1):
        headers = json.loads(raw)["headers"]
        if headers["task"] == DISPATCH:
            senders[int(headers["origin"].split("@")[0].removeprefix("gen"))] += 1
    return senders


@pytest.fixture
def beats(tmp_path, private_postgres, private_redis):
    started = []

    def start(name: str) -> Beat:
        beat = Beat(tmp_path, name, private_postgres.url, private_redis)
        started.append(beat)
        return beat

    yield start
    for beat in started:
        beat.kill()


def test_one_of_two_beats_sends_the_schedule_and_the_other_takes_over_when_it_dies(
    beats, private_redis
):
    redis = Redis.from_url(private_redis)
    first = beats("first")
    wait_until(lambda: first.said("beat: leading"), 30, "the first beat leading")
    second = beats("second")
    wait_until(lambda: second.said("beat: standing by"), 30, "the second beat standing by")

    senders = _senders(redis, 3)

    assert set(senders) == {first.process.pid}, (senders, first.process.pid)
    assert 4 <= senders[first.process.pid] <= 8  # every 0.5 s, once: not twice

    first.kill()  # no goodbye: its session ends with its socket, and the lock with it
    wait_until(lambda: second.said("beat: leading"), 15, "the second beat taking over")
    senders = _senders(redis, 3)

    assert set(senders) == {second.process.pid}, (senders, second.process.pid)
    assert senders[second.process.pid] >= 4


def test_after_a_database_restart_exactly_one_beat_leads_again(
    beats, private_postgres, private_redis
):
    redis = Redis.from_url(private_redis)
    first, second = beats("first"), beats("second")
    wait_until(lambda: first.said("beat: leading") or second.said("beat: leading"), 30, "a leader")
    wait_until(
        lambda: first.said("beat: standing by") or second.said("beat: standing by"),
        30,
        "a standby",
    )

    private_postgres.restart()  # every session cut: the lock is gone
    time.sleep(3)  # both notice within a second, reconnect, and ask again
    senders = _senders(redis, 3)

    assert len(senders) == 1, senders
    assert next(iter(senders)) in {first.process.pid, second.process.pid}
    assert sum(senders.values()) >= 4
