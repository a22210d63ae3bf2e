import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from config.errors import ErrorCode
from partnerships.models import ApiKey, Partnership
from partnerships.services import api_key_revoke
from tests.factories import ApiKeyFactory, PartnershipFactory

pytestmark = pytest.mark.django_db


def url(partnership_id) -> str:
    return f"/partnerships/{partnership_id}"


def assert_error(response, status: int, code: ErrorCode) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]


def test_valid_key_authenticates_and_names_its_partnership(api_client, api_key):
    response = api_client.get(url(api_key.partnership_id), HTTP_X_API_KEY=api_key.plaintext)

    assert response.status_code == 200
    assert response.json() == {
        "code": "ok",
        "data": {
            "partnership_id": str(api_key.partnership_id),
            "name": api_key.partnership.name,
            "status": "active",
            "reward_unit": "Points",
            "mode": "live",
            "key_prefix": api_key.prefix,
        },
    }


def test_missing_key_is_invalid_token(api_client, partnership):
    response = api_client.get(url(partnership.id))

    assert_error(response, 400, ErrorCode.INVALID_TOKEN)
    assert response.json() == {"code": "invalid_token", "message": "Invalid token"}


@pytest.mark.parametrize(
    "raw_key",
    ["garbage", "pk_live_abcdefgh", "pk_live_abcdefgh.", "sk_live_abcdefgh.secret", ".secret"],
)
def test_malformed_key_is_invalid_token(api_client, partnership, raw_key):
    response = api_client.get(url(partnership.id), HTTP_X_API_KEY=raw_key)

    assert_error(response, 400, ErrorCode.INVALID_TOKEN)


def test_unknown_key_is_invalid_token(api_client, partnership):
    response = api_client.get(url(partnership.id), HTTP_X_API_KEY="pk_live_zzzzzzzz.unknownsecret")

    assert_error(response, 400, ErrorCode.INVALID_TOKEN)


def test_right_prefix_with_wrong_secret_is_invalid_token(api_client, api_key):
    forged = f"{api_key.prefix}.not-the-secret"

    response = api_client.get(url(api_key.partnership_id), HTTP_X_API_KEY=forged)

    assert_error(response, 400, ErrorCode.INVALID_TOKEN)


def test_revoked_key_is_invalid_token(api_client, api_key):
    api_client.get(url(api_key.partnership_id), HTTP_X_API_KEY=api_key.plaintext)  # warm cache
    api_key_revoke(api_key=api_key)

    response = api_client.get(url(api_key.partnership_id), HTTP_X_API_KEY=api_key.plaintext)

    assert_error(response, 400, ErrorCode.INVALID_TOKEN)


def test_expired_key_is_invalid_token(api_client, partnership):
    expired = ApiKeyFactory(partnership=partnership, expires_at=timezone.now() - timedelta(1))

    response = api_client.get(url(partnership.id), HTTP_X_API_KEY=expired.plaintext)

    assert_error(response, 400, ErrorCode.INVALID_TOKEN)


def test_key_that_expires_later_still_works(api_client, partnership):
    later = ApiKeyFactory(partnership=partnership, expires_at=timezone.now() + timedelta(1))

    response = api_client.get(url(partnership.id), HTTP_X_API_KEY=later.plaintext)

    assert response.status_code == 200


def test_key_of_partnership_a_is_unauthorized_on_partnership_b(api_client, api_key):
    other = PartnershipFactory()

    response = api_client.get(url(other.id), HTTP_X_API_KEY=api_key.plaintext)

    assert_error(response, 401, ErrorCode.UNAUTHORIZED_REQUEST)
    assert response.json()["message"] == "Token is not authorized to make this request"


@pytest.mark.parametrize("partnership_id", [uuid.uuid4(), "not-a-uuid", "123"])
def test_unknown_partnership_does_not_exist(api_client, api_key, partnership_id):
    response = api_client.get(url(partnership_id), HTTP_X_API_KEY=api_key.plaintext)

    assert_error(response, 404, ErrorCode.PARTNERSHIP_DOES_NOT_EXIST)
    assert response.json()["message"] == "The partnership does not exist"


def test_invalid_key_is_checked_before_partnership_existence(api_client):
    response = api_client.get(url(uuid.uuid4()), HTTP_X_API_KEY="nope")

    assert_error(response, 400, ErrorCode.INVALID_TOKEN)


def test_suspended_partnership_is_refused(api_client, api_key):
    Partnership.objects.filter(pk=api_key.partnership_id).update(status="suspended")

    response = api_client.get(url(api_key.partnership_id), HTTP_X_API_KEY=api_key.plaintext)

    assert_error(response, 403, ErrorCode.PARTNERSHIP_SUSPENDED)


def test_ip_inside_allow_list_is_accepted(api_client, api_key):
    partnership = api_key.partnership
    partnership.allowed_cidrs = ["10.0.0.0/8", "192.0.2.7"]
    partnership.save()

    response = api_client.get(
        url(partnership.id), HTTP_X_API_KEY=api_key.plaintext, REMOTE_ADDR="10.1.2.3"
    )

    assert response.status_code == 200


def test_ip_outside_allow_list_is_unauthorized(api_client, api_key):
    partnership = api_key.partnership
    partnership.allowed_cidrs = ["10.0.0.0/8", "2001:db8::/32"]
    partnership.save()

    response = api_client.get(
        url(partnership.id), HTTP_X_API_KEY=api_key.plaintext, REMOTE_ADDR="192.0.2.1"
    )

    assert_error(response, 401, ErrorCode.UNAUTHORIZED_REQUEST)


def test_allow_list_change_applies_to_a_warm_cache(api_client, api_key):
    partnership = api_key.partnership
    headers = {"HTTP_X_API_KEY": api_key.plaintext, "REMOTE_ADDR": "192.0.2.1"}
    assert api_client.get(url(partnership.id), **headers).status_code == 200

    partnership.allowed_cidrs = ["10.0.0.0/8"]
    partnership.save()

    assert_error(
        api_client.get(url(partnership.id), **headers), 401, ErrorCode.UNAUTHORIZED_REQUEST
    )


def test_forwarded_for_is_ignored_without_trusted_proxies(api_client, api_key, settings):
    settings.NUM_PROXIES = 0
    partnership = api_key.partnership
    partnership.allowed_cidrs = ["10.0.0.0/8"]
    partnership.save()

    response = api_client.get(
        url(partnership.id),
        HTTP_X_API_KEY=api_key.plaintext,
        REMOTE_ADDR="192.0.2.1",
        HTTP_X_FORWARDED_FOR="10.0.0.1",
    )

    assert_error(response, 401, ErrorCode.UNAUTHORIZED_REQUEST)


def test_forwarded_for_from_a_trusted_proxy_is_used(api_client, api_key, settings):
    settings.NUM_PROXIES = 1
    partnership = api_key.partnership
    partnership.allowed_cidrs = ["10.0.0.0/8"]
    partnership.save()

    response = api_client.get(
        url(partnership.id),
        HTTP_X_API_KEY=api_key.plaintext,
        REMOTE_ADDR="172.16.0.1",
        HTTP_X_FORWARDED_FOR="192.0.2.9, 10.0.0.1",
    )

    assert response.status_code == 200


def test_test_mode_key_reports_test_mode(api_client, partnership):
    test_key = ApiKeyFactory(partnership=partnership, mode=ApiKey.Mode.TEST)

    response = api_client.get(url(partnership.id), HTTP_X_API_KEY=test_key.plaintext)

    assert response.status_code == 200
    assert response.json()["data"]["mode"] == "test"
    assert test_key.prefix.startswith("pk_test_")


def test_raw_key_is_stored_nowhere_in_the_database(api_key):
    secret = api_key.plaintext.partition(".")[2]
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(k)::text FROM partnerships_apikey k")
        rows = [row[0] for row in cursor.fetchall()]

    assert rows
    assert not any(api_key.plaintext in row or secret in row for row in rows)


def test_key_format_has_environment_marker_and_high_entropy_secret(api_key):
    prefix, _, secret = api_key.plaintext.partition(".")

    assert prefix == api_key.prefix
    assert prefix.startswith("pk_live_") and len(prefix) == len("pk_live_") + 8
    assert len(secret) >= 43  # 32 random bytes, url-safe base64


def test_last_used_at_is_recorded_at_most_once_a_minute(api_client, api_key):
    api_client.get(url(api_key.partnership_id), HTTP_X_API_KEY=api_key.plaintext)
    api_key.refresh_from_db()
    first = api_key.last_used_at
    assert first is not None

    api_client.get(url(api_key.partnership_id), HTTP_X_API_KEY=api_key.plaintext)
    api_key.refresh_from_db()

    assert api_key.last_used_at == first
