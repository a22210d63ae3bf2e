import time

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from .services.processing import (
    trigger_events_process_batch,
    trigger_events_promote_due,
    trigger_events_waiting,
)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=10,
)
def process_pending_events() -> None:
    """Drains the queue batch by batch; hands over to a fresh message after a few seconds."""
    deadline = time.monotonic() + settings.EVENT_TASK_SECONDS
    batch = settings.EVENT_BATCH_SIZE
    while trigger_events_process_batch(limit=batch) == batch:
        if time.monotonic() > deadline:
            process_pending_events.delay()
            return


@shared_task
def dispatch_due_events() -> None:
    """Celery beat, every second: due scheduled events, and anything a lost wake-up left."""
    trigger_events_promote_due()
    if trigger_events_waiting():
        process_pending_events.delay()
