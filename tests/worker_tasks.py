"""Tasks only tests send, loaded into spawned workers with ``celery worker -I tests.worker_tasks``
(see ``tests.support.celery_worker(include=...)``)."""

import os
import signal
import threading
import time

from celery import shared_task
from django.db import connection

from rewards.services.evaluation import trigger_events_evaluate
from rewards.tasks import EVALUATION
from triggers.services.processing import trigger_events_process_pending


@shared_task(name="tests.record_worker")
def record_worker() -> None:
    """Records which worker ran it (process and thread) in ``test_worker_run``, in autocommit,
    as the queue's claim talks to the database."""
    time.sleep(0.05)  # long enough for the other processes and threads to get tasks too
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO test_worker_run (worker) VALUES (%s)",
            [f"{os.getpid()}/{threading.current_thread().name}"],
        )


@shared_task(name="tests.process_pending_events_crashing_on", acks_late=True)
def process_pending_events_crashing_on(event_id: str) -> None:
    """The worker's task, except that its evaluation kills the worker process (SIGKILL: nothing
    runs after it, as in a native crash or the kernel's OOM killer) whenever the batch holds
    ``event_id``."""

    def processor(events):
        if any(str(event.id) == event_id for event in events):
            os.kill(os.getpid(), signal.SIGKILL)
        return trigger_events_evaluate(events)

    trigger_events_process_pending(**{**EVALUATION, "processor": processor})
