"""User tokens for client-side apps: issued with the partner key, they reach one user's
rewards and balance and the client-sendable triggers they name, each refusal with its code."""

import uuid
from datetime import timedelta

import jwt
import orjson
import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from config.errors import ErrorCode
from partnerships import user_tokens
from partnerships.models import UserToken
from partnerships.services import api_key_revoke, api_key_rotate
from tests.factories import ApiKeyFactory, TriggerFactory
from triggers.models import TriggerEvent

pytestmark = pytest.mark.django_db

CONTEXT = {"amount": 42.5, "currency": "USD", "merchant_category": "5411"}
ORIGIN = "https://app.example.com"


@pytest.fixture
def app_trigger(partnership):
    return TriggerFactory(
        partnership=partnership,
        name="app_opened",
        context_schema={"type": "object"},
        client_sendable=True,
    )


def issue(partner_client, partnership, user="alice", scopes=("rewards:read",), minutes=60):
    response = partner_client.post(
        f"/partnerships/{partnership.id}/users/{user}/tokens",
        {"scopes": list(scopes), "lifetime_minutes": minutes},
        format="json",
    )
    assert response.status_code == 200, response.content
    return response.json()["data"]


def app(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def balance(client, partnership, user="alice", **extra):
    return client.get(f"/partnerships/{partnership.id}/users/{user}/balance", **extra)


def send(client, partnership, body, **extra):
    return client.post(
        f"/partnerships/{partnership.id}/triggers",
        orjson.dumps(body),
        content_type="application/json",
        **extra,
    )


def refused(response, status: int, code: ErrorCode) -> None:
    assert response.status_code == status, response.content
    assert response.json()["code"] == code and response.json()["message"]


# --- Issuing --------------------------------------------------------------------------------


def test_a_token_is_shown_once_with_the_keys_mode_and_reads_its_users_balance(
    partner_client, partnership
):
    data = issue(partner_client, partnership)

    row = UserToken.objects.get(pk=data["token_id"])
    assert data["mode"] == "live" == row.mode and data["scopes"] == ["rewards:read"]
    assert data["token"] not in str(row.__dict__)  # only the id is kept
    answer = balance(app(data["token"]), partnership)
    assert answer.status_code == 200 and answer.json()["data"]["external_user_id"] == "alice"
    assert jwt.decode(data["token"], options={"verify_signature": False})["mode"] == "live"


def test_a_test_key_issues_test_tokens_that_read_test_data(test_client, partnership):
    data = issue(test_client, partnership)

    answer = balance(app(data["token"]), partnership)
    assert answer.json()["data"]["mode"] == "test"
    refused(
        balance(app(data["token"]), partnership, QUERY_STRING="mode=live"),
        422,
        ErrorCode.MODE_MISMATCH,
    )


@pytest.mark.parametrize("minutes", [0, 1441])
def test_the_lifetime_is_bounded(partner_client, partnership, minutes):
    response = partner_client.post(
        f"/partnerships/{partnership.id}/users/alice/tokens",
        {"scopes": ["rewards:read"], "lifetime_minutes": minutes},
        format="json",
    )

    refused(response, 422, ErrorCode.VALIDATION_ERROR)
    assert response.json()["errors"][0]["field"] == "lifetime_minutes"
    assert not UserToken.objects.exists()


def test_only_client_sendable_triggers_can_be_granted(partner_client, partnership, app_trigger):
    TriggerFactory(partnership=partnership, name="transaction_completed")

    response = partner_client.post(
        f"/partnerships/{partnership.id}/users/alice/tokens",
        {"scopes": ["trigger:app_opened", "trigger:transaction_completed", "trigger:nope", "x"]},
        format="json",
    )

    refused(response, 422, ErrorCode.VALIDATION_ERROR)
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [
        ("scopes.1", "not_client_sendable"),
        ("scopes.2", "trigger_does_not_exist"),
        ("scopes.3", "invalid_choice"),
    ]
    assert not UserToken.objects.exists()


def test_a_token_cannot_issue_tokens(partner_client, partnership):
    data = issue(partner_client, partnership)

    response = app(data["token"]).post(
        f"/partnerships/{partnership.id}/users/alice/tokens", {"scopes": ["rewards:read"]}
    )

    refused(response, 400, ErrorCode.INVALID_TOKEN)


def test_a_token_never_outlives_its_key(partnership):
    key = ApiKeyFactory(partnership=partnership, expires_at=timezone.now() + timedelta(minutes=5))
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key.plaintext)

    data = issue(client, partnership, minutes=60)

    assert UserToken.objects.get(pk=data["token_id"]).expires_at == key.expires_at


# --- Reading --------------------------------------------------------------------------------


def test_a_token_cannot_read_another_user(partner_client, partnership):
    data = issue(partner_client, partnership, user="alice")
    issue(partner_client, partnership, user="bob")

    for path in ("balance", "rewards"):
        response = app(data["token"]).get(f"/partnerships/{partnership.id}/users/bob/{path}")
        refused(response, 403, ErrorCode.TOKEN_WRONG_USER)


def test_a_token_without_the_read_scope_cannot_read(partner_client, partnership, app_trigger):
    data = issue(partner_client, partnership, scopes=["trigger:app_opened"])

    refused(balance(app(data["token"]), partnership), 403, ErrorCode.TOKEN_SCOPE_NOT_GRANTED)


def test_a_token_of_another_partnership_is_unauthorized(partner_client, partnership):
    data = issue(partner_client, partnership)
    other = ApiKeyFactory().partnership

    refused(balance(app(data["token"]), other), 401, ErrorCode.UNAUTHORIZED_REQUEST)


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        jwt.encode(
            {"jti": str(uuid.uuid4())},
            "another secret, long enough for HS256 keys",
            algorithm="HS256",
        ),
        jwt.encode({"alg": "none"}, None, algorithm="none"),
    ],
)
def test_a_bad_token_is_invalid_token(partner_client, partnership, token):
    issue(partner_client, partnership)

    refused(balance(app(token), partnership), 400, ErrorCode.INVALID_TOKEN)


def test_a_token_stops_at_its_expiry(partner_client, partnership):
    data = issue(partner_client, partnership, minutes=10)
    client = app(data["token"])
    assert balance(client, partnership).status_code == 200

    with time_machine.travel(timezone.now() + timedelta(minutes=9)):
        assert balance(client, partnership).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(minutes=10, seconds=1)):
        refused(balance(client, partnership), 401, ErrorCode.TOKEN_EXPIRED)


def test_a_revoked_token_stops_at_the_next_request(partner_client, partnership):
    data = issue(partner_client, partnership)
    other = issue(partner_client, partnership)
    assert balance(app(data["token"]), partnership).status_code == 200

    response = partner_client.delete(
        f"/partnerships/{partnership.id}/users/alice/tokens/{data['token_id']}"
    )

    assert response.status_code == 200 and response.json()["data"]["revoked_at"]
    refused(balance(app(data["token"]), partnership), 401, ErrorCode.TOKEN_REVOKED)
    assert balance(app(other["token"]), partnership).status_code == 200


def test_revoke_all_stops_every_token_of_the_user(partner_client, partnership):
    tokens = [issue(partner_client, partnership) for _ in range(2)]
    bob = issue(partner_client, partnership, user="bob")

    response = partner_client.delete(f"/partnerships/{partnership.id}/users/alice/tokens")

    assert response.json()["data"] == {"revoked": 2}
    for data in tokens:
        refused(balance(app(data["token"]), partnership), 401, ErrorCode.TOKEN_REVOKED)
    assert balance(app(bob["token"]), partnership, user="bob").status_code == 200


def test_revoking_an_unknown_token_is_a_404(partner_client, partnership):
    response = partner_client.delete(
        f"/partnerships/{partnership.id}/users/alice/tokens/{uuid.uuid4()}"
    )

    refused(response, 404, ErrorCode.TOKEN_DOES_NOT_EXIST)


def test_a_token_stops_when_its_key_is_revoked(partner_client, partnership, api_key):
    data = issue(partner_client, partnership)

    api_key_revoke(api_key=api_key)

    refused(balance(app(data["token"]), partnership), 401, ErrorCode.TOKEN_REVOKED)


def test_a_token_stops_when_its_rotated_key_expires(partner_client, partnership, api_key):
    data = issue(partner_client, partnership, minutes=600)
    api_key_rotate(api_key=api_key, overlap_hours=1)

    assert balance(app(data["token"]), partnership).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(hours=1, seconds=1)):
        refused(balance(app(data["token"]), partnership), 401, ErrorCode.TOKEN_EXPIRED)


def test_tokens_have_their_own_rate_limit_per_user(partner_client, partnership, settings):
    settings.USER_TOKEN_RATE_LIMIT_PER_SECOND = 2
    data = issue(partner_client, partnership)

    with time_machine.travel(timezone.now().replace(microsecond=100_000) + timedelta(seconds=3)):
        codes = [balance(app(data["token"]), partnership).status_code for _ in range(3)]
        key_read = partner_client.get(f"/partnerships/{partnership.id}/users/alice/balance")

    assert codes == [200, 200, 429]
    assert key_read.status_code == 200  # the key's own limit is untouched


# --- Sending triggers ---------------------------------------------------------------------


def test_a_token_sends_its_client_sendable_trigger_for_its_user(
    partner_client, partnership, app_trigger
):
    data = issue(partner_client, partnership, scopes=["trigger:app_opened"])

    response = send(
        app(data["token"]), partnership, {"trigger_name": "app_opened", "transaction_context": {}}
    )

    assert response.status_code == 200, response.content
    event = TriggerEvent.objects.get()
    assert event.end_user.external_user_id == "alice" and event.mode == "live"


def test_a_token_cannot_send_a_trigger_that_is_not_client_sendable(partner_client, partnership):
    TriggerFactory(partnership=partnership, name="transaction_completed")
    data = issue(partner_client, partnership)

    response = send(
        app(data["token"]),
        partnership,
        {"trigger_name": "transaction_completed", "transaction_context": CONTEXT},
    )

    refused(response, 403, ErrorCode.TRIGGER_NOT_CLIENT_SENDABLE)
    assert not TriggerEvent.objects.exists()


def test_a_token_cannot_send_a_trigger_it_was_not_granted(partner_client, partnership, app_trigger):
    data = issue(partner_client, partnership, scopes=["rewards:read"])

    response = send(app(data["token"]), partnership, {"trigger_name": "app_opened"})

    refused(response, 403, ErrorCode.TOKEN_SCOPE_NOT_GRANTED)


def test_a_token_cannot_send_for_another_user(partner_client, partnership, app_trigger):
    data = issue(partner_client, partnership, scopes=["trigger:app_opened"])

    response = send(
        app(data["token"]),
        partnership,
        {"trigger_name": "app_opened", "external_user_id": "bob"},
    )

    refused(response, 403, ErrorCode.TOKEN_WRONG_USER)
    assert not TriggerEvent.objects.exists()


@pytest.mark.parametrize(
    "extra",
    [
        {"occurred_at": "2020-01-01T00:00:00Z"},
        {"delay": {"hours": 1}},
        {"deliver_at": "2030-01-01T00:00:00Z"},
        {"user_uuid": str(uuid.uuid4())},
    ],
)
def test_a_token_cannot_choose_the_time_or_the_user(
    partner_client, partnership, app_trigger, extra
):
    data = issue(partner_client, partnership, scopes=["trigger:app_opened"])

    response = send(app(data["token"]), partnership, {"trigger_name": "app_opened", **extra})

    refused(response, 422, ErrorCode.VALIDATION_ERROR)
    assert response.json()["errors"] == [
        {
            "field": next(iter(extra)),
            "code": "not_allowed",
            "message": f"{next(iter(extra))} cannot be sent with a user token",
        }
    ]
    assert not TriggerEvent.objects.exists()


def test_idempotency_keys_are_each_users_own(partner_client, partnership, app_trigger):
    alice = issue(partner_client, partnership, scopes=["trigger:app_opened"])
    bob = issue(partner_client, partnership, user="bob", scopes=["trigger:app_opened"])
    body = {"trigger_name": "app_opened"}

    first = send(app(alice["token"]), partnership, body, HTTP_IDEMPOTENCY_KEY="open-1")
    again = send(app(alice["token"]), partnership, body, HTTP_IDEMPOTENCY_KEY="open-1")
    bobs = send(app(bob["token"]), partnership, body, HTTP_IDEMPOTENCY_KEY="open-1")

    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["data"]["trigger_event_id"] == first.json()["data"]["trigger_event_id"]
    assert bobs.status_code == 200 and "Idempotent-Replayed" not in bobs.headers
    assert bobs.json()["data"]["trigger_event_id"] != first.json()["data"]["trigger_event_id"]
    assert TriggerEvent.objects.count() == 2


@pytest.mark.parametrize("key", [5, True, 1.5, {"a": 1}, ["open-1"], "", None])
def test_a_body_idempotency_key_that_is_not_a_non_empty_string_is_422_at_its_field(
    partner_client, partnership, app_trigger, key
):
    alice = issue(partner_client, partnership, scopes=["trigger:app_opened"])
    body = {"trigger_name": "app_opened", "idempotency_key": key}

    by_token = send(app(alice["token"]), partnership, body)
    by_key = send(partner_client, partnership, {**body, "external_user_id": "alice"})

    for response in (by_token, by_key):
        refused(response, 422, ErrorCode.VALIDATION_ERROR)
        assert [e["field"] for e in response.json()["errors"]] == ["idempotency_key"]
    assert not TriggerEvent.objects.exists()


def test_the_key_path_is_unchanged_beside_a_bearer_header(partner_client, partnership):
    TriggerFactory(partnership=partnership, name="transaction_completed")
    body = {
        "trigger_name": "transaction_completed",
        "external_user_id": "u",
        "transaction_context": CONTEXT,
        "occurred_at": timezone.now().isoformat(),
    }

    response = send(partner_client, partnership, body, HTTP_AUTHORIZATION="Bearer junk")

    assert response.status_code == 200, response.content


# --- CORS ---------------------------------------------------------------------------------


@pytest.fixture
def browser_partnership(partnership):
    partnership.allowed_origins = [ORIGIN]
    partnership.save()
    return partnership


@pytest.mark.parametrize(
    ("path", "methods"),
    [("triggers", "POST, OPTIONS"), ("users/alice/balance", "GET, OPTIONS")],
)
def test_a_preflight_is_answered_for_the_partnerships_origins_only(
    client, browser_partnership, path, methods
):
    url = f"/partnerships/{browser_partnership.id}/{path}"
    headers = {"HTTP_ACCESS_CONTROL_REQUEST_METHOD": methods.split(",")[0]}

    allowed = client.options(url, HTTP_ORIGIN=ORIGIN, **headers)
    other = client.options(url, HTTP_ORIGIN="https://evil.example", **headers)

    assert allowed.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert allowed.headers["Access-Control-Allow-Methods"] == methods
    assert "Authorization" in allowed.headers["Access-Control-Allow-Headers"]
    assert other.status_code == 204 and "Access-Control-Allow-Origin" not in other.headers
    plain = client.options(url)  # not a preflight: refused as before (405, or the key's 400)
    assert plain.status_code in (400, 405) and "Access-Control-Allow-Origin" not in plain.headers


def test_a_preflight_of_a_key_only_endpoint_gets_no_grant(client, browser_partnership):
    response = client.options(
        f"/partnerships/{browser_partnership.id}/users/alice/tokens", HTTP_ORIGIN=ORIGIN
    )

    assert "Access-Control-Allow-Origin" not in response.headers


def test_answers_to_an_allowed_origin_carry_the_grant_errors_included(
    partner_client, browser_partnership
):
    data = issue(partner_client, browser_partnership)

    ok = balance(app(data["token"]), browser_partnership, HTTP_ORIGIN=ORIGIN)
    wrong = balance(app(data["token"]), browser_partnership, user="bob", HTTP_ORIGIN=ORIGIN)
    sent = send(app(data["token"]), browser_partnership, {"trigger_name": "x"}, HTTP_ORIGIN=ORIGIN)

    for response in (ok, wrong, sent):
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert wrong.status_code == 403 and sent.status_code == 404


def test_an_origin_must_be_an_origin(browser_partnership):
    from django.core.exceptions import ValidationError

    browser_partnership.allowed_origins = ["https://app.example.com/path"]
    with pytest.raises(ValidationError):
        browser_partnership.full_clean()


def test_the_secret_is_derived_when_not_configured(settings):
    settings.USER_TOKEN_SECRET = ""
    derived = user_tokens._secret()
    settings.USER_TOKEN_SECRET = "configured"
    assert derived != settings.SECRET_KEY.encode() and user_tokens._secret() == b"configured"


def test_a_trigger_unmarked_later_is_refused_to_tokens_that_name_it(
    partner_client, partnership, app_trigger
):
    data = issue(partner_client, partnership, scopes=["trigger:app_opened"])
    assert send(app(data["token"]), partnership, {"trigger_name": "app_opened"}).status_code == 200

    app_trigger.client_sendable = False
    app_trigger.save()

    response = send(app(data["token"]), partnership, {"trigger_name": "app_opened"})
    refused(response, 403, ErrorCode.TRIGGER_NOT_CLIENT_SENDABLE)


def test_the_origins_are_edited_on_the_partnerships_pilot_page(admin_client, partnership):
    page = admin_client.get(f"/pilot/partnerships/partnership/{partnership.pk}/change/")

    assert b'name="allowed_origins"' in page.content


@pytest.mark.django_db(transaction=True)
def test_the_production_fast_path_serves_preflights_and_token_events(
    partner_client, browser_partnership, app_trigger
):
    from tests.wsgi import call

    data = issue(partner_client, browser_partnership, scopes=["trigger:app_opened"])
    path = f"/partnerships/{browser_partnership.id}/triggers"

    preflight = call(
        "OPTIONS",
        path,
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    sent = call(
        "POST",
        path,
        body=orjson.dumps({"trigger_name": "app_opened"}),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {data['token']}",
            "Origin": ORIGIN,
        },
    )

    assert preflight.status == 204
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert sent.status == 200, sent.body
    assert sent.headers["access-control-allow-origin"] == ORIGIN
    assert TriggerEvent.objects.get().end_user.external_user_id == "alice"
