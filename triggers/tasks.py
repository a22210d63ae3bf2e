from celery import current_app, shared_task

from .dispatch import wake_up_send
from .services.processing import trigger_events_promote_due, trigger_events_waiting

# The task that evaluates queued events. It is defined by the app that evaluates them
# (rewards.tasks), which hands the queue its processor; this app sends it by name. The name is
# kept from when it lived here, for messages in flight.
PROCESS_PENDING_EVENTS = "triggers.tasks.process_pending_events"


def process_pending_events_send(*, retry: bool = True) -> None:
    current_app.send_task(PROCESS_PENDING_EVENTS, retry=retry)


@shared_task
def dispatch_due_events() -> None:
    """Celery beat, every second: due scheduled events, stalled claims, and anything a lost
    wake-up left."""
    trigger_events_promote_due()
    if trigger_events_waiting():
        wake_up_send(retry=True)  # unless one is pending (triggers/dispatch.py)
