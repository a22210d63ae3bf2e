from celery import shared_task

from .services.webhooks import webhook_deliveries_send_due

BATCH = 100


@shared_task
def send_due_webhooks() -> None:
    """Queue ``webhooks`` (its own workers). Woken after commits and by beat every 5 s."""
    while webhook_deliveries_send_due(limit=BATCH) == BATCH:
        pass
