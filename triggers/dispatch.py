"""Waking the workers after events are committed, without a broker message per request.

Publishing a Celery message costs ~0.5 ms of CPU, as much as the rest of the ingest request.
Instead a request only sets a flag; one background thread per process sees it and publishes
a single ``process_pending_events`` message for everything accepted since its last one, then
waits ``EVENT_WAKE_INTERVAL`` before it may publish again (by name: the task is defined in
rewards, which this app does not import). Workers claim the events from PostgreSQL in
batches. If the broker is down the message is lost, not the events: the beat task
``dispatch_due_events`` wakes the workers again once it is back.
"""

import logging
import os
import threading
import time

from django.conf import settings

logger = logging.getLogger(__name__)


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
        from .tasks import process_pending_events_send

        while True:
            self._wanted.wait()
            self._wanted.clear()
            try:
                process_pending_events_send(retry=False)
            except Exception:
                logger.warning("Could not wake the workers; the scheduler will", exc_info=True)
            time.sleep(settings.EVENT_WAKE_INTERVAL)


waker = WorkerWaker()


def wake_workers() -> None:
    waker.wake()
