"""Webhook pages in Pilot: secrets shown once; actions only for those who may change."""

import pytest
from django.utils import timezone

from rewards.webhooks.models import WebhookDelivery, WebhookEndpoint
from rewards.webhooks.services import webhook_endpoint_create

from .support import endpoint_for

pytestmark = pytest.mark.django_db

ENDPOINTS = "/pilot/rewards/webhookendpoint/"
DELIVERIES = "/pilot/rewards/webhookdelivery/"


def failed_delivery(endpoint) -> WebhookDelivery:
    now = timezone.now()
    return WebhookDelivery.objects.create(
        endpoint=endpoint,
        event_type="reward.issued",
        payload={"id": "x"},
        status="failed",
        attempts=10,
        next_attempt_at=now,
        created_at=now,
    )


def test_the_service_gives_a_new_endpoint_its_signing_secret(partnership):
    endpoint = webhook_endpoint_create(
        endpoint=WebhookEndpoint(partnership=partnership, url="https://p.example/hooks")
    )

    endpoint.refresh_from_db()
    assert endpoint.secret.startswith("whsec_") and len(endpoint.secret) > 40


def test_creating_an_endpoint_in_pilot_shows_its_secret_once(admin_client, partnership):
    response = admin_client.post(
        f"{ENDPOINTS}add/",
        {
            "partnership": partnership.id,
            "url": "https://partner.example/hooks",
            "event_types": "reward.issued",
            "modes": "live",
            "active": "on",
        },
        follow=True,
    )

    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret.startswith("whsec_")
    assert endpoint.secret in response.content.decode()
    page = admin_client.get(f"{ENDPOINTS}{endpoint.pk}/change/")
    assert endpoint.secret not in page.content.decode()


def test_an_operator_redelivers_a_failed_delivery(admin_client, partnership):
    delivery = failed_delivery(endpoint_for(partnership, "https://partner.example/hooks"))

    admin_client.post(DELIVERIES, {"action": "redeliver", "_selected_action": [delivery.pk]})

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 0)


def test_an_operator_rotates_a_secret_and_sees_the_new_one_once(admin_client, partnership):
    endpoint = endpoint_for(partnership, "https://partner.example/hooks")
    old = endpoint.secret

    response = admin_client.post(
        ENDPOINTS, {"action": "rotate_secret", "_selected_action": [endpoint.pk]}, follow=True
    )

    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.previous_secret == old
    assert endpoint.secret in response.content.decode()


def test_a_viewer_is_offered_no_rotation_and_cannot_post_one(pilot_viewer, partnership):
    endpoint = endpoint_for(partnership, "https://partner.example/hooks")
    secret = endpoint.secret

    listed = pilot_viewer.get(ENDPOINTS)
    page = pilot_viewer.get(f"{ENDPOINTS}{endpoint.pk}/change/")
    pilot_viewer.post(ENDPOINTS, {"action": "rotate_secret", "_selected_action": [endpoint.pk]})

    assert listed.status_code == page.status_code == 200
    assert 'value="rotate_secret"' not in listed.content.decode()
    assert 'name="_save"' not in page.content.decode()
    endpoint.refresh_from_db()
    assert (endpoint.secret, endpoint.previous_secret) == (secret, "")


def test_a_viewer_is_offered_no_redelivery_and_cannot_post_one(pilot_viewer, partnership):
    delivery = failed_delivery(endpoint_for(partnership, "https://partner.example/hooks"))

    listed = pilot_viewer.get(DELIVERIES)
    pilot_viewer.post(DELIVERIES, {"action": "redeliver", "_selected_action": [delivery.pk]})

    assert listed.status_code == 200
    assert 'value="redeliver"' not in listed.content.decode()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 10)


def test_a_viewer_cannot_add_an_endpoint(pilot_viewer, partnership):
    response = pilot_viewer.post(
        f"{ENDPOINTS}add/",
        {"partnership": partnership.id, "url": "https://x.example/", "modes": "live"},
    )

    assert response.status_code == 403
    assert not WebhookEndpoint.objects.exists()
