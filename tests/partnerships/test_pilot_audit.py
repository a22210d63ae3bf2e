"""What operators do on Pilot's stock pages lands in the audit log: keys, webhook secrets,
memberships and roles (the issue's "keys, secrets, ... roles"), with who did it, and never a
secret."""

import pytest
from django.contrib.auth.models import Group

from partnerships.models import ApiKey, AuditEntry, PartnershipMember
from rewards.webhooks.models import WebhookEndpoint
from rewards.webhooks.services import webhook_endpoint_create

pytestmark = pytest.mark.django_db


def _entries(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action))


def test_creating_and_revoking_a_key_is_audited_without_the_secret(
    admin_client, admin_user, partnership
):
    response = admin_client.post(
        "/pilot/partnerships/apikey/add/",
        {
            "partnership": partnership.pk,
            "name": "ops",
            "mode": "test",
            "expires_at_0": "",
            "expires_at_1": "",
        },
        follow=True,
    )
    key = ApiKey.objects.get(name="ops")
    (plaintext,) = {
        m.message.split("<code>")[1].split("</code>")[0]
        for m in response.context["messages"]
        if "<code>" in m.message
    }

    (created,) = _entries("apikey.create")
    assert (created.actor, created.partnership, created.mode) == (admin_user, partnership, "test")
    assert created.target_id == str(key.pk) and created.changes["name"] == "ops"
    assert plaintext not in str(created.changes) and key.prefix in plaintext

    for _ in range(2):  # revoking twice is one revocation
        admin_client.post(
            "/pilot/partnerships/apikey/", {"action": "revoke", "_selected_action": [key.pk]}
        )
    (revoked,) = _entries("apikey.revoke")
    assert revoked.target_id == str(key.pk) and revoked.actor_name == admin_user.username


def test_rotating_a_webhook_secret_is_audited(admin_client, partnership):
    endpoint = webhook_endpoint_create(
        endpoint=WebhookEndpoint(partnership=partnership, url="https://example.com/hook")
    )

    admin_client.post(
        "/pilot/rewards/webhookendpoint/",
        {"action": "rotate_secret", "_selected_action": [endpoint.pk]},
    )

    (rotated,) = _entries("webhook.secret_rotate")
    assert (rotated.target_id, rotated.partnership) == (str(endpoint.pk), partnership)
    assert rotated.changes == {}


def test_giving_a_role_and_a_partnership_on_a_users_page_is_audited(
    admin_client, django_user_model, partnership
):
    operator = django_user_model.objects.create_user("olivia", password="x", is_staff=True)
    support = Group.objects.get(name="Support")
    page = admin_client.get(f"/pilot/auth/user/{operator.pk}/change/")
    data = {
        name: value
        for name, value in page.context["adminform"].form.initial.items()
        if value is not None and not isinstance(value, list | tuple)
    }
    data.update(
        {
            "username": "olivia",
            "is_active": "on",
            "is_staff": "on",
            "groups": [support.pk],
            "date_joined_0": operator.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": operator.date_joined.strftime("%H:%M:%S"),
            "last_login_0": "",
            "last_login_1": "",
            "partnership_memberships-TOTAL_FORMS": "1",
            "partnership_memberships-INITIAL_FORMS": "0",
            "partnership_memberships-MIN_NUM_FORMS": "0",
            "partnership_memberships-MAX_NUM_FORMS": "1000",
            "partnership_memberships-0-partnership": partnership.pk,
            "partnership_memberships-0-user": operator.pk,
        }
    )
    data.pop("password", None)

    response = admin_client.post(f"/pilot/auth/user/{operator.pk}/change/", data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert PartnershipMember.objects.filter(user=operator, partnership=partnership).exists()
    (granted,) = _entries("role.grant")
    assert granted.changes == {"role": "Support"} and granted.target_id == str(operator.pk)
    (added,) = _entries("member.add")
    assert (added.partnership, added.target_id) == (partnership, str(operator.pk))

    data["groups"] = []
    data["partnership_memberships-INITIAL_FORMS"] = "1"
    member = PartnershipMember.objects.get(user=operator)
    data["partnership_memberships-0-id"] = member.pk
    data["partnership_memberships-0-DELETE"] = "on"
    admin_client.post(f"/pilot/auth/user/{operator.pk}/change/", data)

    assert [e.changes for e in _entries("role.revoke")] == [{"role": "Support"}]
    assert [e.partnership for e in _entries("member.remove")] == [partnership]
