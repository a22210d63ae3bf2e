"""Waking the workers after events are committed, without a broker message per request, and
without piling messages up in the broker.

Publishing a Celery message costs ~0.5 ms of CPU, as much as the rest of the ingest request.
Instead a request only sets a flag; one background thread per process sees it and publishes
a single ``process_pending_events`` message for everything accepted since its last one, then
waits ``EVENT_WAKE_INTERVAL`` before it may publish again (by name: the task is defined in
rewards, which this app does not import). Workers claim the events from PostgreSQL in
batches.

Across processes, a wake-up is published only when none is pending: the publisher first sets
a shared mark in Redis (the cache's, ``CACHE_URL``, whichever the broker; ``SET NX`` with an
expiry of ``EVENT_WAKE_PENDING_SECONDS``), and the task clears it as it starts, before its
first claim. A waker that finds the mark set publishes nothing: the pending message's task
has not started, so its first claim comes after the event's commit. An event committed after
a task cleared the mark is woken by a new message. So the broker holds at most about one
wake-up beyond what the workers are running, whatever the number of web processes; the
mark's expiry (longer than a task drains, ``EVENT_TASK_SECONDS``) bounds how long a lost
message (a worker killed holding it) can hold the others back. If the mark cannot be reached,
each process publishes anyway, at most once per ``_UNSHARED_INTERVAL``.

If the broker is down the message is lost, not the events: the mark is cleared, and the beat
task ``dispatch_due_events`` (through the same mark) wakes the workers again once it is back.
"""

import logging
import os
import threading
import time

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

PENDING_KEY = "events:wake-up-pending"
# A process publishes at most this often while the shared mark cannot be reached.
_UNSHARED_INTERVAL = 1.0


def wake_up_send(*, retry: bool) -> bool:
    """Publishes a wake-up unless one is pending. Returns False if the mark could not be
    reached (published all the same); raises what publishing raised."""
    from .tasks import process_pending_events_send

    try:
        first = cache.add(PENDING_KEY, 1, settings.EVENT_WAKE_PENDING_SECONDS)
        shared = True
    except Exception:  # any store failure: fail open, as the rate limit does
        logger.warning("The wake-up mark is unreachable; publishing without it", exc_info=True)
        first, shared = True, False
    if not first:
        return True
    try:
        process_pending_events_send(retry=retry)
    except Exception:
        if shared:
            wake_up_pending_clear()  # no message: the next wake-up must not wait for the expiry
        raise
    return shared


def wake_up_pending_clear() -> None:
    """No wake-up is pending any more: the worker's task starts draining (cleared before its
    first claim, so that an event committed from now on gets a message of its own; one
    committed before is claimed), or its message is gone (publishing failed; the broker's
    queue emptied by hand, as the benchmarks do between rounds)."""
    try:
        cache.delete(PENDING_KEY)
    except Exception:  # the mark expires on its own
        logger.warning("Could not clear the wake-up mark", exc_info=True)


class WorkerWaker:
    def __init__(self) -> None:
        self._wanted = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def wake(self) -> None:
        self._wanted.set()
        if self._thread is None or self._pid != os.getpid():
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None and self._pid == os.getpid():
                return
            # A forked process (gunicorn worker) needs its own thread.
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="worker-waker", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            shared = True
            try:
                shared = wake_up_send(retry=False)
            except Exception:
                logger.warning("Could not wake the workers; the scheduler will", exc_info=True)
            interval = settings.EVENT_WAKE_INTERVAL
            time.sleep(interval if shared else max(interval, _UNSHARED_INTERVAL))


waker = WorkerWaker()


def wake_workers() -> None:
    waker.wake()
