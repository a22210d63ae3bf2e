"""Signed webhooks to partners, an outbox (docs/webhooks.md).

The way in is :func:`webhook_event_emit`: it writes one delivery per subscribed endpoint in the
caller's transaction. The sender (``tasks.send_due_webhooks``, queue "webhooks") sends them after
commit and retries with backoff for about a day.
"""

from .emit import CampaignNotice, webhook_event_emit
from .models import WebhookEventType

__all__ = ["CampaignNotice", "WebhookEventType", "webhook_event_emit"]
