import json

import pytest
import yaml

from campaigns.models import Campaign, CampaignVersion
from config.errors import ErrorCode
from partnerships import roles
from partnerships.models import AuditEntry
from rewards.configuration.document import document_dump
from rewards.configuration.state import configuration_state
from tests.factories import PartnershipFactory
from tests.mgmt.conftest import operator, staff_client, url

from .support import campaign, exported


@pytest.fixture
def admin_api(django_user_model, configured):
    user = operator(django_user_model, "admin", roles.ADMIN, configured)
    return staff_client(user, roles.ADMIN, configured)


def _post(client, partnership, what: str, document, **headers):
    if isinstance(document, dict):
        body, kind = json.dumps(document), "application/json"
    else:
        body, kind = document, "application/yaml"
    return client.generic(
        "POST", url(partnership, "config", what), body, content_type=kind, **headers
    )


def _edited(configured) -> dict:
    document = exported(configured)
    campaign(document, "cashback")["budget"] = "5000"
    document["settings"]["time_zone"] = "Europe/Paris"
    return document


def test_get_exports_the_document_with_its_fingerprint_as_etag(admin_api, configured):
    response = admin_api.get(url(configured, "config"))

    assert response.status_code == 200
    data = response.json()["data"]
    assert data["document"] == exported(configured)
    assert response["ETag"] == f'"{data["fingerprint"]}"'
    assert data["fingerprint"] == configuration_state(partnership=configured).fingerprint


@pytest.mark.parametrize("as_yaml", [False, True])
def test_plan_shows_the_changes_in_json_or_yaml_and_writes_nothing(admin_api, configured, as_yaml):
    document = _edited(configured)
    body = document_dump(document) if as_yaml else document

    response = _post(admin_api, configured, "plan", body)

    assert response.status_code == 200, response.json()
    data = response.json()["data"]
    assert data["needs_approval"] == ["cashback"]
    assert [(c["kind"], c["key"], c["outcome"]) for c in data["changes"]] == [
        ("settings", "settings", "applied"),
        ("campaign", "cashback", "awaits_approval"),
    ]
    assert response["ETag"] == f'"{data["fingerprint"]}"'
    configured.refresh_from_db()
    assert configured.time_zone == "UTC"


def test_apply_with_the_plans_fingerprint_applies_through_approval(admin_api, configured):
    document = _edited(configured)
    fingerprint = _post(admin_api, configured, "plan", document).json()["data"]["fingerprint"]

    response = _post(admin_api, configured, "apply", document, HTTP_IF_MATCH=f'"{fingerprint}"')

    assert response.status_code == 200, response.json()
    data = response.json()["data"]
    assert data["fingerprint_before"] == fingerprint
    assert response["ETag"] == f'"{data["fingerprint"]}"'
    configured.refresh_from_db()
    assert configured.time_zone == "Europe/Paris"
    live = Campaign.objects.get(slug="cashback")
    assert live.budget == 1000
    assert live.versions.get(state=CampaignVersion.State.PROPOSED).author.username == "admin"
    entry = AuditEntry.objects.get(action="configuration.apply")
    assert entry.actor.username == "admin"
    assert entry.changes["via"].startswith("staff token ")


def test_apply_refuses_a_stale_fingerprint_needs_one_and_star_forces(admin_api, configured):
    document = _edited(configured)

    stale = _post(admin_api, configured, "apply", document, HTTP_IF_MATCH='"0123"')
    missing = _post(admin_api, configured, "apply", document)

    assert (stale.status_code, stale.json()["code"]) == (412, ErrorCode.CONFIGURATION_CHANGED)
    assert (missing.status_code, missing.json()["code"]) == (428, "precondition_required")
    configured.refresh_from_db()
    assert configured.time_zone == "UTC"
    forced = _post(admin_api, configured, "apply", document, HTTP_IF_MATCH="*")
    assert forced.status_code == 200
    configured.refresh_from_db()
    assert configured.time_zone == "Europe/Paris"


@pytest.mark.parametrize("what", ["plan", "apply"])
def test_bad_documents_are_clear_errors(admin_api, configured, what):
    bad_yaml = _post(admin_api, configured, what, "triggers: [\n", HTTP_IF_MATCH="*")
    wrong_type = admin_api.generic(
        "POST",
        url(configured, "config", what),
        "x",
        content_type="text/plain",
        HTTP_IF_MATCH="*",
    )
    document = exported(configured)
    campaign(document, "cashback")["condition"] = "context.nope > 1"
    invalid = _post(admin_api, configured, what, document, HTTP_IF_MATCH="*")

    assert (bad_yaml.status_code, bad_yaml.json()["code"]) == (400, "malformed_document")
    assert "line 2, column 1" in bad_yaml.json()["message"]
    assert (wrong_type.status_code, wrong_type.json()["code"]) == (415, "unsupported_media_type")
    assert (invalid.status_code, invalid.json()["code"]) == (422, "validation_error")
    assert [e["field"] for e in invalid.json()["errors"]] == ["campaigns[cashback].condition"]


def test_a_token_without_the_permission_is_refused(django_user_model, configured):
    developer = operator(django_user_model, "dev", roles.DEVELOPER, configured)
    client = staff_client(developer, roles.DEVELOPER, configured)

    response = _post(client, configured, "plan", _edited(configured))

    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
    assert "campaigns.change_campaign" in response.json()["message"]


def test_another_partnerships_configuration_is_not_found(admin_api, configured):
    other = PartnershipFactory()

    response = admin_api.get(url(other, "config"))

    assert response.status_code == 404


def test_the_export_round_trips_through_yaml(admin_api, configured):
    text = document_dump(admin_api.get(url(configured, "config")).json()["data"]["document"])

    assert yaml.safe_load(text) == exported(configured)
