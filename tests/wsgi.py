"""Requests to the production WSGI application, in this process: the fast path included.

``django.test.Client`` goes through the test handler, which serves the ingest route with
Django's full stack; ``config.wsgi.application`` is what gunicorn runs. Use it with a
``transactional_db``: like gunicorn, it returns its database connection after each request,
which would end a test's surrounding transaction.
"""

import io
from dataclasses import dataclass
from typing import Any
from wsgiref.util import setup_testing_defaults

import orjson

from config.wsgi import application


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # names lowercased
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def call(
    method: str,
    path: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    query: str = "",
) -> Answer:
    """``path`` as a client means it (decoded); headers by their HTTP names."""
    environ = {
        "REQUEST_METHOD": method,
        # WSGI carries the decoded path's bytes as latin-1 text.
        "PATH_INFO": path.encode().decode("latin-1"),
        "QUERY_STRING": query,
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
    }
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
    setup_testing_defaults(environ)
    started = {}

    def start_response(status: str, response_headers: list, exc_info=None) -> None:
        started["status"] = int(status.split()[0])
        started["headers"] = {name.lower(): value for name, value in response_headers}

    result = application(environ, start_response)
    try:
        content = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()  # request_finished, as gunicorn sends it
    return Answer(started["status"], started["headers"], content)
