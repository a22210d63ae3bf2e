# Celery autodiscovers this module: the webhook sender is registered from here.
from .webhooks.tasks import send_due_webhooks  # noqa: F401
