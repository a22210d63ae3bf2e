"""CORS for the endpoints a browser app calls with a user token, and only those.

Each partnership lists its apps' origins (``Partnership.allowed_origins``). A preflight
(``OPTIONS``) from one of them is answered with the endpoint's methods and headers; any other
origin gets no ``Access-Control-Allow-Origin``, so the browser stops there. Actual responses,
errors included (an app must read ``token_expired``), carry the header for an allowed origin.
The views do it themselves (``cors_preflight`` / ``cors_headers_add``), because the ingest route
runs outside Django's middleware stack (config/fastpath.py); see docs/decisions.md.
"""

import uuid

from django.http import HttpRequest, HttpResponse

from .selectors import partnership_record

ALLOWED_HEADERS = "Authorization, Content-Type, Idempotency-Key"
EXPOSED_HEADERS = "Idempotent-Replayed, Retry-After"
MAX_AGE_SECONDS = "600"


def _allowed_origin(request: HttpRequest, partnership_id) -> str | None:
    origin = request.META.get("HTTP_ORIGIN")
    if not origin:
        return None
    try:
        partnership_uuid = uuid.UUID(str(partnership_id))
    except ValueError:
        return None
    partnership = partnership_record(partnership_id=partnership_uuid)
    if partnership is None or origin not in partnership.origins:
        return None
    return origin


def is_preflight(request: HttpRequest) -> bool:
    """A browser's preflight; any other OPTIONS stays a 405, as everywhere."""
    return (
        request.method == "OPTIONS"
        and "HTTP_ORIGIN" in request.META
        and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in request.META
    )


def cors_preflight(request: HttpRequest, partnership_id, *, methods: str) -> HttpResponse:
    """The answer to a preflight: 204, with the grants only for the partnership's origins."""
    response = HttpResponse(status=204)
    response["Vary"] = "Origin"
    origin = _allowed_origin(request, partnership_id)
    if origin is not None:
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Methods"] = f"{methods}, OPTIONS"
        response["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response["Access-Control-Max-Age"] = MAX_AGE_SECONDS
    return response


def cors_headers_add(request: HttpRequest, response: HttpResponse, partnership_id) -> None:
    """Lets an allowed origin's page read the response (only requests with an ``Origin``)."""
    if "HTTP_ORIGIN" not in request.META:
        return
    response["Vary"] = "Origin"
    origin = _allowed_origin(request, partnership_id)
    if origin is not None:
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Expose-Headers"] = EXPOSED_HEADERS


class UserTokenCorsMixin:
    """For DRF views an app may call with a user token: preflights answered before
    authentication (a browser sends no credentials with them), CORS headers on every answer."""

    cors_methods = "GET"

    def dispatch(self, request, *args, **kwargs):
        if is_preflight(request):
            return cors_preflight(request, kwargs.get("partnership_id"), methods=self.cors_methods)
        return super().dispatch(request, *args, **kwargs)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        cors_headers_add(request, response, kwargs.get("partnership_id"))
        return response
