import uuid
from dataclasses import dataclass
from typing import Any

from config.localcache import config_cache

from .models import Trigger, TriggerEvent
from .schemas import compile_schema


@dataclass(frozen=True, slots=True)
class TriggerRecord:
    id: int
    name: str
    status: str
    validator: Any  # compiled context schema

    @property
    def is_active(self) -> bool:
        return self.status == Trigger.Status.ACTIVE


def trigger_record(*, partnership_id: uuid.UUID, name: str) -> TriggerRecord | None:
    """The trigger with its compiled schema, from the per-process cache when warm."""

    def load() -> TriggerRecord | None:
        trigger = Trigger.objects.filter(partnership_id=partnership_id, name=name).first()
        if trigger is None:
            return None
        return TriggerRecord(
            id=trigger.id,
            name=trigger.name,
            status=trigger.status,
            validator=compile_schema(trigger.context_schema),
        )

    return config_cache.get(("trigger", partnership_id, name), load, cache_none=False)


def trigger_event_get(
    *, partnership_id: uuid.UUID, mode: str, event_id: str
) -> TriggerEvent | None:
    """The event, if it belongs to the partnership and was sent with a key of this mode:
    a test key never sees a live event, nor a live key a test one."""
    try:
        event_uuid = uuid.UUID(event_id)
    except ValueError:
        return None
    return (
        TriggerEvent.objects.select_related("trigger", "end_user")
        .filter(partnership_id=partnership_id, mode=mode, pk=event_uuid)
        .first()
    )
