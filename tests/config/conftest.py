"""The world the served OpenAPI examples assume (config/openapi_examples.py)."""

import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone

from config import openapi_examples as examples
from partnerships import keys
from partnerships.models import ApiKey, Partnership
from rewards.services.demo import demo_catalog_ensure
from tests.factories import EndUserFactory, PartnershipFactory, TriggerEventFactory
from tests.support import process_queued
from triggers.models import Trigger, TriggerEvent

# Fixed, so that a schema loaded at import can name them.
PARTNERSHIP_ID = uuid.UUID("00000000-0000-4000-8000-00000000e1a0")
API_KEY, _KEY_PREFIX, _KEY_HASH = keys.generate("live")


@dataclass(frozen=True)
class World:
    partnership: Partnership
    api_key: str
    event: TriggerEvent  # the user's older purchase, evaluated and rewarded


@pytest.fixture
def example_world(transactional_db) -> World:
    """The demo catalog, the examples' user with two rewarded purchases, a known key."""
    partnership = PartnershipFactory(id=PARTNERSHIP_ID)
    ApiKey.objects.create(
        partnership=partnership,
        name="examples",
        prefix=_KEY_PREFIX,
        hashed_key=_KEY_HASH,
        rate_limit_per_second=1_000_000,
    )
    demo_catalog_ensure(partnership=partnership)
    trigger = Trigger.objects.get(partnership=partnership, name=examples.TRIGGER)
    user = EndUserFactory(
        partnership=partnership, id=examples.USER_UUID, external_user_id=examples.USER
    )
    now = timezone.now()
    events = [
        TriggerEventFactory(
            trigger=trigger,
            end_user=user,
            context=examples.PURCHASE,
            occurred_at=now - timedelta(hours=hours),
            received_at=now - timedelta(hours=hours),
            deliver_at=now - timedelta(hours=hours),
            **({"id": uuid.UUID(examples.EVENT_ID)} if hours == 2 else {}),
        )
        for hours in (2, 1)
    ]
    process_queued()
    return World(partnership, API_KEY, events[0])
