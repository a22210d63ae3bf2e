import uuid

from config.localcache import config_cache

from .models import WebhookEndpoint


def webhook_endpoint_ids_subscribed(
    *, partnership_id: uuid.UUID, event_type: str, mode: str
) -> list[uuid.UUID]:
    """Active endpoints of the partnership that receive ``event_type`` in ``mode`` (live or
    test). Cached per process: evaluation asks for every reward it issues."""

    def load() -> list[tuple]:
        return list(
            WebhookEndpoint.objects.filter(partnership_id=partnership_id, active=True).values_list(
                "id", "event_types", "modes"
            )
        )

    rows = config_cache.get(("webhooks", partnership_id), load)
    return [
        endpoint_id
        for endpoint_id, types, modes in rows
        if event_type in types and WebhookEndpoint.receives(modes, mode)
    ]
