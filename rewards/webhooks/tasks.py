from celery import shared_task

from .sending import webhook_deliveries_send_due

# Sent one after another: a small batch bounds how long a slow receiver holds up the rest
# (other sender threads claim other deliveries meanwhile).
BATCH = 10


# The name predates this module: messages in flight, the route and beat's schedule use it.
@shared_task(name="rewards.tasks.send_due_webhooks")
def send_due_webhooks() -> None:
    """Queue ``webhooks`` (its own workers). Woken after commits and by beat every 5 s."""
    while webhook_deliveries_send_due(limit=BATCH) == BATCH:
        pass
