import uuid

from triggers.models import TriggerEvent
from triggers.selectors import trigger_event_get

from .models import Reward


def trigger_event_get_with_rewards(
    *, partnership_id: uuid.UUID, event_id: str
) -> TriggerEvent | None:
    event = trigger_event_get(partnership_id=partnership_id, event_id=event_id)
    if event is not None:
        event.reward_list = list(
            Reward.objects.filter(trigger_event=event)
            .select_related("campaign", "partnership")
            .order_by("issued_at", "id")
        )
    return event
