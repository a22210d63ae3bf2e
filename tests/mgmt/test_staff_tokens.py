"""Staff tokens: their own credentials (never partner keys), refused when revoked or expired,
limited by their role (as Pilot's permissions) and their partnership."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from config.errors import ErrorCode
from partnerships import roles
from partnerships.models import AuditEntry, Partnership, StaffToken
from partnerships.staff_tokens import staff_token_permissions
from tests.factories import PartnershipFactory, TriggerFactory

from .conftest import BASE, operator, staff_client, url

pytestmark = pytest.mark.django_db


def test_a_staff_token_reads_its_partnership(admin_api, partnership):
    response = admin_api.get(url(partnership))
    assert response.status_code == 200, response.json()
    assert response.json()["data"]["id"] == str(partnership.pk)
    assert response["ETag"] == f'"{partnership.revision}"'


def test_the_token_is_stored_hashed_with_a_prefix_no_partner_key_has(admin_api):
    token = StaffToken.objects.get(pk=admin_api.token.pk)
    assert admin_api.plaintext.startswith(token.prefix + ".")
    assert token.prefix.startswith("staff_")
    assert admin_api.plaintext not in token.hashed_token
    assert len(token.hashed_token) == 64


def test_no_token_is_refused(partnership):
    response = APIClient().get(url(partnership))
    assert response.status_code == 401
    assert response.json()["code"] == ErrorCode.INVALID_TOKEN


def test_a_partner_key_is_refused_with_its_own_code(api_key, partnership):
    for headers in (
        {"HTTP_X_API_KEY": api_key.plaintext},
        {"HTTP_AUTHORIZATION": f"Bearer {api_key.plaintext}"},
    ):
        response = APIClient().get(url(partnership), **headers)
        assert response.status_code == 401
        assert response.json()["code"] == ErrorCode.PARTNER_KEY_NOT_ACCEPTED


def test_the_partner_api_refuses_a_staff_token(admin_api, partnership):
    for headers in (
        {"HTTP_X_API_KEY": admin_api.plaintext},
        {"HTTP_AUTHORIZATION": f"Bearer {admin_api.plaintext}"},
    ):
        response = APIClient().get(f"/partnerships/{partnership.pk}", **headers)
        assert response.status_code == 400
        assert response.json()["code"] == ErrorCode.INVALID_TOKEN


def test_a_revoked_token_is_refused(admin_api, partnership):
    call_command("revoke_staff_token", admin_api.token.prefix)
    response = admin_api.get(url(partnership))
    assert response.status_code == 401
    assert response.json() == {
        "code": ErrorCode.INVALID_TOKEN,
        "message": "This staff token was revoked",
    }


def test_an_expired_token_is_refused(admin_user, partnership):
    client = staff_client(admin_user, roles.ADMIN, partnership)
    StaffToken.objects.filter(pk=client.token.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = client.get(url(partnership))
    assert response.status_code == 401
    assert response.json()["message"] == "This staff token has expired"


def test_a_deactivated_creators_tokens_stop(admin_api, admin_user, partnership):
    admin_user.is_active = False
    admin_user.save()
    assert admin_api.get(url(partnership)).status_code == 401


def test_the_tokens_of_a_creator_whose_pilot_access_was_removed_stop(
    admin_api, admin_user, partnership
):
    admin_user.is_staff = False
    admin_user.save()

    response = admin_api.get(url(partnership))

    assert response.status_code == 401
    assert response.json()["message"] == (
        "The account this staff token acts as no longer has Pilot access"
    )
    assert staff_token_permissions(token=admin_api.token) == frozenset()


def test_no_token_is_created_for_a_user_without_pilot_access(admin_user):
    admin_user.is_staff = False
    admin_user.save()

    with pytest.raises(CommandError, match="has no Pilot access"):
        call_command("create_staff_token", "--user=admin", "--role=Developer", "--name=ci")

    assert not StaffToken.objects.filter(created_by=admin_user, name="ci").exists()


def test_a_wrong_secret_with_a_real_prefix_is_refused(admin_api, partnership):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_api.token.prefix}.wrong")
    assert client.get(url(partnership)).status_code == 401


def test_a_scoped_token_sees_only_its_partnership(django_user_model, partnership):
    other = PartnershipFactory()
    user = operator(django_user_model, "both", roles.ADMIN, partnership, other)
    client = staff_client(user, roles.ADMIN, partnership)

    listed = client.get(f"{BASE}/partnerships").json()["data"]["results"]
    assert [row["id"] for row in listed] == [str(partnership.pk)]
    for path in (url(other), url(other, "triggers"), url(other, "campaigns")):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json()["code"] == ErrorCode.PARTNERSHIP_DOES_NOT_EXIST


def test_an_unscoped_token_sees_only_its_creators_partnerships(django_user_model, partnership):
    PartnershipFactory()  # not theirs
    user = operator(django_user_model, "member", roles.CAMPAIGN_MANAGER, partnership)
    client = staff_client(user, roles.CAMPAIGN_MANAGER)
    listed = client.get(f"{BASE}/partnerships").json()["data"]["results"]
    assert [row["id"] for row in listed] == [str(partnership.pk)]


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (roles.ADMIN, True),
        (roles.CAMPAIGN_MANAGER, True),
        (roles.DEVELOPER, True),
        (roles.SUPPORT, False),
        (roles.READ_ONLY, False),
    ],
)
def test_who_may_create_a_trigger_is_who_may_in_pilot(
    django_user_model, partnership, role, allowed
):
    user = operator(django_user_model, "someone", role, partnership)
    client = staff_client(user, role, partnership)
    response = client.post(url(partnership, "triggers"), {"name": "signup"}, format="json")
    assert response.status_code == (201 if allowed else 403), response.json()
    if not allowed:
        assert response.json()["code"] == ErrorCode.PERMISSION_DENIED


def test_read_only_reads_but_does_not_write(django_user_model, partnership):
    trigger = TriggerFactory(partnership=partnership)
    user = operator(django_user_model, "reader", roles.READ_ONLY, partnership)
    client = staff_client(user, roles.READ_ONLY, partnership)
    assert client.get(url(partnership, "triggers", trigger.pk)).status_code == 200
    response = client.patch(
        url(partnership, "triggers", trigger.pk),
        {"description": "x"},
        format="json",
        HTTP_IF_MATCH=f'"{trigger.revision}"',
    )
    assert response.status_code == 403


def test_a_token_never_does_more_than_its_creator(django_user_model, partnership):
    """A Campaign Manager cannot make a token with the Admin role (it could approve)."""
    manager = operator(django_user_model, "manager", roles.CAMPAIGN_MANAGER, partnership)
    with pytest.raises(ValidationError) as refused:
        staff_client(manager, roles.ADMIN, partnership)
    assert "role" in refused.value.message_dict


def test_a_token_cannot_name_a_partnership_its_creator_does_not_see(django_user_model):
    user = operator(django_user_model, "outsider", roles.ADMIN)
    with pytest.raises(ValidationError) as refused:
        staff_client(user, roles.ADMIN, PartnershipFactory())
    assert "partnership" in refused.value.message_dict


def test_only_an_unscoped_admin_token_creates_partnerships(django_user_model, partnership):
    root = operator(django_user_model, "root", roles.ADMIN, superuser=True)
    body = {"partner": "Acme Bank", "name": "Acme Rewards", "time_zone": "Europe/Paris"}
    scoped = staff_client(root, roles.ADMIN, partnership)
    assert scoped.post(f"{BASE}/partnerships", body, format="json").status_code == 403
    manager = staff_client(root, roles.CAMPAIGN_MANAGER)
    assert manager.post(f"{BASE}/partnerships", body, format="json").status_code == 403

    response = staff_client(root, roles.ADMIN).post(f"{BASE}/partnerships", body, format="json")
    assert response.status_code == 201, response.json()
    created = Partnership.objects.get(pk=response.json()["data"]["id"])
    assert (created.partner.name, created.time_zone) == ("Acme Bank", "Europe/Paris")


def test_invalid_partnership_fields_are_refused_per_field(django_user_model):
    root = operator(django_user_model, "root", roles.ADMIN, superuser=True)
    body = {"partner": "Acme", "name": "A", "time_zone": "Mars/Olympus", "colour": "red"}
    response = staff_client(root, roles.ADMIN).post(f"{BASE}/partnerships", body, format="json")
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"colour"}
    del body["colour"]
    response = staff_client(root, roles.ADMIN).post(f"{BASE}/partnerships", body, format="json")
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["time_zone"]
    assert not Partnership.objects.filter(name="A").exists()


def test_writes_are_audited_as_the_creator_naming_the_token(admin_api, admin_user, partnership):
    response = admin_api.post(url(partnership, "triggers"), {"name": "signup"}, format="json")
    assert response.status_code == 201
    entry = AuditEntry.objects.get(action="trigger.create")
    assert entry.actor == admin_user
    assert entry.changes["via"] == f"staff token {admin_api.token.prefix} (Admin token)"


def test_the_commands_create_and_revoke_a_token(admin_user, partnership, capsys):
    call_command(
        "create_staff_token",
        "--user=admin",
        "--role=Developer",
        "--name=ci",
        f"--partnership={partnership.pk}",
        "--json",
    )
    import json

    plaintext = json.loads(capsys.readouterr().out)["staff_token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert client.get(url(partnership, "triggers")).status_code == 200
    call_command("revoke_staff_token", plaintext.partition(".")[0])
    assert client.get(url(partnership, "triggers")).status_code == 401


def test_pilot_creates_a_token_shown_once(admin_user, partnership):
    from tests.campaigns.test_approval_pilot import pilot_as

    pilot = pilot_as(admin_user)
    response = pilot.post(
        "/pilot/partnerships/stafftoken/add/",
        {"name": "ci", "role": roles.DEVELOPER, "partnership": partnership.pk},
        follow=True,
    )
    assert response.status_code == 200
    [shown] = [str(m) for m in response.context["messages"] if "<code>" in str(m)]
    plaintext = shown.split("<code>")[1].split("</code>")[0]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert client.get(url(partnership, "triggers")).status_code == 200
    token = StaffToken.objects.get(prefix=plaintext.partition(".")[0])
    assert (token.created_by, token.role) == (admin_user, roles.DEVELOPER)
    page = pilot.get(f"/pilot/partnerships/stafftoken/{token.pk}/change/").content.decode()
    assert plaintext not in page


def test_pilot_refuses_a_token_role_beyond_its_creator(django_user_model, partnership):
    from django.contrib.auth.models import Permission

    from tests.campaigns.test_approval_pilot import pilot_as

    developer = operator(django_user_model, "dev", roles.DEVELOPER, partnership)
    developer.user_permissions.add(Permission.objects.get(codename="add_stafftoken"))
    response = pilot_as(developer).post(
        "/pilot/partnerships/stafftoken/add/",
        {"name": "x", "role": roles.ADMIN, "partnership": partnership.pk},
    )
    assert response.status_code == 200
    assert "role" in response.context["adminform"].form.errors
    assert not StaffToken.objects.exists()
