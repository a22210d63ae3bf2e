import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from config.errors import ErrorCode
from tests.factories import TriggerEventFactory
from triggers.models import TriggerEvent

pytestmark = pytest.mark.django_db


def detail_url(event) -> str:
    return f"/partnerships/{event.partnership_id}/trigger-events/{event.id}"


@pytest.fixture
def event(trigger):
    return TriggerEventFactory(trigger=trigger, tags={"store": "42"})


def test_event_status_shows_the_event(partner_client, event):
    response = partner_client.get(detail_url(event))

    assert response.status_code == 200
    data = response.json()["data"]
    assert data["trigger_event_id"] == str(event.id)
    assert data["trigger_name"] == "transaction_completed"
    assert data["user_uuid"] == str(event.end_user_id)
    assert data["external_user_id"] == event.end_user.external_user_id
    assert data["transaction_context"] == event.context
    assert data["status"] == "queued"
    assert data["mode"] == "live"
    assert data["tags"] == {"store": "42"}
    assert data["processed_at"] is None


def test_event_of_another_partnership_is_404(partner_client, partnership):
    stranger = TriggerEventFactory()

    response = partner_client.get(f"/partnerships/{partnership.id}/trigger-events/{stranger.id}")

    assert response.status_code == 404
    assert response.json()["code"] == ErrorCode.TRIGGER_EVENT_DOES_NOT_EXIST


@pytest.mark.parametrize("event_id", [uuid.uuid4(), "not-a-uuid"])
def test_unknown_event_is_404(partner_client, partnership, event_id):
    response = partner_client.get(f"/partnerships/{partnership.id}/trigger-events/{event_id}")

    assert response.status_code == 404
    assert response.json()["code"] == ErrorCode.TRIGGER_EVENT_DOES_NOT_EXIST


def test_event_status_needs_a_key(api_client, event):
    response = api_client.get(detail_url(event))

    assert response.status_code == 400
    assert response.json()["code"] == ErrorCode.INVALID_TOKEN


def test_scheduled_event_can_be_cancelled_twice(partner_client, trigger):
    scheduled = TriggerEventFactory(
        trigger=trigger, status="scheduled", deliver_at=timezone.now() + timedelta(hours=1)
    )

    first = partner_client.post(detail_url(scheduled) + "/cancel")
    again = partner_client.post(detail_url(scheduled) + "/cancel")

    assert first.status_code == again.status_code == 200
    assert again.json()["data"]["status"] == "cancelled"
    scheduled.refresh_from_db()
    assert scheduled.status == "cancelled"


@pytest.mark.parametrize("status", ["queued", "processed", "failed"])
def test_event_past_scheduling_cannot_be_cancelled(partner_client, trigger, status):
    event = TriggerEventFactory(trigger=trigger, status=status)

    response = partner_client.post(detail_url(event) + "/cancel")

    assert response.status_code == 409
    assert response.json()["code"] == ErrorCode.TRIGGER_EVENT_NOT_CANCELLABLE
    event.refresh_from_db()
    assert event.status == status


def test_cancelling_another_partnerships_event_is_404(partner_client, partnership):
    stranger = TriggerEventFactory(status="scheduled")

    response = partner_client.post(
        f"/partnerships/{partnership.id}/trigger-events/{stranger.id}/cancel"
    )

    assert response.status_code == 404
    assert TriggerEvent.objects.get(pk=stranger.pk).status == "scheduled"
