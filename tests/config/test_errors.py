import uuid

import pytest

from config.errors import ErrorCode

pytestmark = pytest.mark.django_db


def assert_envelope(response, status: int, code: ErrorCode) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == code
    assert body["message"]
    return body


@pytest.mark.parametrize("path", ["/nothing-here", "/partnerships", "/partnerships/x/y/z", "/api/"])
def test_unknown_url_is_a_json_404(client, path):
    assert_envelope(client.get(path), 404, ErrorCode.NOT_FOUND)


def test_wrong_method_is_a_json_405(partner_client, partnership):
    response = partner_client.delete(f"/partnerships/{partnership.id}")

    assert_envelope(response, 405, ErrorCode.METHOD_NOT_ALLOWED)


def test_oversized_body_is_a_json_413_before_it_is_read(client, settings):
    body = "x" * (settings.API_MAX_BODY_BYTES + 1)

    response = client.post(f"/partnerships/{uuid.uuid4()}", body, content_type="application/json")

    assert_envelope(response, 413, ErrorCode.PAYLOAD_TOO_LARGE)


@pytest.mark.urls("tests.config.probe_urls")
def test_malformed_json_is_a_400(client):
    response = client.post("/probe/echo", '{"a": ', content_type="application/json")

    assert_envelope(response, 400, ErrorCode.MALFORMED_JSON)


@pytest.mark.urls("tests.config.probe_urls")
def test_wrong_content_type_is_a_415(client):
    response = client.post("/probe/echo", "a=1", content_type="application/x-www-form-urlencoded")

    assert_envelope(response, 415, ErrorCode.UNSUPPORTED_MEDIA_TYPE)


@pytest.mark.urls("tests.config.probe_urls")
def test_a_bug_is_a_json_500_without_details(client):
    response = client.get("/probe/broken")

    body = assert_envelope(response, 500, ErrorCode.INTERNAL_ERROR)
    assert "a bug" not in body["message"]


def test_healthz_answers_while_the_process_is_up(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["data"]["status"] == "up"


def test_readyz_checks_database_and_broker(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["data"]["checks"] == {"database": "ok", "broker": "ok"}


def test_readyz_names_an_unreachable_broker(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"

    response = client.get("/readyz")

    body = assert_envelope(response, 503, "not_ready")
    assert body["data"]["checks"]["database"] == "ok"
    assert body["data"]["checks"]["broker"].startswith("error")
    assert "broker" in body["message"]


@pytest.mark.parametrize(
    ("psycopg_error", "status"),
    [
        ("QueryCanceled", 503),  # statement timeout
        ("AdminShutdown", 503),
        ("DeadlockDetected", 503),
        ("LockNotAvailable", 503),
        ("TooManyConnections", 503),
        ("ProgramLimitExceeded", None),  # a bug, not an outage: a 500
    ],
)
def test_only_database_errors_that_pass_with_time_are_503s(psycopg_error, status):
    import psycopg.errors
    from django.db import OperationalError

    from config.errors import to_application_error

    error = OperationalError("the database said no")
    error.__cause__ = getattr(psycopg.errors, psycopg_error)()

    mapped = to_application_error(error)

    assert (mapped.status if mapped else None) == status
