"""Request bodies as JSON, the same on the hot path (plain Django) and in DRF views."""

from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse
from rest_framework.parsers import BaseParser

from .errors import ApplicationError, ErrorCode, field_error, validation_error


def json_body(request: HttpRequest) -> Any:
    content_type = request.META.get("CONTENT_TYPE", "")
    if content_type.partition(";")[0].strip().lower() != "application/json":
        raise ApplicationError(415, ErrorCode.UNSUPPORTED_MEDIA_TYPE)
    return json_loads(request.body)


def json_loads(raw: bytes) -> Any:
    """A body's JSON: UTF-8, nesting bounded, no lone surrogate (orjson), no NUL in text.

    The standard library's parser would take what PostgreSQL cannot store (a lone
    surrogate: 500) and recurse until Python's stack runs out (a deep array: 500).
    """
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApplicationError(400, ErrorCode.MALFORMED_JSON) from exc
    # PostgreSQL text cannot hold NUL; JSON can only carry it escaped, so look only then.
    if b"\\u0000" in raw:
        path = nul_path(body)
        if path is not None:
            raise validation_error(
                [field_error(path, "nul_character", "Text cannot contain NUL (\\u0000)")]
            )
    return body


class JSONParser(BaseParser):
    """DRF's parser for ``application/json`` (REST_FRAMEWORK's DEFAULT_PARSER_CLASSES)."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        return json_loads(stream.read())


def nul_path(value: Any, path: str = "") -> str | None:
    """The dotted path of the first string (or key) containing a NUL character, if any."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else key
            if "\x00" in key:
                return inner
            found = nul_path(item, inner)
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = nul_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def json_ok(data: dict, headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse(
        orjson.dumps({"code": "ok", "data": data}),
        content_type="application/json",
        headers=headers,
    )
