"""The management API's review (issue 12): what it found answered 500, skipped a check or left
out of the audit log, each fixed where it lives (so Pilot and configuration get it too)."""

import io
import json
from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from campaigns.engine import candidate_until
from campaigns.models import Campaign
from campaigns.selectors import campaign_list_active
from config.localcache import config_cache
from partnerships import roles
from partnerships.models import AuditEntry
from partnerships.pilot_revision import LOADED, MISSING
from partnerships.services import partnership_save
from tests.campaigns.test_approval_pilot import form_of, page, pilot_as
from tests.factories import CampaignFactory
from triggers.services.configuration import trigger_save

from .conftest import operator, staff_client, url
from .test_pilot_revisions import cases, form_data, new_value

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(django_user_model, partnership):
    return operator(django_user_model, "root", roles.ADMIN, partnership, superuser=True)


@pytest.fixture
def api(root, partnership):
    return staff_client(root, roles.ADMIN, partnership)


def _errors(response) -> dict[str, str]:
    return {error["field"]: error["message"] for error in response.json()["errors"]}


# --- 1. campaign dates ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dates", "field"),
    [
        ({"ends_at": "9999-12-31T23:59:59Z"}, "ends_at"),
        ({"ends_at": "9999-11-15T00:00:00Z"}, "ends_at"),
        ({"starts_at": "0001-01-01T00:00:00Z"}, "starts_at"),
        ({"starts_at": "1999-12-31T23:59:59Z"}, "starts_at"),
        ({"ends_at": "2201-01-01T00:00:00Z"}, "ends_at"),
        ({"starts_at": "9999-12-31T23:59:58Z", "ends_at": "9999-12-31T23:59:59Z"}, "ends_at"),
    ],
)
def test_a_campaign_date_out_of_range_is_422_at_its_field(api, partnership, trigger, dates, field):
    body = {"trigger_id": trigger.pk, "name": "Far", "slug": "far", "reward_value": "1"}
    created = api.post(url(partnership, "campaigns"), {**body, **dates}, format="json")
    assert created.status_code == 422, created.content
    assert "2000 to 2200" in _errors(created)[field]
    assert not Campaign.objects.filter(slug="far").exists()

    campaign = CampaignFactory(trigger=trigger, status=Campaign.Status.DRAFT)
    changed = api.patch(
        url(partnership, "campaigns", campaign.pk),
        dates,
        format="json",
        HTTP_IF_MATCH=f'"{campaign.revision}"',
    )
    assert changed.status_code == 422, changed.content
    assert field in _errors(changed)


def test_dates_within_range_are_kept(api, partnership, trigger):
    body = {"trigger_id": trigger.pk, "name": "Long", "slug": "long", "reward_value": "1"}
    dates = {"starts_at": "2000-01-01T00:00:00Z", "ends_at": "2200-12-31T23:59:59Z"}
    created = api.post(url(partnership, "campaigns"), {**body, **dates}, format="json")
    assert created.status_code == 201, created.content


def test_pilot_refuses_a_far_end_at_its_field(root, trigger):
    campaign = CampaignFactory(trigger=trigger, status=Campaign.Status.DRAFT)
    data = form_of(campaign, **{LOADED: campaign.revision})
    data.update({"ends_at_0": "9999-12-31", "ends_at_1": "23:59:59"})
    answered = pilot_as(root).post(page(campaign), data)
    assert answered.status_code == 200
    errors = answered.context["adminform"].form.errors
    assert "2000 to 2200" in errors["ends_at"][0]
    campaign.refresh_from_db()
    assert campaign.ends_at is None


def test_candidate_until_saturates_at_the_end_of_the_calendar():
    far = datetime(9999, 11, 15, tzinfo=UTC)
    assert candidate_until(far, 396) == datetime.max.replace(tzinfo=UTC)
    assert candidate_until(datetime(2030, 1, 1, tzinfo=UTC), 10**9) == datetime.max.replace(
        tzinfo=UTC
    )
    assert candidate_until(datetime(2030, 1, 1, tzinfo=UTC), 1) == datetime(2030, 1, 2, tzinfo=UTC)


def test_an_end_saved_before_the_bound_does_not_stop_the_trigger(api, partnership, trigger):
    """A campaign saved with an end near year 9999 (before dates were bounded), then the
    lateness raised: its trigger's campaigns still load, dry runs answer, approval validates."""
    far = CampaignFactory(trigger=trigger, status=Campaign.Status.ACTIVE, slug="far")
    CampaignFactory(trigger=trigger, status=Campaign.Status.ACTIVE, slug="near")
    Campaign.objects.filter(pk=far.pk).update(ends_at=datetime(9999, 11, 15, tzinfo=UTC))
    partnership.max_event_lateness_days = 366
    partnership.save()
    config_cache._entries.clear()

    listed = campaign_list_active(trigger_id=trigger.pk)
    assert {campaign.slug for campaign in listed} == {"far", "near"}

    body = {
        "trigger_id": trigger.pk,
        "external_user_id": "u1",
        "context": {"amount": 5, "currency": "USD"},
    }
    dry = api.post(url(partnership, "dry-runs"), body, format="json")
    assert dry.status_code == 200, dry.content

    far.refresh_from_db()
    with pytest.raises(ValidationError) as refused:
        far.full_clean()
    assert "ends_at" in refused.value.message_dict


# --- 2. facts' trigger and field ------------------------------------------------------------


@pytest.mark.parametrize("key", ["trigger", "field"])
@pytest.mark.parametrize("value", [["x"], {"a": 1}, 5])
def test_a_fact_trigger_or_field_not_a_string_is_422_at_facts(
    api, partnership, trigger, key, value
):
    fact = {"name": "n", "aggregate": "sum", "field": "amount", "window_days": 30, key: value}
    body = {"trigger_id": trigger.pk, "name": "Odd", "slug": "odd", "reward_value": "1"}
    created = api.post(url(partnership, "campaigns"), {**body, "facts": [fact]}, format="json")
    assert created.status_code == 422, created.content
    assert key in _errors(created)["facts"]

    campaign = CampaignFactory(trigger=trigger, status=Campaign.Status.DRAFT)
    changed = api.patch(
        url(partnership, "campaigns", campaign.pk),
        {"facts": [{**fact, "aggregate": "count"}]},
        format="json",
        HTTP_IF_MATCH=f'"{campaign.revision}"',
    )
    assert changed.status_code == 422, changed.content
    assert "facts" in _errors(changed)


# --- 3. archiving a trigger an active campaign is on ----------------------------------------


def test_archiving_a_trigger_under_an_active_campaign_is_409_as_its_delete(
    api, partnership, trigger
):
    campaign = CampaignFactory(trigger=trigger, status=Campaign.Status.ACTIVE)
    etag = f'"{trigger.revision}"'
    trigger_url = url(partnership, "triggers", trigger.pk)

    def archive():
        return api.patch(trigger_url, {"status": "archived"}, format="json", HTTP_IF_MATCH=etag)

    archived = archive()
    assert archived.status_code == 409, archived.content
    assert archived.json()["code"] == "resource_in_use"
    assert campaign.slug in archived.json()["message"]
    trigger.refresh_from_db()
    assert (trigger.status, f'"{trigger.revision}"') == ("active", etag)

    deleted = api.delete(trigger_url, HTTP_IF_MATCH=etag)
    assert deleted.status_code == 409

    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)
    archived = archive()
    assert archived.status_code == 200, archived.content
    trigger.refresh_from_db()
    assert trigger.status == "archived"


def test_pilot_refuses_archiving_a_trigger_under_an_active_campaign(root, trigger):
    campaign = CampaignFactory(trigger=trigger, status=Campaign.Status.ACTIVE)
    pilot = pilot_as(root)
    change = f"/pilot/triggers/trigger/{trigger.pk}/change/"
    answered = pilot.post(change, {**form_data(pilot.get(change)), "status": "archived"})
    assert answered.status_code == 200
    errors = answered.context["adminform"].form.errors
    assert campaign.slug in errors["status"][0]
    trigger.refresh_from_db()
    assert trigger.status == "active"


# --- 4. a Pilot change form without the revision it loaded ----------------------------------


def test_a_pilot_save_without_its_loaded_revision_is_refused(root, partnership, trigger):
    """Without the hidden revision the check would be skipped: an API write made since the
    page opened would be overwritten. The form says so; nothing is saved."""
    api = staff_client(root, roles.ADMIN, partnership)
    pilot = pilot_as(root)
    campaign = CampaignFactory(trigger=trigger, status=Campaign.Status.DRAFT)
    both = [
        *cases(partnership, trigger),
        (campaign, page(campaign), url(partnership, "campaigns", campaign.pk), "description"),
    ]
    for obj, page_url, api_url, field in both:
        data = form_data(pilot.get(page_url)) if obj is not campaign else form_of(campaign)
        del data[LOADED]
        written = api.patch(
            api_url,
            {field: new_value(field, "api")},
            format="json",
            HTTP_IF_MATCH=f'"{obj.revision}"',
        )
        assert written.status_code == 200, written.json()

        refused = pilot.post(page_url, {**data, field: new_value(field, "pilot")})
        assert refused.status_code == 200, (page_url, refused.status_code)
        assert refused.context["adminform"].form.non_field_errors() == [MISSING]
        obj.refresh_from_db()
        assert getattr(obj, field) == new_value(field, "api"), page_url


# --- 5. audited fields ----------------------------------------------------------------------


def test_a_partnerships_origins_and_user_schema_are_in_its_audit_entry(root, partnership):
    schema = {"type": "object", "properties": {"tier": {"type": "string"}}}
    partnership.allowed_origins = ["https://app.partner.example"]
    partnership.user_attribute_schema = schema
    partnership_save(partnership=partnership, actor=root)
    entry = AuditEntry.objects.filter(action="partnership.change").latest("at")
    assert entry.changes["allowed_origins"] == ["", "https://app.partner.example"]
    assert entry.changes["user_attribute_schema"][1] == schema


def test_a_triggers_client_sendable_is_in_its_audit_entry(root, trigger):
    trigger.client_sendable = True
    trigger_save(trigger=trigger, actor=root)
    entry = AuditEntry.objects.filter(action="trigger.change").latest("at")
    assert entry.changes == {"client_sendable": ["False", "True"]}


def test_pilot_audits_a_user_schema_change_once(root, partnership):
    change = f"/pilot/partnerships/partnership/{partnership.pk}/change/"
    pilot = pilot_as(root)
    schema = {"type": "object", "properties": {"tier": {"type": "string"}}}
    data = {**form_data(pilot.get(change)), "user_attribute_schema": json.dumps(schema)}
    saved = pilot.post(change, {**data, "schema_mode": "raw"})
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    [entry] = AuditEntry.objects.filter(target_id=str(partnership.pk)).exclude(
        action="partnership.create"
    )
    assert entry.action == "partnership.change"
    assert entry.changes["user_attribute_schema"][1] == schema


# --- 7. small ones --------------------------------------------------------------------------


def test_an_api_key_created_already_expired_is_422(api, partnership):
    body = {"name": "late", "expires_at": "2000-01-01T00:00:00Z"}
    created = api.post(url(partnership, "api-keys"), body, format="json")
    assert created.status_code == 422, created.content
    assert "future" in _errors(created)["expires_at"]
    assert not partnership.api_keys.filter(name="late").exists()
    body["expires_at"] = "2099-01-01T00:00:00Z"
    assert api.post(url(partnership, "api-keys"), body, format="json").status_code == 201


def test_an_endpoint_with_an_event_type_twice_is_422(api, partnership):
    body = {"url": "https://x.example/", "event_types": ["reward.issued", "reward.issued"]}
    created = api.post(url(partnership, "webhook-endpoints"), body, format="json")
    assert created.status_code == 422, created.content
    assert _errors(created)["event_types"] == "Each event type once"


@pytest.mark.parametrize("command", ["create_staff_token", "create_api_key"])
@pytest.mark.parametrize("days", ["99999999999", "0", "36501"])
def test_an_expiry_beyond_the_calendar_is_a_usage_error(root, partnership, command, days):
    args = (
        ["--user", "root", "--role", roles.ADMIN, "--name", "ci"]
        if command == "create_staff_token"
        else [str(partnership.pk)]
    )
    with pytest.raises(CommandError, match="from 1 to 36500 days"):
        call_command(command, *args, "--expires-in", days, stdout=io.StringIO())
