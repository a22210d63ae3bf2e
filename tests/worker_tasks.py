"""Tasks only tests send, loaded into spawned workers with ``celery worker -I tests.worker_tasks``
(see ``tests.support.celery_worker(include=...)``)."""

import os
import threading
import time

from celery import shared_task
from django.db import connection


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
