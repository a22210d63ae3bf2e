"""One way to revoke a user token, from Pilot and from the partner API
(``partnerships.user_tokens.user_token_revoke_as``): both leave the same audit entry (the
operator, or the key, as actor), a token revoked on one side is a no-op on the other (no second
entry, the first revocation's time kept), and two revocations racing audit it once."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from config.errors import ErrorCode
from partnerships.models import AuditEntry, PartnershipMember, UserToken
from partnerships.user_tokens import AUDIT_REVOKE
from tests.factories import ApiKeyFactory
from tests.pilot_support import page_text
from tests.races import race_behind_lock

LIST = "/pilot/partnerships/usertoken/"
SHAPE = ("action", "partnership_id", "mode", "target_type", "target_id", "target_repr")


def issue(api_key, user: str = "alice") -> dict:
    response = partner(api_key).post(
        f"/partnerships/{api_key.partnership_id}/users/{user}/tokens",
        {"scopes": ["rewards:read"], "lifetime_minutes": 60},
        format="json",
    )
    assert response.status_code == 200, response.content
    return response.json()["data"]


def partner(api_key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=api_key.plaintext)
    return client


def api_revoke(api_key, token_id: str, user: str = "alice"):
    return partner(api_key).delete(
        f"/partnerships/{api_key.partnership_id}/users/{user}/tokens/{token_id}"
    )


def operator(django_user_model, role: str, partnership) -> Client:
    user = django_user_model.objects.create_user(f"{role.lower()}-op", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    PartnershipMember.objects.create(user=user, partnership=partnership)
    client = Client()
    client.force_login(user)
    client.user = user
    return client


def pilot_revoke(client: Client, *token_ids: str):
    return client.post(LIST, {"action": "revoke", "_selected_action": list(token_ids)}, follow=True)


def entries(token_id: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=AUDIT_REVOKE, target_id=token_id))


def shape(entry: AuditEntry) -> tuple:
    return tuple(getattr(entry, name) for name in SHAPE)


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["Support", "Developer"])
def test_pilot_and_the_api_leave_the_same_audit_entry_each_naming_its_actor(
    django_user_model, role
):
    key = ApiKeyFactory()
    by_pilot, by_api = issue(key), issue(key)
    pilot = operator(django_user_model, role, key.partnership)

    page = page_text(pilot_revoke(pilot, by_pilot["token_id"]))
    answer = api_revoke(key, by_api["token_id"])

    assert "Revoked 1 user token(s)." in page
    assert answer.status_code == 200 and answer.json()["data"]["revoked_at"]
    (from_pilot,) = entries(by_pilot["token_id"])
    (from_api,) = entries(by_api["token_id"])
    assert (
        shape(from_pilot)[:3]
        == shape(from_api)[:3]
        == (
            AUDIT_REVOKE,
            key.partnership_id,
            "live",
        )
    )
    assert from_pilot.target_type == from_api.target_type == "partnerships.usertoken"
    assert (from_pilot.actor, from_pilot.actor_name) == (pilot.user, pilot.user.username)
    assert from_pilot.changes == {"via": "pilot"}
    assert (from_api.actor, from_api.actor_name) == (None, f"api key {key.prefix}")
    assert from_api.changes == {"via": "api"}


@pytest.mark.django_db
def test_a_token_revoked_in_pilot_is_a_no_op_for_the_api_and_keeps_its_revocation(
    django_user_model,
):
    key = ApiKeyFactory()
    token = issue(key)
    pilot_revoke(operator(django_user_model, "Support", key.partnership), token["token_id"])
    revoked_at = UserToken.objects.get(pk=token["token_id"]).revoked_at

    answer = api_revoke(key, token["token_id"])

    assert answer.status_code == 200
    assert answer.json()["data"]["revoked_at"] == revoked_at.isoformat().replace("+00:00", "Z")
    assert UserToken.objects.get(pk=token["token_id"]).revoked_at == revoked_at
    assert [entry.changes["via"] for entry in entries(token["token_id"])] == ["pilot"]


@pytest.mark.django_db
def test_a_token_revoked_by_the_api_is_left_as_it_was_by_pilot_which_says_so(
    django_user_model,
):
    key = ApiKeyFactory()
    revoked, live = issue(key), issue(key)
    assert api_revoke(key, revoked["token_id"]).status_code == 200

    page = page_text(
        pilot_revoke(
            operator(django_user_model, "Developer", key.partnership),
            revoked["token_id"],
            live["token_id"],
        )
    )

    assert "Revoked 1 user token(s)." in page
    assert "1 already revoked: left as they were." in page
    assert [entry.changes["via"] for entry in entries(revoked["token_id"])] == ["api"]
    assert [entry.changes["via"] for entry in entries(live["token_id"])] == ["pilot"]


@pytest.mark.django_db
def test_read_only_is_refused_the_revoke_action_and_nothing_is_audited(django_user_model):
    key = ApiKeyFactory()
    token = issue(key)
    viewer = operator(django_user_model, "Read Only", key.partnership)

    page = page_text(viewer.get(LIST))
    response = viewer.post(LIST, {"action": "revoke", "_selected_action": [token["token_id"]]})

    assert token["token_id"] in page and 'value="revoke"' not in page
    assert response.status_code in (200, 302, 403)
    assert "Revoked 1 user token(s)." not in page_text(viewer.get(LIST))
    assert UserToken.objects.get(pk=token["token_id"]).revoked_at is None
    assert entries(token["token_id"]) == []


@pytest.mark.django_db
def test_revoke_all_leaves_expired_tokens_alone_and_unaudited():
    key = ApiKeyFactory()
    expired, live = issue(key), issue(key)
    UserToken.objects.filter(pk=expired["token_id"]).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )

    response = partner(key).delete(f"/partnerships/{key.partnership_id}/users/alice/tokens")

    assert response.json()["data"] == {"revoked": 1}
    assert entries(expired["token_id"]) == [] and len(entries(live["token_id"])) == 1
    assert UserToken.objects.get(pk=expired["token_id"]).revoked_at is None


@pytest.mark.django_db
def test_revoke_all_audits_each_token_it_revokes_and_nothing_the_second_time():
    key = ApiKeyFactory()
    first, second = issue(key), issue(key)
    assert api_revoke(key, first["token_id"]).status_code == 200
    url = f"/partnerships/{key.partnership_id}/users/alice/tokens"

    again = partner(key).delete(url)
    once_more = partner(key).delete(url)

    assert again.json()["data"] == {"revoked": 1}
    assert once_more.json()["data"] == {"revoked": 0}
    for token in (first, second):
        (entry,) = entries(token["token_id"])
        assert entry.actor_name == f"api key {key.prefix}" and entry.changes == {"via": "api"}


@pytest.mark.django_db
def test_an_unknown_token_is_still_a_404_and_nothing_is_audited():
    key = ApiKeyFactory()
    token = issue(key, user="bob")

    response = api_revoke(key, token["token_id"], user="alice")  # bob's, not alice's

    assert response.status_code == 404
    assert response.json()["code"] == ErrorCode.TOKEN_DOES_NOT_EXIST
    assert UserToken.objects.get(pk=token["token_id"]).revoked_at is None
    assert not AuditEntry.objects.filter(action=AUDIT_REVOKE).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
@pytest.mark.parametrize("first", ["pilot", "api"])
def test_pilot_and_the_api_revoking_at_once_audit_the_token_once(django_user_model, first):
    key = ApiKeyFactory()
    token = issue(key)
    pilot = operator(django_user_model, "Support", key.partnership)
    calls = {
        "pilot": lambda: pilot_revoke(pilot, token["token_id"]),
        "api": lambda: api_revoke(key, token["token_id"]),
    }

    answers = race_behind_lock(
        UserToken.objects.filter(pk=token["token_id"]),
        calls,
        sorted(calls, key=lambda name: name != first),
    )

    assert answers["api"].status_code == 200, answers
    assert answers["pilot"].status_code == 200, answers
    assert len(entries(token["token_id"])) == 1
    seen = page_text(answers["pilot"])
    if first == "pilot":
        assert "Revoked 1 user token(s)." in seen and "already revoked" not in seen
    else:
        assert (
            "Revoked 0 user token(s)." in seen and "1 already revoked: left as they were." in seen
        )
