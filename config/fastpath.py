"""Routes served without Django's full middleware stack: the ingest endpoint.

Partners authenticate with an API key and send no cookies, so sessions, CSRF, messages, the
auth middleware and the URL resolver do nothing for the ingest request but cost CPU: under
load, going around them roughly halved the web tier's extra CPU per event over a bare view
(docs/benchmarks.md). Everything else in the project, Pilot included, goes through Django
unchanged; so does the ingest route itself under Django's test client, since it stays in the
URL conf (for ``reverse()``, the OpenAPI schema and tests).

What the short path keeps: the body size limit, the security and frame headers,
``ALLOWED_HOSTS`` and ``Content-Length`` (both from ``CommonMiddleware``), the
``django.request`` log line of every 4xx/5xx response,
Django's exception handling (``handler400``/``handler500``: the JSON envelope, logging and
``got_request_exception``), and ``request_finished``, which gunicorn fires through
``response.close()`` and which returns database connections. ``request_started`` is not
sent; its only work here would be the per-request connection health check, which the ingest
path replaces with its own recovery (``triggers/services/ingest.py``).
"""

import re
from collections.abc import Callable, Iterable

from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpRequest, HttpResponse
from django.utils.log import log_response
from django.utils.module_loading import import_string

# The middleware an API-key route still needs, outermost first, in settings.MIDDLEWARE's order.
MIDDLEWARE = [
    "config.errors.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.fastpath.allowed_host_middleware",  # where CommonMiddleware checks it
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

View = Callable[..., HttpResponse]


class FastRoutes:
    """A WSGI application: serves ``routes`` itself, everything else through ``fallback``."""

    def __init__(self, fallback: Callable, routes: Iterable[tuple[str, View]]) -> None:
        self.fallback = fallback
        self.routes = [(re.compile(pattern), view) for pattern, view in routes]
        handler = convert_exception_to_response(_call_view)
        for path in reversed(MIDDLEWARE):
            handler = convert_exception_to_response(import_string(path)(handler))
        self.handler = handler

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        for pattern, view in self.routes:
            match = pattern.fullmatch(path)
            if match is not None:
                return self._serve(environ, start_response, view, match.groupdict())
        return self.fallback(environ, start_response)

    def _serve(self, environ: dict, start_response: Callable, view: View, kwargs: dict):
        request = WSGIRequest(environ)
        request.fast_route = (view, kwargs)
        response = self.handler(request)
        if not response.streaming and not response.has_header("Content-Length"):
            # As CommonMiddleware does: without it gunicorn would send the body chunked.
            response.headers["Content-Length"] = str(len(response.content))
        if response.status_code >= 400:  # as Django's handler logs them (django.request)
            log_response(
                "%s: %s", response.reason_phrase, request.path, response=response, request=request
            )
        try:
            headers = [*response.items()]
            headers += [("Set-Cookie", c.output(header="")) for c in response.cookies.values()]
            start_response(f"{response.status_code} {response.reason_phrase}", headers)
        except BaseException:
            response.close()  # request_finished: the connection goes back all the same
            raise
        return response


def allowed_host_middleware(get_response: View) -> View:
    def check(request: HttpRequest) -> HttpResponse:
        request.get_host()  # ALLOWED_HOSTS: DisallowedHost becomes handler400's 400
        return get_response(request)

    return check


def _call_view(request: HttpRequest) -> HttpResponse:
    view, kwargs = request.fast_route
    return view(request, **kwargs)
