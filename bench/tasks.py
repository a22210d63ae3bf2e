from celery import shared_task


@shared_task(ignore_result=True)
def noop(event_id: str) -> None:
    """What the naive design publishes per request; nothing consumes it during a bench."""


@shared_task(ignore_result=True, acks_late=False)
def noop_early_ack(event_id: str) -> None:
    """The no-op with Celery's default acknowledgement (before running), for the bench's
    "Celery defaults" baseline."""
