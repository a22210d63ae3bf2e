"""Pilot's user tokens page: an operator finds a user's app tokens (their partnership's only),
sees each one's mode, scopes and status, and revokes them; the app is refused from its next
request on, the revocation is audited, and a viewer can look but not revoke."""

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from partnerships.models import AuditEntry, PartnershipMember, UserToken
from tests.factories import ApiKeyFactory
from tests.pilot_support import page_text

pytestmark = pytest.mark.django_db

LIST = "/pilot/partnerships/usertoken/"


def issue(api_key, user: str) -> dict:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=api_key.plaintext)
    response = client.post(
        f"/partnerships/{api_key.partnership_id}/users/{user}/tokens",
        {"scopes": ["rewards:read"], "lifetime_minutes": 60},
        format="json",
    )
    assert response.status_code == 200, response.content
    return response.json()["data"]


def balance(api_key, user: str, token: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.get(f"/partnerships/{api_key.partnership_id}/users/{user}/balance")


def operator_with_role(client, django_user_model, role: str, partnership):
    user = django_user_model.objects.create_user(f"{role}-op", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    PartnershipMember.objects.create(user=user, partnership=partnership)
    client.force_login(user)
    return user


@pytest.fixture
def keys():
    return ApiKeyFactory(), ApiKeyFactory()  # two partnerships


def test_support_finds_a_users_token_of_their_partnership_and_revokes_it(
    client, django_user_model, keys
):
    ours, theirs = keys
    alice = issue(ours, "alice")
    issue(ours, "bob")
    other = issue(theirs, "alice")  # the same external id in another partnership
    operator = operator_with_role(client, django_user_model, "Support", ours.partnership)
    assert balance(ours, "alice", alice["token"]).status_code == 200

    page = page_text(client.get(LIST, {"q": "alice"}))
    assert alice["token_id"] in page and "rewards:read" in page and "active" in page
    assert other["token_id"] not in page  # partnership B's token, same user name
    assert client.get(f"{LIST}{other['token_id']}/change/").status_code in (302, 404)

    response = client.post(
        LIST, {"action": "revoke", "_selected_action": [alice["token_id"]]}, follow=True
    )

    assert "Revoked 1 user token(s)." in page_text(response)
    assert UserToken.objects.get(pk=alice["token_id"]).revoked_at is not None
    refused = balance(ours, "alice", alice["token"])
    assert refused.status_code == 401 and refused.json()["code"] == "token_revoked"
    entry = AuditEntry.objects.get(action="usertoken.revoke")
    assert entry.actor == operator and entry.target_id == alice["token_id"]
    assert page_text(client.get(LIST, {"status": "revoked"})).count(alice["token_id"]) >= 1
    # Revoking it again changes nothing and is not audited twice.
    client.post(LIST, {"action": "revoke", "_selected_action": [alice["token_id"]]})
    assert AuditEntry.objects.filter(action="usertoken.revoke").count() == 1


def test_read_only_sees_tokens_but_cannot_revoke_and_no_one_edits_or_adds_one(
    client, django_user_model, keys
):
    ours, _ = keys
    alice = issue(ours, "alice")
    operator_with_role(client, django_user_model, "Read Only", ours.partnership)

    page = page_text(client.get(LIST))
    assert alice["token_id"] in page
    assert 'value="revoke"' not in page

    response = client.post(LIST, {"action": "revoke", "_selected_action": [alice["token_id"]]})

    assert UserToken.objects.get(pk=alice["token_id"]).revoked_at is None
    assert response.status_code in (200, 302, 403)
    assert balance(ours, "alice", alice["token"]).status_code == 200
    assert client.get(f"{LIST}add/").status_code == 403
    change = client.post(f"{LIST}{alice['token_id']}/change/", {"scopes": "trigger:x"})
    assert change.status_code in (302, 403)
    assert UserToken.objects.get(pk=alice["token_id"]).scopes == ["rewards:read"]
