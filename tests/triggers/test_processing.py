from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import TriggerEventFactory
from triggers.services.processing import (
    trigger_events_process_batch,
    trigger_events_promote_due,
)

pytestmark = pytest.mark.django_db


def test_a_batch_marks_queued_events_processed(trigger):
    events = TriggerEventFactory.create_batch(3, trigger=trigger)

    claimed = trigger_events_process_batch(limit=10)

    assert claimed == 3
    for event in events:
        event.refresh_from_db()
        assert event.status == "processed"
        assert event.processed_at is not None
        assert event.attempts == 1


def test_a_batch_takes_at_most_its_limit_oldest_first(trigger):
    now = timezone.now()
    old = TriggerEventFactory(trigger=trigger, deliver_at=now - timedelta(minutes=5))
    TriggerEventFactory.create_batch(2, trigger=trigger, deliver_at=now)

    assert trigger_events_process_batch(limit=1) == 1
    old.refresh_from_db()
    assert old.status == "processed"


def test_scheduled_events_wait_until_due(trigger):
    later = TriggerEventFactory(
        trigger=trigger, status="scheduled", deliver_at=timezone.now() + timedelta(hours=1)
    )
    due = TriggerEventFactory(
        trigger=trigger, status="scheduled", deliver_at=timezone.now() - timedelta(seconds=1)
    )

    promoted = trigger_events_promote_due()
    trigger_events_process_batch(limit=10)

    assert promoted == 1
    later.refresh_from_db()
    due.refresh_from_db()
    assert later.status == "scheduled"
    assert due.status == "processed"


def test_cancelled_events_are_never_processed(trigger):
    cancelled = TriggerEventFactory(trigger=trigger, status="cancelled")

    trigger_events_promote_due()

    assert trigger_events_process_batch(limit=10) == 0
    cancelled.refresh_from_db()
    assert cancelled.status == "cancelled"
