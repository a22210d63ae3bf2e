"""The production WSGI application serves the ingest route around Django's middleware stack
(config/fastpath.py). Django's test client goes through the full stack, so every response
here is compared with the one the full stack gives for the same request."""

import io
import sys

import orjson
import pytest
from django.core.signals import request_finished
from django.db import close_old_connections
from django.test import Client
from django.urls import resolve

from config.wsgi import application
from tests.factories import ApiKeyFactory, TriggerFactory
from triggers import apis
from triggers.apis import TriggerEventCreateApi
from triggers.models import TriggerEvent

pytestmark = pytest.mark.django_db

EVENT = {
    "trigger_name": "transaction_completed",
    "external_user_id": "ada",
    "transaction_context": {"amount": 30, "currency": "EUR"},
}


def through_wsgi(method: str, path: str, body: bytes, headers: dict[str, str]):
    """Calls the production WSGI application as gunicorn would."""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "testserver",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        **headers,
    }
    started = {}

    def start_response(status, response_headers, exc_info=None):
        started["status"] = int(status.split()[0])
        started["headers"] = dict(response_headers)

    response = application(environ, start_response)
    # As Django's test client does: the test's transaction must keep its connection.
    request_finished.disconnect(close_old_connections)
    try:
        content = b"".join(response)
        response.close()
    finally:
        request_finished.connect(close_old_connections)
    return started["status"], started["headers"], content


def through_django(method: str, path: str, body: bytes, headers: dict[str, str]):
    client = Client(raise_request_exception=False)
    content_type = headers.pop("CONTENT_TYPE", "application/octet-stream")
    response = client.generic(method, path, body, content_type=content_type, **headers)
    return response.status_code, dict(response.headers), response.content


@pytest.fixture
def key():
    key = ApiKeyFactory()
    TriggerFactory(partnership=key.partnership)
    return key


def cases(key) -> dict[str, tuple]:
    url = f"/partnerships/{key.partnership_id}/triggers"
    auth = {"HTTP_X_API_KEY": key.plaintext, "CONTENT_TYPE": "application/json"}
    bad_context = {**EVENT, "transaction_context": {"amount": "thirty"}}
    return {
        "accepted": ("POST", url, orjson.dumps(EVENT), auth),
        "invalid token": ("POST", url, orjson.dumps(EVENT), {**auth, "HTTP_X_API_KEY": "nope"}),
        "unknown partnership": ("POST", "/partnerships/xyz/triggers", orjson.dumps(EVENT), auth),
        "malformed json": ("POST", url, b"{", auth),
        "wrong content type": ("POST", url, b"a=1", {**auth, "CONTENT_TYPE": "text/plain"}),
        "wrong method": ("GET", url, b"", auth),
        "too large": ("POST", url, b" " * (65 * 1024) + orjson.dumps(EVENT), auth),
        "schema violation": ("POST", url, orjson.dumps(bad_context), auth),
        "disallowed host": ("POST", url, orjson.dumps(EVENT), {**auth, "HTTP_HOST": "evil.test"}),
    }


CASES = [
    "accepted",
    "invalid token",
    "unknown partnership",
    "malformed json",
    "wrong content type",
    "wrong method",
    "too large",
    "schema violation",
    "disallowed host",
]


def comparable(status: int, headers: dict, content: bytes) -> tuple:
    body = orjson.loads(content)
    data = body.get("data", {})
    names = ("X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options")
    kept = {name: headers.get(name) for name in names}
    return (
        status,
        headers["Content-Type"],
        kept,
        body["code"],
        body.get("message"),
        body.get("errors"),
        sorted(data),
    )


@pytest.mark.parametrize("case", CASES)
def test_the_short_path_answers_as_the_full_stack_does(key, case):
    method, path, body, headers = cases(key)[case]

    fast = through_wsgi(method, path, body, dict(headers))
    events_after_fast = TriggerEvent.objects.count()
    full = through_django(method, path, body, dict(headers))

    assert comparable(*fast) == comparable(*full)
    # Always a Content-Length (the full stack omits it on some errors): never a chunked body.
    assert fast[1]["Content-Length"] == str(len(fast[2])) != "0"
    assert TriggerEvent.objects.count() == 2 * events_after_fast  # both stored, or neither
    assert events_after_fast == (1 if case == "accepted" else 0)


def test_an_unexpected_error_is_the_json_500_on_both_paths(key, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(apis, "trigger_event_ingest", broken)
    method, path, body, headers = cases(key)["accepted"]

    fast = through_wsgi(method, path, body, dict(headers))
    full = through_django(method, path, body, dict(headers))

    assert fast[0] == full[0] == 500
    assert (
        orjson.loads(fast[2])
        == orjson.loads(full[2])
        == {
            "code": "internal_error",
            "message": "Internal server error",
        }
    )


@pytest.mark.parametrize(
    ("path", "fast"),
    [
        ("/partnerships/abc/triggers", True),
        ("/partnerships/abc/triggers/", False),
        ("/partnerships/abc/triggers/reverse", False),
        ("/partnerships/abc/trigger-events/e1", False),
        ("/partnerships//triggers", False),
        ("/pilot/", False),
    ],
)
def test_only_the_ingest_route_takes_the_short_path(path, fast):
    matched = any(pattern.fullmatch(path) for pattern, _ in application.routes)

    assert matched is fast
    if fast:
        assert resolve(path).func.view_class is TriggerEventCreateApi


def test_refusals_are_logged_as_django_logs_them(key, caplog):
    method, path, body, headers = cases(key)["invalid token"]

    with caplog.at_level("WARNING", logger="django.request"):
        through_wsgi(method, path, body, dict(headers))

    (record,) = [r for r in caplog.records if r.name == "django.request"]
    assert record.levelname == "WARNING"
    assert record.status_code == 400
    assert path in record.getMessage()
