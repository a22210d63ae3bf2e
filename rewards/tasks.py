from celery import shared_task
from django.db import InterfaceError, OperationalError

from triggers.services.processing import trigger_events_process_pending
from triggers.tasks import PROCESS_PENDING_EVENTS

from .services.evaluation import trigger_events_evaluate, trigger_events_failed_notify
from .services.webhooks import webhook_deliveries_send_due

# Sent one after another: a small batch bounds how long a slow receiver holds up the rest
# (other sender threads claim other deliveries meanwhile).
BATCH = 10


@shared_task(
    name=PROCESS_PENDING_EVENTS,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=10,
)
def process_pending_events() -> None:
    """Evaluates queued events batch by batch; hands over to a fresh message after a few
    seconds. Here, not in triggers: the queue is handed the evaluation as an argument."""
    if trigger_events_process_pending(
        processor=trigger_events_evaluate, on_failed=trigger_events_failed_notify
    ):
        process_pending_events.delay()


@shared_task
def send_due_webhooks() -> None:
    """Queue ``webhooks`` (its own workers). Woken after commits and by beat every 5 s."""
    while webhook_deliveries_send_due(limit=BATCH) == BATCH:
        pass
