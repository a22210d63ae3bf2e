import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse


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
    try:
        client = redis.Redis.from_url(
            settings.CELERY_BROKER_URL, socket_connect_timeout=1, socket_timeout=1
        )
        client.ping()
        client.close()
        return "ok"
    except Exception as exc:
        return f"error: {type(exc).__name__}"
