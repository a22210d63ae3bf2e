"""Campaigns on the management API: Pilot's validation, Pilot's approval rules (four eyes
through tokens), revisions against lost updates both ways, and "delete" as end."""

from decimal import Decimal

import pytest

from campaigns.lifecycle import FOUR_EYES
from campaigns.models import Campaign
from config.errors import ErrorCode
from partnerships import roles
from partnerships.models import AuditEntry
from partnerships.pilot_revision import LOADED
from tests.campaigns.test_approval_pilot import form_of, page, pilot_as
from tests.factories import CampaignFactory, RewardFactory, TriggerFactory

from .conftest import operator, staff_client, url

pytestmark = pytest.mark.django_db

BAD = {
    "name": "Broken",
    "slug": "broken",
    "condition": "context.amount >= ",
    "reward_type": "percentage",
    "reward_value": "5",
    "reward_min": "10",
    "reward_max": "1",
    "facts": [{"name": "n", "aggregate": "count", "window_days": 7}],
}


@pytest.fixture
def manager(django_user_model, partnership):
    return operator(django_user_model, "manager", roles.CAMPAIGN_MANAGER, partnership)


@pytest.fixture
def approver(django_user_model, partnership):
    return operator(django_user_model, "alice", roles.ADMIN, partnership, superuser=True)


def by_field(errors) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for error in errors:
        grouped.setdefault(error["field"] or "__all__", []).append(error["message"])
    return grouped


def test_a_bad_campaign_is_refused_with_pilots_errors(approver, trigger, partnership):
    api = staff_client(approver, roles.ADMIN, partnership)
    response = api.post(
        url(partnership, "campaigns"), {**BAD, "trigger_id": trigger.pk}, format="json"
    )
    assert response.status_code == 422, response.json()
    api_errors = by_field(response.json()["errors"])

    form = {
        **form_of(CampaignFactory.build(trigger=trigger, partnership=partnership)),
        **{k: v for k, v in BAD.items() if k != "facts"},
        "facts": '[{"name": "n", "aggregate": "count", "window_days": 7}]',
        "trigger": trigger.pk,
        "partnership": partnership.pk,
        "rounding": "ROUND_HALF_UP",
    }
    for empty in ("budget", "max_rewards", "max_rewards_per_user", "max_amount_per_user"):
        form[empty] = ""
    pilot = pilot_as(approver).post("/pilot/campaigns/campaign/add/", form)
    assert pilot.status_code == 200  # the form again, with its errors
    pilot_errors = {
        field: list(messages) for field, messages in pilot.context["adminform"].form.errors.items()
    }
    assert api_errors == pilot_errors
    assert "condition" in api_errors
    assert not Campaign.objects.filter(slug="broken").exists()


def test_wrong_types_and_unknown_fields_are_422_per_field(approver, trigger, partnership):
    api = staff_client(approver, roles.ADMIN, partnership)
    body = {
        "trigger_id": "seven",
        "name": "X",
        "slug": "x y",
        "facts": "not a list",
        "budget": "NaN",
        "priority": 10**12,
        "bonus": 1,
    }
    response = api.post(url(partnership, "campaigns"), body, format="json")
    assert response.status_code == 422
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"trigger_id", "slug", "facts", "budget", "priority", "bonus"}


def test_malformed_json_is_400(approver, partnership):
    api = staff_client(approver, roles.ADMIN, partnership)
    response = api.generic(
        "POST", url(partnership, "campaigns"), b"{facts: [", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == ErrorCode.MALFORMED_JSON


def test_a_manager_cannot_approve_their_own_change_through_a_token(
    manager, approver, trigger, partnership
):
    """A token acts as its creator: the manager's token cannot approve (its role), and an
    approver who wrote the change cannot approve it with their own Admin token (four eyes)."""
    manager_api = staff_client(manager, roles.CAMPAIGN_MANAGER, partnership)
    created = manager_api.post(
        url(partnership, "campaigns"),
        {"trigger_id": trigger.pk, "name": "New", "slug": "new", "reward_value": "5"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    campaign_id = created.json()["data"]["id"]
    etag = created["ETag"]
    submitted = manager_api.post(
        url(partnership, "campaigns", campaign_id, "submit"), HTTP_IF_MATCH=etag
    )
    assert submitted.status_code == 200, submitted.json()
    refused = manager_api.post(
        url(partnership, "campaigns", campaign_id, "approve"), HTTP_IF_MATCH=submitted["ETag"]
    )
    assert refused.status_code == 403  # the Campaign Manager role cannot approve

    # The approver writes a change and tries to approve it with their own token: four eyes.
    approver_api = staff_client(approver, roles.ADMIN, partnership)
    mine = approver_api.patch(
        url(partnership, "campaigns", campaign_id),
        {"reward_value": "6"},
        format="json",
        HTTP_IF_MATCH=submitted["ETag"],
    )
    assert mine.status_code == 200, mine.json()
    assert mine.json()["data"]["status"] == "draft"  # the edit withdrew the submission
    resubmitted = approver_api.post(
        url(partnership, "campaigns", campaign_id, "submit"), HTTP_IF_MATCH=mine["ETag"]
    )
    own = approver_api.post(
        url(partnership, "campaigns", campaign_id, "approve"), HTTP_IF_MATCH=resubmitted["ETag"]
    )
    assert own.status_code == 409
    assert own.json() == {"code": ErrorCode.ACTION_REFUSED, "message": FOUR_EYES}
    assert Campaign.objects.get(pk=campaign_id).status == "submitted"


def test_an_approver_token_approves_a_managers_submission(manager, approver, trigger, partnership):
    manager_api = staff_client(manager, roles.CAMPAIGN_MANAGER, partnership)
    campaign_id = manager_api.post(
        url(partnership, "campaigns"),
        {"trigger_id": trigger.pk, "name": "New", "slug": "new", "reward_value": "5"},
        format="json",
    ).json()["data"]["id"]
    current = manager_api.get(url(partnership, "campaigns", campaign_id))
    submitted = manager_api.post(
        url(partnership, "campaigns", campaign_id, "submit"), HTTP_IF_MATCH=current["ETag"]
    )
    approver_api = staff_client(approver, roles.ADMIN, partnership)
    approved = approver_api.post(
        url(partnership, "campaigns", campaign_id, "approve"), HTTP_IF_MATCH=submitted["ETag"]
    )
    assert approved.status_code == 200, approved.json()
    assert approved.json()["data"]["status"] == "active"
    entry = AuditEntry.objects.get(action="campaign.approve")
    assert entry.actor == approver
    assert entry.changes["via"].startswith(f"staff token {approver_api.token.prefix}")


def test_an_approved_campaigns_change_waits_for_approval(approver, trigger, partnership):
    campaign = CampaignFactory(trigger=trigger, budget=100)
    api = staff_client(approver, roles.ADMIN, partnership)
    etag = api.get(url(partnership, "campaigns", campaign.pk))["ETag"]
    response = api.patch(
        url(partnership, "campaigns", campaign.pk),
        {"budget": "500"},
        format="json",
        HTTP_IF_MATCH=etag,
    )
    assert response.status_code == 200
    body = response.json()["data"]
    assert body["outcome"] == "proposed"
    assert body["budget"] == "100.000000"
    assert body["pending_change"]["changes"] == {"budget": ["100", "500"]}


# --- If-Match -------------------------------------------------------------------------------


def test_a_write_without_if_match_is_428(approver, trigger, partnership):
    campaign = CampaignFactory(trigger=trigger)
    api = staff_client(approver, roles.ADMIN, partnership)
    for method, path in (
        ("patch", url(partnership, "campaigns", campaign.pk)),
        ("post", url(partnership, "campaigns", campaign.pk, "pause")),
        ("delete", url(partnership, "campaigns", campaign.pk)),
        ("patch", url(partnership, "triggers", trigger.pk)),
        ("patch", url(partnership)),
    ):
        response = getattr(api, method)(path, {}, format="json")
        assert response.status_code == 428, (method, path)
        assert response.json()["code"] == ErrorCode.PRECONDITION_REQUIRED
    assert Campaign.objects.get(pk=campaign.pk).status == "active"


def test_a_stale_write_is_412_and_changes_nothing(approver, trigger, partnership):
    api = staff_client(approver, roles.ADMIN, partnership)
    etag = api.get(url(partnership, "triggers", trigger.pk))["ETag"]
    first = api.patch(
        url(partnership, "triggers", trigger.pk),
        {"description": "first"},
        format="json",
        HTTP_IF_MATCH=etag,
    )
    assert first.status_code == 200
    assert first["ETag"] != etag
    second = api.patch(
        url(partnership, "triggers", trigger.pk),
        {"description": "second"},
        format="json",
        HTTP_IF_MATCH=etag,
    )
    assert second.status_code == 412
    assert second.json()["code"] == ErrorCode.VERSION_CONFLICT
    trigger.refresh_from_db()
    assert trigger.description == "first"


def test_a_stale_lifecycle_action_is_412(approver, trigger, partnership):
    campaign = CampaignFactory(trigger=trigger)
    api = staff_client(approver, roles.ADMIN, partnership)
    etag = api.get(url(partnership, "campaigns", campaign.pk))["ETag"]
    assert api.post(url(partnership, "campaigns", campaign.pk, "pause"), HTTP_IF_MATCH=etag)
    resumed = api.post(url(partnership, "campaigns", campaign.pk, "resume"), HTTP_IF_MATCH=etag)
    assert resumed.status_code == 412
    assert Campaign.objects.get(pk=campaign.pk).status == "paused"


def test_a_stale_pilot_save_is_a_form_error_not_an_overwrite(approver, trigger, partnership):
    """Pilot opens the form (revision r), the API writes (r+1), Pilot saves: refused."""
    campaign = CampaignFactory(trigger=trigger, status=Campaign.Status.DRAFT, description="v1")
    pilot = pilot_as(approver)
    opened = pilot.get(page(campaign))
    assert f'name="{LOADED}" value="{campaign.revision}"' in opened.content.decode()

    api = staff_client(approver, roles.ADMIN, partnership)
    response = api.patch(
        url(partnership, "campaigns", campaign.pk),
        {"description": "from the API"},
        format="json",
        HTTP_IF_MATCH=f'"{campaign.revision}"',
    )
    assert response.status_code == 200

    stale = pilot.post(
        page(campaign),
        form_of(campaign, description="from Pilot", **{LOADED: campaign.revision}),
    )
    assert stale.status_code == 200
    errors = stale.context["adminform"].form.non_field_errors()
    assert "Someone changed this campaign since you opened it" in errors[0]
    assert Campaign.objects.get(pk=campaign.pk).description == "from the API"


def test_an_api_write_after_a_pilot_save_is_412(approver, trigger, partnership):
    """The API reads (revision r), Pilot saves (r+1), the API writes with r: refused."""
    campaign = CampaignFactory(trigger=trigger, status=Campaign.Status.DRAFT)
    api = staff_client(approver, roles.ADMIN, partnership)
    etag = api.get(url(partnership, "campaigns", campaign.pk))["ETag"]

    saved = pilot_as(approver).post(
        page(campaign),
        form_of(campaign, description="from Pilot", **{LOADED: campaign.revision}),
    )
    assert saved.status_code == 302

    response = api.patch(
        url(partnership, "campaigns", campaign.pk),
        {"description": "from the API"},
        format="json",
        HTTP_IF_MATCH=etag,
    )
    assert response.status_code == 412
    assert Campaign.objects.get(pk=campaign.pk).description == "from Pilot"


# --- delete ---------------------------------------------------------------------------------


def test_deleting_a_draft_deletes_it(approver, trigger, partnership):
    campaign = CampaignFactory(trigger=trigger, status=Campaign.Status.DRAFT)
    api = staff_client(approver, roles.ADMIN, partnership)
    response = api.delete(
        url(partnership, "campaigns", campaign.pk), HTTP_IF_MATCH=f'"{campaign.revision}"'
    )
    assert response.status_code == 204
    assert not Campaign.objects.filter(pk=campaign.pk).exists()


def test_deleting_a_campaign_with_rewards_ends_it(approver, trigger, partnership):
    reward = RewardFactory(campaign=CampaignFactory(trigger=trigger))
    campaign = reward.campaign
    api = staff_client(approver, roles.ADMIN, partnership)
    response = api.delete(
        url(partnership, "campaigns", campaign.pk), HTTP_IF_MATCH=f'"{campaign.revision}"'
    )
    assert response.status_code == 200, response.json()
    assert response.json()["data"]["status"] == "ended"
    again = api.delete(url(partnership, "campaigns", campaign.pk), HTTP_IF_MATCH=response["ETag"])
    assert again.status_code == 409
    assert again.json()["code"] == ErrorCode.ACTION_REFUSED


def test_deleting_a_trigger_with_events_archives_it(approver, partnership):
    trigger = TriggerFactory(partnership=partnership, name="purchase")
    RewardFactory(campaign=CampaignFactory(trigger=trigger, status="ended"))
    api = staff_client(approver, roles.ADMIN, partnership)
    response = api.delete(
        url(partnership, "triggers", trigger.pk), HTTP_IF_MATCH=f'"{trigger.revision}"'
    )
    assert response.status_code == 200, response.json()
    assert response.json()["data"]["status"] == "archived"


def test_deleting_a_trigger_an_active_campaign_reads_is_409(approver, trigger, partnership):
    CampaignFactory(trigger=trigger)
    api = staff_client(approver, roles.ADMIN, partnership)
    response = api.delete(
        url(partnership, "triggers", trigger.pk), HTTP_IF_MATCH=f'"{trigger.revision}"'
    )
    assert response.status_code == 409
    assert response.json()["code"] == ErrorCode.RESOURCE_IN_USE


def test_deleting_an_unused_trigger_deletes_it(approver, partnership):
    trigger = TriggerFactory(partnership=partnership, name="unused")
    api = staff_client(approver, roles.ADMIN, partnership)
    response = api.delete(
        url(partnership, "triggers", trigger.pk), HTTP_IF_MATCH=f'"{trigger.revision}"'
    )
    assert response.status_code == 204


def test_a_trigger_change_that_would_stop_an_active_campaign_is_refused_as_in_pilot(
    approver, trigger, partnership
):
    CampaignFactory(trigger=trigger, condition="context.amount >= 20.0")
    api = staff_client(approver, roles.ADMIN, partnership)
    response = api.patch(
        url(partnership, "triggers", trigger.pk),
        {"context_schema": {"type": "object", "properties": {}}},
        format="json",
        HTTP_IF_MATCH=f'"{trigger.revision}"',
    )
    assert response.status_code == 422, response.json()
    [error] = response.json()["errors"]
    assert error["field"] == "context_schema"
    assert "would stop the active campaign" in error["message"]


def test_lists_are_paginated(approver, trigger, partnership):
    for n in range(3):
        CampaignFactory(trigger=trigger, slug=f"c{n}", reward_value=Decimal("1"))
    api = staff_client(approver, roles.ADMIN, partnership)
    first = api.get(url(partnership, "campaigns") + "?limit=2").json()["data"]
    assert len(first["results"]) == 2
    second = api.get(first["next"]).json()["data"]
    assert len(second["results"]) == 1
    assert second["next"] is None
    bad = api.get(url(partnership, "campaigns") + "?limit=0")
    assert bad.status_code == 422


def test_creating_and_changing_a_campaign_is_audited_naming_the_token(
    manager, trigger, partnership
):
    api = staff_client(manager, roles.CAMPAIGN_MANAGER, partnership)
    created = api.post(
        url(partnership, "campaigns"),
        {"trigger_id": trigger.pk, "name": "New", "slug": "new", "reward_value": "5"},
        format="json",
    )
    api.patch(
        url(partnership, "campaigns", created.json()["data"]["id"]),
        {"reward_value": "6"},
        format="json",
        HTTP_IF_MATCH=created["ETag"],
    )
    entries = AuditEntry.objects.filter(action__in=["campaign.create", "campaign.change"])
    assert [(e.action, e.actor, e.changes["via"]) for e in entries.order_by("at", "id")] == [
        ("campaign.create", manager, f"staff token {api.token.prefix} (Campaign Manager token)"),
        ("campaign.change", manager, f"staff token {api.token.prefix} (Campaign Manager token)"),
    ]
    assert entries.order_by("at", "id").last().changes["reward_value"] == ["5", "6"]


def test_marking_a_trigger_client_sendable_is_refused_as_in_pilot(approver, trigger, partnership):
    CampaignFactory(trigger=trigger)  # no per-user cap
    api = staff_client(approver, roles.ADMIN, partnership)
    response = api.patch(
        url(partnership, "triggers", trigger.pk),
        {"client_sendable": True},
        format="json",
        HTTP_IF_MATCH=f'"{trigger.revision}"',
    )
    assert response.status_code == 422, response.json()
    [error] = response.json()["errors"]
    assert error["field"] == "client_sendable"
    assert "Users write this trigger's context themselves" in error["message"]
    trigger.refresh_from_db()
    assert trigger.client_sendable is False
