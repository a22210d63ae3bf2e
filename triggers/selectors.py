import uuid
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from config.localcache import config_cache
from partnerships.models import EndUser

from .models import Trigger, TriggerEvent
from .schemas import compile_schema


@dataclass(frozen=True, slots=True)
class TriggerRecord:
    id: int
    name: str
    status: str
    validator: Any  # compiled context schema
    client_sendable: bool = False  # apps may send it with a user token

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
            client_sendable=trigger.client_sendable,
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


def trigger_event_search(*, events: QuerySet, term: str, partnership_ids: list) -> QuerySet:
    """Pilot's event search, by exact values on indexed columns only (never a LIKE scan of
    the events table): an event id, a user's id, a user's external id (its ``EndUser`` first,
    by the unique (partnership, external_user_id) index) or an idempotency key (the unique
    (partnership, mode, key) index). ``partnership_ids``: the operator's partnerships."""
    term = term.strip()
    if not term:
        return events
    users = list(
        EndUser.objects.filter(
            partnership_id__in=partnership_ids, external_user_id=term
        ).values_list("pk", flat=True)
    )
    found = Q(
        partnership_id__in=partnership_ids,
        mode__in=TriggerEvent.Mode.values,
        idempotency_key=term,
    )
    try:
        as_uuid = uuid.UUID(term)
    except ValueError:
        as_uuid = None
    if as_uuid is not None:
        users.append(as_uuid)
        found |= Q(pk=as_uuid)
    if users:
        found |= Q(end_user_id__in=users)
    return events.filter(found)
