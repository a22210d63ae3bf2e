"""One way to create an API key (``partnerships.services.api_key_create_audited``), one to
revoke it (``api_key_revoke_audited``) and one to rotate it (``api_key_rotate_audited``), from
Pilot, the management API and the commands: each
leaves the same audit entry naming its actor, a key revoked already keeps its time and is not
audited again, and two revocations racing audit it once."""

from datetime import datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from partnerships import roles
from partnerships.models import ApiKey, AuditEntry
from tests.factories import ApiKeyFactory
from tests.mgmt.conftest import operator, staff_client, url
from tests.pilot_support import page_text
from tests.races import race_behind_lock

LIST = "/pilot/partnerships/apikey/"


def entries(key) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action="apikey.revoke", target_id=str(key.pk)))


def pilot(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def pilot_revoke(client: Client, *keys):
    selected = [key.pk for key in keys]
    return client.post(LIST, {"action": "revoke", "_selected_action": selected}, follow=True)


def mgmt_revoke(client: APIClient, key):
    return client.post(url(key.partnership, "api-keys", key.prefix, "revoke"))


def refused(key) -> bool:
    partner = APIClient()
    partner.credentials(HTTP_X_API_KEY=key.plaintext)
    return partner.get(f"/partnerships/{key.partnership_id}").status_code == 400


@pytest.mark.django_db
def test_pilot_the_management_api_and_the_command_leave_the_same_entry(django_user_model):
    by_pilot = ApiKeyFactory()
    partnership = by_pilot.partnership
    by_mgmt = ApiKeyFactory(partnership=partnership)
    by_command = ApiKeyFactory(partnership=partnership)
    developer = operator(django_user_model, "dev", roles.DEVELOPER, partnership)

    page = page_text(pilot_revoke(pilot(developer), by_pilot))
    answer = mgmt_revoke(staff_client(developer, roles.DEVELOPER, partnership), by_mgmt)
    call_command("revoke_api_key", by_command.prefix)

    assert "Revoked 1 key(s)." in page
    assert answer.status_code == 200 and answer.json()["data"]["status"] == "revoked"
    assert all(refused(key) for key in (by_pilot, by_mgmt, by_command))
    (from_pilot,), (from_mgmt,), (from_command,) = map(entries, (by_pilot, by_mgmt, by_command))
    for entry in (from_pilot, from_mgmt, from_command):
        assert (entry.partnership, entry.mode, entry.target_type) == (
            partnership,
            "live",
            "partnerships.apikey",
        )
    assert from_pilot.actor == developer and from_pilot.changes == {}
    assert from_mgmt.actor == developer and from_mgmt.changes["via"].startswith("staff token")
    assert (from_command.actor, from_command.actor_name) == (None, "system")

    again = page_text(pilot_revoke(pilot(developer), by_mgmt))  # revoked already, elsewhere
    assert "Revoked 0 key(s)." in again and "1 already revoked: left as they were." in again
    assert len(entries(by_mgmt)) == 1


@pytest.mark.django_db
def test_a_key_revoked_elsewhere_keeps_its_time_and_is_not_audited_again(django_user_model):
    key = ApiKeyFactory()
    developer = operator(django_user_model, "dev", roles.DEVELOPER, key.partnership)
    call_command("revoke_api_key", key.prefix)
    revoked_at = ApiKey.objects.get(pk=key.pk).revoked_at

    answer = mgmt_revoke(staff_client(developer, roles.DEVELOPER, key.partnership), key)
    pilot_revoke(pilot(developer), key)  # the page's key, loaded as revoked: still nothing

    assert answer.status_code == 200
    assert ApiKey.objects.get(pk=key.pk).revoked_at == revoked_at
    assert len(entries(key)) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
@pytest.mark.parametrize("first", ["pilot", "mgmt"])
def test_pilot_and_the_management_api_revoking_at_once_audit_the_key_once(django_user_model, first):
    key = ApiKeyFactory()
    developer = operator(django_user_model, "dev", roles.DEVELOPER, key.partnership)
    page, api = pilot(developer), staff_client(developer, roles.DEVELOPER, key.partnership)
    calls = {"pilot": lambda: pilot_revoke(page, key), "mgmt": lambda: mgmt_revoke(api, key)}

    answers = race_behind_lock(
        ApiKey.objects.filter(pk=key.pk), calls, sorted(calls, key=lambda name: name != first)
    )

    assert answers["pilot"].status_code == 200, answers
    assert answers["mgmt"].status_code == 200, answers
    assert len(entries(key)) == 1


@pytest.mark.django_db
def test_rotating_from_pilot_the_management_api_or_the_command_leaves_the_same_entry(
    django_user_model,
):
    in_pilot = ApiKeyFactory()
    partnership = in_pilot.partnership
    by_mgmt = ApiKeyFactory(partnership=partnership)
    by_command = ApiKeyFactory(partnership=partnership)
    developer = operator(django_user_model, "dev", roles.DEVELOPER, partnership)

    page = pilot(developer).post(
        f"/pilot/partnerships/apikey/{in_pilot.pk}/rotate/", {"overlap_hours": "1"}, follow=True
    )
    answer = staff_client(developer, roles.DEVELOPER, partnership).post(
        url(partnership, "api-keys", by_mgmt.prefix, "rotate"), {"overlap_hours": 1}, format="json"
    )
    call_command("rotate_api_key", by_command.prefix, "--overlap-hours", "1", stdout=StringIO())

    assert "copy it now, it will not be shown again" in page_text(page)
    assert answer.status_code == 201, answer.json()
    for key, actor in ((in_pilot, developer), (by_mgmt, developer), (by_command, None)):
        (entry,) = AuditEntry.objects.filter(action="apikey.rotate", target_id=str(key.pk))
        key.refresh_from_db()
        assert entry.actor == actor and (entry.partnership, entry.mode) == (partnership, "live")
        assert entry.changes["replaced_by"] == key.replaced_by.prefix
        assert datetime.fromisoformat(entry.changes["expires_at"]) == key.expires_at
        assert entry.changes["expires_at"] == key.expires_at.isoformat()


@pytest.mark.django_db
def test_creating_from_pilot_the_management_api_or_the_command_leaves_the_same_entry(
    django_user_model, partnership
):
    developer = operator(django_user_model, "dev", roles.DEVELOPER, partnership)
    expiry = {"expires_at_0": "2031-01-02", "expires_at_1": "03:04:05"}
    form = {"partnership": partnership.pk, "name": "pilot", "mode": "live", **expiry}

    page = pilot(developer).post("/pilot/partnerships/apikey/add/", form, follow=True)
    answer = staff_client(developer, roles.DEVELOPER, partnership).post(
        url(partnership, "api-keys"),
        {"name": "mgmt", "mode": "live", "expires_at": "2031-01-02T03:04:05Z"},
        format="json",
    )
    call_command("create_api_key", str(partnership.pk), "--name", "command", stdout=StringIO())

    assert "copy it now, it will not be shown again" in page_text(page)
    assert answer.status_code == 201, answer.json()
    for name, actor in (("pilot", developer), ("mgmt", developer), ("command", None)):
        key = ApiKey.objects.get(name=name)
        (entry,) = AuditEntry.objects.filter(action="apikey.create", target_id=str(key.pk))
        assert entry.actor == actor and (entry.partnership, entry.mode) == (partnership, "live")
        expires_at = key.expires_at.isoformat() if key.expires_at else None
        recorded = {field: entry.changes[field] for field in ("name", "expires_at")}
        assert recorded == {"name": name, "expires_at": expires_at}


@pytest.mark.django_db
def test_the_create_command_refuses_a_name_too_long_with_its_reason(partnership):
    with pytest.raises(CommandError, match="at most 100 characters"):
        call_command("create_api_key", str(partnership.pk), "--name", "x" * 101)

    assert not ApiKey.objects.filter(partnership=partnership).exclude(name="test key").exists()
    assert not AuditEntry.objects.filter(action="apikey.create").exists()
