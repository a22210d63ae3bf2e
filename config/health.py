from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from kombu import Connection

# Each probe of a broker gives up after this long (connect, then each read or write): a load
# balancer's health check must not hang on a broker that accepts connections but never answers.
BROKER_TIMEOUT_SECONDS = 1.0
REDIS_SCHEMES = {"redis", "rediss"}


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"code": "ok", "data": {"status": "up"}})


def readyz(request: HttpRequest) -> JsonResponse:
    """Ready when the database and the broker both answer; otherwise 503 naming the failure."""
    checks = {"database": _check_database(), "broker": _check_broker()}
    failing = [name for name, result in checks.items() if result != "ok"]
    if failing:
        return JsonResponse(
            {
                "code": "not_ready",
                "message": f"Not ready: {', '.join(failing)} unreachable",
                "data": {"checks": checks},
            },
            status=503,
        )
    return JsonResponse({"code": "ok", "data": {"checks": checks}})


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:
        return f"error: {type(exc).__name__}"


def _check_broker() -> str:
    """The broker ``CELERY_BROKER_URL`` names: Redis answers a PING; any other (RabbitMQ's
    ``amqp://``) completes kombu's connection, the AMQP handshake and login included. Only the
    error's type is shown: its text may quote the URL, password and all."""
    url = settings.CELERY_BROKER_URL
    try:
        if urlsplit(url).scheme in REDIS_SCHEMES:
            _ping_redis(url)
        else:
            _connect_kombu(url)
        return "ok"
    except Exception as exc:
        return f"error: {type(exc).__name__}"


def _ping_redis(url: str) -> None:
    client = redis.Redis.from_url(
        url, socket_connect_timeout=BROKER_TIMEOUT_SECONDS, socket_timeout=BROKER_TIMEOUT_SECONDS
    )
    try:
        client.ping()
    finally:
        client.close()


def _connect_kombu(url: str) -> None:
    timeouts = {"read_timeout": BROKER_TIMEOUT_SECONDS, "write_timeout": BROKER_TIMEOUT_SECONDS}
    with Connection(
        url, connect_timeout=BROKER_TIMEOUT_SECONDS, transport_options=timeouts
    ) as broker:
        broker.ensure_connection(max_retries=0)  # one try: no retry loop behind a health check
