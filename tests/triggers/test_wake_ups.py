"""Wake-ups for the workers: published only when none is pending, so that the broker holds a
bounded number of them whatever the load, and every event is still evaluated."""

import time

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from redis import Redis

from tests.faults.support import Load, Partner, events_check, ledger_check, settled
from tests.support import (
    celery_worker,
    free_port,
    http_ready,
    process_env,
    wait_until,
    web_server,
)
from triggers import dispatch


def queued_wake_ups() -> int:
    """Messages waiting in the broker this process publishes to (tests' CELERY_BROKER_URL)."""
    return Redis.from_url(django_settings.CELERY_BROKER_URL).llen("celery")


def test_a_wake_up_is_published_only_while_none_is_pending():
    before = queued_wake_ups()
    cache.delete(dispatch.PENDING_KEY)  # none pending (this run's broker has no worker)

    dispatch.wake_up_send(retry=False)
    dispatch.wake_up_send(retry=False)
    assert queued_wake_ups() == before + 1

    dispatch.wake_up_pending_clear()  # its task starts: an event from now on needs a message
    dispatch.wake_up_send(retry=False)
    assert queued_wake_ups() == before + 2


def test_without_the_shared_mark_a_wake_up_is_published_all_the_same(settings):
    before = queued_wake_ups()
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }

    assert dispatch.wake_up_send(retry=False) is False  # the mark was unreachable
    assert queued_wake_ups() > before


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_sustained_ingest_keeps_at_most_a_couple_of_wake_ups_in_the_broker(private_redis, tmp_path):
    """Two web processes under load while the one worker process drains the whole time (it
    polls the queue on after each event, and never hands over): on their own, each web
    process would publish ten wake-ups a second, all left waiting in the broker."""
    broker = Redis.from_url(private_redis)
    broker.flushdb()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    partner = Partner.rewarded([base], budgeted=50)
    env = process_env(
        CELERY_BROKER_URL=private_redis,
        EVENT_IDLE_LINGER_SECONDS="3",
        EVENT_TASK_SECONDS="60",
    )
    depths = []

    with (
        web_server(port, env, tmp_path / "web.log", workers=2),
        celery_worker(env, tmp_path / "worker.log", queues="celery"),
    ):
        wait_until(lambda: http_ready(f"{base}/readyz"), 30, "web server ready (web.log)")
        with Load(partner):
            until = time.monotonic() + 4
            while time.monotonic() < until:
                depths.append(broker.llen("celery"))
                time.sleep(0.02)
        accepted = len(partner.accepted())
        wait_until(settled(partner, accepted), 60, "every event evaluated (see worker.log)")

    assert accepted >= 100  # sustained: the web processes had events to wake the worker for
    assert max(depths) <= 2, f"wake-ups queued in the broker over time: {depths[::10]}"
    assert partner.unexpected() == []
    assert len(events_check(partner)) == accepted
    assert ledger_check(partner) == {
        "every": (accepted, 1 * accepted),
        "budgeted": (50, 250),
    }
