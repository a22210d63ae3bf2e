"""/readyz asks the broker CELERY_BROKER_URL names: Redis as a PING, RabbitMQ (amqp://) through
kombu's connection, the AMQP handshake and login included; the machine's RabbitMQ at 127.0.0.1:5672
(guest/guest, or RABBITMQ_URL), started before the session and in CI."""

import os
import socket
import time

import pytest
from kombu import Connection

from config.health import BROKER_TIMEOUT_SECONDS

pytestmark = pytest.mark.django_db

RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")


@pytest.fixture
def rabbitmq_url() -> str:
    """The machine's RabbitMQ; without one the test skips with the reason, except under CI
    (CI=true), where the machine starts one and the test must run."""
    try:
        with Connection(RABBITMQ_URL, connect_timeout=2) as broker:
            broker.ensure_connection(max_retries=0)
    except Exception as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"RabbitMQ at {RABBITMQ_URL} is not reachable under CI: {exc!r}")
        pytest.skip(f"no RabbitMQ at {RABBITMQ_URL}: {exc!r}")
    return RABBITMQ_URL


def assert_not_ready(response, broker_error: str) -> dict:
    """The documented shape (docs/operations.md): 503, code not_ready, the failing check named."""
    assert response.status_code == 503, response.content
    body = response.json()
    assert body["code"] == "not_ready"
    assert body["message"] == "Not ready: broker unreachable"
    assert body["data"]["checks"] == {"database": "ok", "broker": f"error: {broker_error}"}
    return body


def test_readyz_is_ready_with_rabbitmq_as_the_broker(client, settings, rabbitmq_url):
    settings.CELERY_BROKER_URL = rabbitmq_url

    response = client.get("/readyz")

    assert response.status_code == 200, response.content
    assert response.json() == {"code": "ok", "data": {"checks": {"database": "ok", "broker": "ok"}}}


def test_readyz_is_503_when_rabbitmq_refuses_the_login_and_shows_no_password(
    client, settings, rabbitmq_url
):
    settings.CELERY_BROKER_URL = rabbitmq_url.replace("guest:guest@", "guest:not-the-secret@")

    response = client.get("/readyz")

    assert_not_ready(response, "AccessRefused")
    assert b"not-the-secret" not in response.content


def test_readyz_is_503_when_nothing_listens_at_the_amqp_address(client, settings):
    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.CELERY_BROKER_URL = f"amqp://guest:guest@127.0.0.1:{port}//"

    response = client.get("/readyz")

    assert_not_ready(response, "OperationalError")


def test_readyz_gives_up_on_an_amqp_broker_that_never_answers(client, settings):
    """A broker that accepts the connection but never speaks (hung, or a wrong port's service)
    is unready after about BROKER_TIMEOUT_SECONDS, not after the load balancer's timeout."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        settings.CELERY_BROKER_URL = f"amqp://guest:guest@127.0.0.1:{silent.getsockname()[1]}//"
        started = time.monotonic()

        response = client.get("/readyz")

        elapsed = time.monotonic() - started
    assert_not_ready(response, "OperationalError")
    assert elapsed < 3 * BROKER_TIMEOUT_SECONDS


def test_readyz_still_pings_redis_when_the_broker_is_redis(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"

    assert_not_ready(client.get("/readyz"), "ConnectionError")
