"""The one error envelope of the API.

Every error a client can see has the shape
``{"code": "<stable code>", "message": "<human text>"}`` plus, for validation failures,
``"errors": [{"field": ..., "code": ..., "message": ...}]``. Services raise
:class:`ApplicationError`; DRF's and Django's own errors are translated here too.
"""

import logging
from enum import StrEnum

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import DataError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class ErrorCode(StrEnum):
    # Authentication (Benji's contract)
    INVALID_TOKEN = "invalid_token"  # noqa: S105 - an error code, not a secret
    UNAUTHORIZED_REQUEST = "unauthorized_request"
    PARTNERSHIP_DOES_NOT_EXIST = "partnership_does_not_exist"
    PARTNERSHIP_SUSPENDED = "partnership_suspended"
    # Request shape
    MALFORMED_JSON = "malformed_json"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    VALIDATION_ERROR = "validation_error"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NOT_ACCEPTABLE = "not_acceptable"
    RATE_LIMITED = "rate_limited"
    PERMISSION_DENIED = "permission_denied"
    INTERNAL_ERROR = "internal_error"
    NOT_READY = "not_ready"
    SERVICE_UNAVAILABLE = "service_unavailable"
    # Domain
    USER_DOES_NOT_EXIST = "user_does_not_exist"
    TRIGGER_DOES_NOT_EXIST = "trigger_does_not_exist"
    TRIGGER_INACTIVE = "trigger_inactive"
    EVENT_TOO_LATE = "event_too_late"
    TRIGGER_EVENT_DOES_NOT_EXIST = "trigger_event_does_not_exist"
    TRIGGER_EVENT_NOT_CANCELLABLE = "trigger_event_not_cancellable"
    TRIGGER_EVENT_NOT_RETRYABLE = "trigger_event_not_retryable"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    ALREADY_REVERSED = "already_reversed"
    REWARD_CHANGED = "reward_changed"
    MODE_MISMATCH = "mode_mismatch"
    # End users: attributes and erasure (issue 12)
    USER_ERASED = "user_erased"
    TEST_KEY_READ_ONLY = "test_key_read_only"
    # Reports
    INVALID_RANGE = "invalid_range"
    RANGE_TOO_LONG = "range_too_long"
    CAMPAIGN_DOES_NOT_EXIST = "campaign_does_not_exist"
    # Configuration as code (rewards.configuration)
    MALFORMED_DOCUMENT = "malformed_document"
    CONFIGURATION_CHANGED = "configuration_changed"
    FINGERPRINT_REQUIRED = "fingerprint_required"
    # Key rotation and user tokens (issue 12)
    API_KEY_NOT_ROTATABLE = "api_key_not_rotatable"
    TOKEN_EXPIRED = "token_expired"  # noqa: S105 - an error code, not a secret
    TOKEN_REVOKED = "token_revoked"  # noqa: S105
    TOKEN_WRONG_USER = "token_wrong_user"  # noqa: S105
    TOKEN_SCOPE_NOT_GRANTED = "token_scope_not_granted"  # noqa: S105
    TRIGGER_NOT_CLIENT_SENDABLE = "trigger_not_client_sendable"
    TOKEN_DOES_NOT_EXIST = "token_does_not_exist"  # noqa: S105
    # Management API (staff tokens, revisions)
    PARTNER_KEY_NOT_ACCEPTED = "partner_key_not_accepted"
    PRECONDITION_REQUIRED = "precondition_required"
    VERSION_CONFLICT = "version_conflict"
    RESOURCE_IN_USE = "resource_in_use"
    ACTION_REFUSED = "action_refused"
    WRITE_CONFLICT = "write_conflict"


MESSAGES = {
    ErrorCode.INVALID_TOKEN: "Invalid token",
    ErrorCode.UNAUTHORIZED_REQUEST: "Token is not authorized to make this request",
    ErrorCode.PARTNERSHIP_DOES_NOT_EXIST: "The partnership does not exist",
    ErrorCode.PARTNERSHIP_SUSPENDED: "The partnership is suspended and does not accept requests",
    ErrorCode.MALFORMED_JSON: "The request body is not valid JSON",
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: "Send the body as application/json",
    ErrorCode.PAYLOAD_TOO_LARGE: "The request body is too large",
    ErrorCode.VALIDATION_ERROR: "The request is not valid",
    ErrorCode.NOT_FOUND: "Not found",
    ErrorCode.METHOD_NOT_ALLOWED: "Method not allowed",
    ErrorCode.NOT_ACCEPTABLE: "Only application/json responses are available",
    ErrorCode.RATE_LIMITED: "Too many requests, slow down",
    ErrorCode.PERMISSION_DENIED: "You do not have permission to perform this action",
    ErrorCode.INTERNAL_ERROR: "Internal server error",
    ErrorCode.SERVICE_UNAVAILABLE: "The service is briefly unavailable; retry shortly",
    ErrorCode.MODE_MISMATCH: "A key reads only the data of its own mode (live or test)",
    ErrorCode.CONFIGURATION_CHANGED: (
        "The configuration changed since the plan you were shown: plan again, or force"
    ),
    ErrorCode.FINGERPRINT_REQUIRED: (
        "Say which configuration the plan was made against (its fingerprint), or force"
    ),
    ErrorCode.EVENT_TOO_LATE: "The event occurred longer ago than this partnership accepts",
    ErrorCode.TOKEN_EXPIRED: "The user token has expired: ask your backend for a new one",
    ErrorCode.TOKEN_REVOKED: "The user token was revoked: ask your backend for a new one",
    ErrorCode.TOKEN_WRONG_USER: "The user token is for another user",
    ErrorCode.TOKEN_SCOPE_NOT_GRANTED: "The user token was not granted this scope",
    ErrorCode.TRIGGER_NOT_CLIENT_SENDABLE: "This trigger cannot be sent with a user token",
    ErrorCode.USER_ERASED: "This user was erased: their external id accepts nothing any more",
    ErrorCode.TEST_KEY_READ_ONLY: "A test key cannot change users (they are shared with live)",
    ErrorCode.PARTNER_KEY_NOT_ACCEPTED: (
        "A partner API key cannot call the management API: send a staff token as "
        "Authorization: Bearer staff_..."
    ),
    ErrorCode.PRECONDITION_REQUIRED: (
        "Send If-Match with the ETag of the version you read (GET it first)"
    ),
    ErrorCode.VERSION_CONFLICT: (
        "It changed since you read it: GET it again, reapply your change and send the new ETag"
    ),
}


class ApplicationError(Exception):
    """An error a client caused or can act on, with a stable code."""

    def __init__(
        self,
        status: int,
        code: ErrorCode,
        message: str | None = None,
        *,
        errors: list[dict] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message or MESSAGES.get(code, code.replace("_", " ").capitalize())
        self.errors = errors
        self.headers = headers or {}
        super().__init__(self.message)

    def body(self) -> dict:
        body = {"code": self.code, "message": self.message}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


def field_error(field: str, code: str, message: str) -> dict:
    return {"field": field, "code": code, "message": message}


def idempotency_key_errors(header: str | None, body_key: str | None) -> list[dict]:
    """The problems of an ``Idempotency-Key`` header, and of a body ``idempotency_key`` that
    differs from it (which of the two the partner meant is not ours to guess)."""
    errors = []
    if header is not None and not 1 <= len(header) <= 255:
        errors.append(field_error("Idempotency-Key", "max_length", "1 to 255 characters"))
    if header is not None and "\x00" in header:
        errors.append(field_error("Idempotency-Key", "nul_character", "Cannot contain NUL"))
    if header is not None and body_key is not None and header != body_key:
        errors.append(
            field_error("idempotency_key", "mismatch", "Differs from the Idempotency-Key header")
        )
    return errors


def validation_error(errors: list[dict], message: str | None = None) -> ApplicationError:
    return ApplicationError(422, ErrorCode.VALIDATION_ERROR, message, errors=errors)


def error_response(error: ApplicationError) -> JsonResponse:
    response = JsonResponse(error.body(), status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response


def _flatten_drf_errors(detail, prefix: str = "") -> list[dict]:
    """Turns DRF's nested ``{"field": [ErrorDetail]}`` into our flat per-field list."""
    if isinstance(detail, dict):
        errors = []
        for key, value in detail.items():
            field = prefix if key == "non_field_errors" else f"{prefix}.{key}" if prefix else key
            errors.extend(_flatten_drf_errors(value, str(field)))
        return errors
    if isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            return [
                field_error(prefix, getattr(item, "code", "invalid"), str(item)) for item in detail
            ]
        errors = []
        for index, item in enumerate(detail):
            errors.extend(_flatten_drf_errors(item, f"{prefix}[{index}]"))
        return errors
    return [field_error(prefix, getattr(detail, "code", "invalid"), str(detail))]


# SQLSTATE classes that pass with time: connection exceptions, insufficient resources,
# operator intervention (incl. statement timeout, shutdown), transaction rollback (deadlock),
# and a lock not available. Anything else (a program limit exceeded...) is a bug: a 500.
_TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "57", "40")


def _transient(exc: OperationalError) -> bool:
    sqlstate = getattr(exc.__cause__, "sqlstate", None)
    return sqlstate is None or sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES or sqlstate == "55P03"


def to_application_error(exc: Exception) -> ApplicationError | None:
    """Maps any exception a request can raise to our error; None for genuine bugs."""
    if isinstance(exc, ApplicationError):
        return exc
    if isinstance(exc, RequestDataTooBig):
        return ApplicationError(413, ErrorCode.PAYLOAD_TOO_LARGE)
    if isinstance(exc, DataError):
        # A value the client sent that PostgreSQL cannot store (a NUL character, a number
        # out of range): the client's to fix, and the statement stored nothing.
        logger.warning("Refused a value the database cannot store: %s", exc)
        return validation_error(
            [], "A value in the request cannot be stored (e.g. a NUL character)"
        )
    if isinstance(exc, OperationalError) and _transient(exc):
        # The database is unreachable, restarting, overloaded, or timed the statement out:
        # nothing the client sent is wrong, and the same request can simply be sent again.
        logger.warning("Database unavailable: %s", exc, exc_info=exc)
        return ApplicationError(503, ErrorCode.SERVICE_UNAVAILABLE, headers={"Retry-After": "1"})
    if isinstance(exc, Http404 | drf.NotFound):
        return ApplicationError(404, ErrorCode.NOT_FOUND)
    if isinstance(exc, PermissionDenied):
        return ApplicationError(403, ErrorCode.PERMISSION_DENIED)
    if isinstance(exc, drf.ValidationError):
        return validation_error(_flatten_drf_errors(exc.detail))
    if isinstance(exc, drf.ParseError):
        return ApplicationError(400, ErrorCode.MALFORMED_JSON)
    if isinstance(exc, drf.UnsupportedMediaType):
        return ApplicationError(415, ErrorCode.UNSUPPORTED_MEDIA_TYPE)
    if isinstance(exc, drf.MethodNotAllowed):
        return ApplicationError(405, ErrorCode.METHOD_NOT_ALLOWED)
    if isinstance(exc, drf.NotAcceptable):
        offered = sorted({renderer.media_type for renderer in exc.available_renderers or ()})
        message = f"Available: {', '.join(offered)}" if len(offered) > 1 else None
        return ApplicationError(406, ErrorCode.NOT_ACCEPTABLE, message)
    if isinstance(exc, drf.Throttled):
        retry_after = max(1, int(exc.wait or 1))
        return ApplicationError(
            429, ErrorCode.RATE_LIMITED, headers={"Retry-After": str(retry_after)}
        )
    if isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed):
        return ApplicationError(400, ErrorCode.INVALID_TOKEN)
    if isinstance(exc, drf.PermissionDenied):
        return ApplicationError(401, ErrorCode.UNAUTHORIZED_REQUEST)
    if isinstance(exc, drf.APIException):
        return ApplicationError(exc.status_code, ErrorCode.INTERNAL_ERROR, str(exc.detail))
    return None


def api_exception_handler(exc: Exception, context: dict) -> Response:
    """DRF's EXCEPTION_HANDLER: every error leaves as the envelope, bugs included."""
    error = to_application_error(exc)
    if error is None:
        logger.exception("Unhandled error in %s", context.get("view"), exc_info=exc)
        error = ApplicationError(500, ErrorCode.INTERNAL_ERROR)
    return Response(error.body(), status=error.status, headers=error.headers)


# --- Django-level handlers: URLs outside DRF views --------------------------------------------


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if isinstance(exception, RequestDataTooBig):
        return error_response(ApplicationError(413, ErrorCode.PAYLOAD_TOO_LARGE))
    return error_response(ApplicationError(400, ErrorCode.VALIDATION_ERROR, "Bad request"))


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(ApplicationError(403, ErrorCode.PERMISSION_DENIED))


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_response(ApplicationError(404, ErrorCode.NOT_FOUND))


def handler500(request: HttpRequest) -> HttpResponse:
    return error_response(ApplicationError(500, ErrorCode.INTERNAL_ERROR))


class RequestSizeLimitMiddleware:
    """Refuses an oversized body from its Content-Length header, before anything reads it."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.limit = settings.API_MAX_BODY_BYTES

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > self.limit and not request.path.startswith("/pilot/"):
            return error_response(ApplicationError(413, ErrorCode.PAYLOAD_TOO_LARGE))
        return self.get_response(request)
