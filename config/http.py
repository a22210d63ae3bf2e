"""Plain-Django request/response helpers for the hot path, which bypasses DRF's machinery."""

from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse

from .errors import ApplicationError, ErrorCode


def json_body(request: HttpRequest) -> Any:
    content_type = request.META.get("CONTENT_TYPE", "")
    if content_type.partition(";")[0].strip().lower() != "application/json":
        raise ApplicationError(415, ErrorCode.UNSUPPORTED_MEDIA_TYPE)
    try:
        return orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        raise ApplicationError(400, ErrorCode.MALFORMED_JSON) from exc


def json_ok(data: dict, headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse(
        orjson.dumps({"code": "ok", "data": data}),
        content_type="application/json",
        headers=headers,
    )
