"""API keys, webhook endpoints, dry runs and backtests on the management API."""

import pytest
from rest_framework.test import APIClient

from partnerships import roles
from partnerships.models import ApiKey, AuditEntry
from rewards.simulation.models import Backtest
from rewards.webhooks.models import WebhookEndpoint
from tests.factories import CampaignFactory, TriggerEventFactory

from .conftest import operator, staff_client, url

pytestmark = pytest.mark.django_db


@pytest.fixture
def developer_api(django_user_model, partnership):
    user = operator(django_user_model, "dev", roles.DEVELOPER, partnership)
    return staff_client(user, roles.DEVELOPER, partnership)


def test_an_api_key_is_shown_once_works_and_is_revoked(developer_api, partnership):
    created = developer_api.post(
        url(partnership, "api-keys"), {"name": "backend", "mode": "test"}, format="json"
    )
    assert created.status_code == 201, created.json()
    plaintext = created.json()["data"]["api_key"]
    prefix = created.json()["data"]["prefix"]
    assert plaintext.startswith("pk_test_")
    listed = developer_api.get(url(partnership, "api-keys")).json()["data"]["results"]
    assert prefix in [key["prefix"] for key in listed]
    assert all("api_key" not in key for key in listed)

    partner = APIClient()
    partner.credentials(HTTP_X_API_KEY=plaintext)
    assert partner.get(f"/partnerships/{partnership.pk}").status_code == 200

    revoked = developer_api.post(url(partnership, "api-keys", prefix, "revoke"))
    assert revoked.status_code == 200
    assert revoked.json()["data"]["status"] == "revoked"
    assert partner.get(f"/partnerships/{partnership.pk}").status_code == 400
    assert list(
        AuditEntry.objects.filter(
            target_type="partnerships.apikey", target_id=str(ApiKey.objects.get(prefix=prefix).pk)
        )
        .order_by("at")
        .values_list("action", flat=True)
    ) == ["apikey.create", "apikey.revoke"]


def test_an_api_key_of_no_mode_is_refused(developer_api, partnership):
    response = developer_api.post(url(partnership, "api-keys"), {"mode": "both"}, format="json")
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["mode"]
    assert not ApiKey.objects.filter(partnership=partnership, mode="both").exists()


def test_a_webhook_endpoints_secret_is_shown_once(developer_api, partnership):
    created = developer_api.post(
        url(partnership, "webhook-endpoints"),
        {"url": "https://partner.example/hooks", "event_types": ["reward.issued"]},
        format="json",
    )
    assert created.status_code == 201, created.json()
    endpoint = WebhookEndpoint.objects.get(pk=created.json()["data"]["id"])
    assert created.json()["data"]["secret"] == endpoint.secret
    shown = developer_api.get(url(partnership, "webhook-endpoints", endpoint.pk))
    assert "secret" not in shown.json()["data"]

    changed = developer_api.patch(
        url(partnership, "webhook-endpoints", endpoint.pk),
        {"active": False},
        format="json",
        HTTP_IF_MATCH=shown["ETag"],
    )
    assert changed.status_code == 200
    stale = developer_api.patch(
        url(partnership, "webhook-endpoints", endpoint.pk),
        {"active": True},
        format="json",
        HTTP_IF_MATCH=shown["ETag"],
    )
    assert stale.status_code == 412


def test_a_webhook_endpoint_is_validated_as_in_pilot(developer_api, partnership):
    response = developer_api.post(
        url(partnership, "webhook-endpoints"),
        {"url": "not a url", "event_types": ["reward.exploded"]},
        format="json",
    )
    assert response.status_code == 422
    assert [e["field"][:11] for e in response.json()["errors"]] == ["event_types"]
    response = developer_api.post(
        url(partnership, "webhook-endpoints"),
        {"url": "not a url", "event_types": ["reward.issued"]},
        format="json",
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["url"]


def test_a_dry_run_judges_a_sample_and_writes_nothing(admin_api, trigger, partnership):
    campaign = CampaignFactory(trigger=trigger, condition="context.amount >= 20.0")
    response = admin_api.post(
        url(partnership, "dry-runs"),
        {
            "trigger_id": trigger.pk,
            "external_user_id": "u-1",
            "context": {"amount": 25, "currency": "USD"},
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    [decision] = response.json()["data"]["decisions"]
    assert decision["campaign_id"] == str(campaign.pk)
    assert decision["outcome"] == "rewarded"


def test_a_dry_run_refuses_a_context_the_api_would(admin_api, trigger, partnership):
    response = admin_api.post(
        url(partnership, "dry-runs"),
        {"trigger_id": trigger.pk, "external_user_id": "u-1", "context": {"amount": "x"}},
        format="json",
    )
    assert response.status_code == 422
    assert all(e["field"].startswith("context") for e in response.json()["errors"])


def dry_run_at(admin_api, trigger, when: str):
    return admin_api.post(
        url(trigger.partnership, "dry-runs"),
        {
            "trigger_id": trigger.pk,
            "external_user_id": "u-1",
            "context": {"amount": 25, "currency": "USD"},
            "occurred_at": when,
        },
        format="json",
    )


@pytest.mark.parametrize(
    ("when", "time_zone"),
    [
        ("0001-01-01T00:00:00Z", "America/New_York"),
        ("0001-01-01T00:30:00+01:00", "UTC"),
        ("9999-12-31T23:59:00Z", "Asia/Tokyo"),
        ("1999-12-31T23:59:59Z", "UTC"),
        ("2201-01-01T00:00:00Z", "UTC"),
    ],
)
def test_a_dry_run_at_a_time_no_campaign_can_run_is_422_at_occurred_at(
    admin_api, trigger, partnership, when, time_zone
):
    """Near the calendar's ends a period cap's day does not exist in some zones."""
    partnership.time_zone = time_zone
    partnership.save()
    CampaignFactory(trigger=trigger, max_rewards_per_user_per_period=1, period="day")
    response = dry_run_at(admin_api, trigger, when)
    assert response.status_code == 422, response.content
    assert [e["field"] for e in response.json()["errors"]] == ["occurred_at"]


def test_a_dry_run_at_the_ends_of_campaigns_dates_is_judged(admin_api, trigger, partnership):
    partnership.time_zone = "Asia/Tokyo"
    partnership.save()
    CampaignFactory(trigger=trigger, max_rewards_per_user_per_period=1, period="day")
    for when in ("2000-01-01T00:00:00Z", "2200-12-31T23:59:59Z"):
        response = dry_run_at(admin_api, trigger, when)
        assert response.status_code == 200, response.content


def test_a_dry_run_of_a_stored_event(admin_api, trigger, partnership):
    CampaignFactory(trigger=trigger)
    event = TriggerEventFactory(trigger=trigger)
    response = admin_api.post(
        url(partnership, "dry-runs"), {"trigger_event_id": str(event.pk)}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["data"]["sample"] is False


def test_a_backtest_is_queued_and_read_back(admin_api, trigger, partnership, settings):
    campaign = CampaignFactory(trigger=trigger)
    created = admin_api.post(
        url(partnership, "campaigns", campaign.pk, "backtests"), {"days": 7}, format="json"
    )
    assert created.status_code == 202, created.json()
    run = Backtest.objects.get(pk=created.json()["data"]["id"])
    assert (run.campaign_id, run.days) == (campaign.pk, 7)
    shown = admin_api.get(url(partnership, "campaigns", campaign.pk, "backtests", run.pk))
    assert shown.status_code == 200
    assert shown.json()["data"]["status"] in ("queued", "running", "done")
    too_long = admin_api.post(
        url(partnership, "campaigns", campaign.pk, "backtests"), {"days": 10_000}, format="json"
    )
    assert too_long.status_code == 422


def test_a_key_is_rotated_with_an_overlap(developer_api, api_key, partnership):
    response = developer_api.post(
        url(partnership, "api-keys", api_key.prefix, "rotate"), {"overlap_hours": 0}, format="json"
    )
    assert response.status_code == 201, response.json()
    new = response.json()["data"]["new"]["api_key"]
    old_client, new_client = APIClient(), APIClient()
    old_client.credentials(HTTP_X_API_KEY=api_key.plaintext)
    new_client.credentials(HTTP_X_API_KEY=new)
    assert new_client.get(f"/partnerships/{partnership.pk}").status_code == 200
    assert old_client.get(f"/partnerships/{partnership.pk}").status_code == 400
    entry = AuditEntry.objects.get(action="apikey.rotate")
    assert entry.changes["replaced_by"] == new.partition(".")[0]
    again = developer_api.post(
        url(partnership, "api-keys", api_key.prefix, "rotate"), {}, format="json"
    )
    assert again.status_code == 409
