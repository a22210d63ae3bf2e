"""OpenAPI helpers: the error envelope and the ``{"code": "ok", "data": ...}`` wrapper."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_examples_list
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    inline_serializer,
)
from rest_framework import serializers

from .errors import MESSAGES, ErrorCode
from .openapi_examples import QUERY_EXAMPLES


class FieldErrorSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="Dotted path, e.g. transaction_context.amount")
    code = serializers.CharField()
    message = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, machine-readable error code")
    message = serializers.CharField(help_text="Human-readable explanation")
    errors = FieldErrorSerializer(many=True, required=False)


class PartnerApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "partnerships.auth.PartnerKeyAuthentication"
    name = "PartnerApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "x-api-key"}


class KeyOrUserTokenScheme(OpenApiAuthenticationExtension):
    """The endpoints an app may call: the partner key (its scheme is PartnerApiKeyScheme's),
    or a user token (issue 12)."""

    target_class = "partnerships.user_tokens.KeyOrUserTokenAuthentication"
    name = "UserToken"

    def get_security_requirement(self, auto_schema):
        return [{PartnerApiKeyScheme.name: []}, {self.name: []}]

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A user token from `POST /partnerships/{partnership_id}/users/"
            "{external_user_id}/tokens`: that user's data and the triggers it names only.",
        }


def ok_envelope(name: str, data: type[serializers.Serializer]) -> serializers.Serializer:
    """``{"code": "ok", "data": <data>}``; ``name`` also names the data component."""
    return inline_serializer(
        name=f"{name}Response",
        fields={
            "code": serializers.CharField(default="ok"),
            "data": type(f"{name}Serializer", (data,), {})(),
        },
    )


def error(description: str, *codes: ErrorCode) -> OpenApiResponse:
    return OpenApiResponse(
        ErrorSerializer,
        description=description,
        examples=[
            # Plain strings: the YAML renderer cannot represent the enum.
            OpenApiExample(
                code.value, value={"code": code.value, "message": MESSAGES.get(code, "...")}
            )
            for code in codes
        ],
    )


AUTH_ERRORS = {
    400: error("Missing, malformed, unknown, revoked or expired API key", ErrorCode.INVALID_TOKEN),
    401: error(
        "The key belongs to another partnership, or the client IP is not allowed",
        ErrorCode.UNAUTHORIZED_REQUEST,
    ),
    403: error("The partnership is suspended", ErrorCode.PARTNERSHIP_SUSPENDED),
    404: error("Unknown partnership", ErrorCode.PARTNERSHIP_DOES_NOT_EXIST),
    429: error("Rate limit reached; see Retry-After", ErrorCode.RATE_LIMITED),
    # Not about the key, but every partner endpoint can answer it.
    503: error("Database unavailable; retry after Retry-After", ErrorCode.SERVICE_UNAVAILABLE),
}

# Operations an app may call with a user token (partnerships/user_tokens.py) also answer these.
USER_TOKEN_ERRORS = {
    401: error(
        "The key belongs to another partnership, or the client IP is not allowed; or the user "
        "token expired or was revoked (itself or its key)",
        ErrorCode.UNAUTHORIZED_REQUEST,
        ErrorCode.TOKEN_EXPIRED,
        ErrorCode.TOKEN_REVOKED,
    ),
    403: error(
        "The partnership is suspended; or the user token is another user's, lacks the scope, "
        "or names a trigger that is not client-sendable",
        ErrorCode.PARTNERSHIP_SUSPENDED,
        ErrorCode.TOKEN_WRONG_USER,
        ErrorCode.TOKEN_SCOPE_NOT_GRANTED,
        ErrorCode.TRIGGER_NOT_CLIENT_SENDABLE,
    ),
}

# Operations that read a JSON body can also refuse the body itself.
BODY_ERRORS = {
    400: error(
        "Missing, malformed, unknown, revoked or expired API key; or a body that is not JSON",
        ErrorCode.INVALID_TOKEN,
        ErrorCode.MALFORMED_JSON,
    ),
    413: error("Body too large", ErrorCode.PAYLOAD_TOO_LARGE),
    415: error("Body is not application/json", ErrorCode.UNSUPPORTED_MEDIA_TYPE),
}

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255},
    OpenApiParameter.HEADER,
    description="Makes retries safe: the same key and body answer the original result "
    "(with `Idempotent-Replayed: true`); the same key with another body is 409. Or send "
    "`idempotency_key` in the body. A key is remembered as long as what it created: at least "
    "`EVENT_RETENTION_DAYS` (823 days by default) after its event was received; once an event "
    "that earned nothing is retired, its key is new again.",
)

IDEMPOTENT_REPLAYED = OpenApiParameter(
    "Idempotent-Replayed",
    {"type": "string", "enum": ["true"]},
    OpenApiParameter.HEADER,
    response=[200],
    description="Present on the answer to a replay: an earlier request had this "
    "Idempotency-Key and body, and this is its result.",
)


def require_request_bodies(result: dict, generator, request, public) -> dict:
    """A POSTPROCESSING_HOOK: every documented request body is required.

    drf-spectacular marks a body given as a JSON Schema (the ingest and reversal bodies)
    optional; both endpoints refuse a request without one.
    """
    for item in result["paths"].values():
        for operation in item.values():
            if "requestBody" in operation:
                operation["requestBody"]["required"] = True
    return result


def json_only(responses: dict) -> dict:
    """Error responses as JSON only, for an operation whose 200 is also CSV."""
    return {(status, "application/json"): response for status, response in responses.items()}


def add_query_examples(result: dict, generator, request, public) -> dict:
    """A POSTPROCESSING_HOOK: the query examples of ``openapi_examples.QUERY_EXAMPLES``.

    OpenAPI has examples per parameter only: an example is the parameters that carry one of
    that name, sent together; it answers as the response example of the same name.
    """
    for item in result["paths"].values():
        for operation in item.values():
            examples = QUERY_EXAMPLES.get(operation["operationId"], {})
            for parameter in operation.get("parameters", []):
                if parameter["in"] != "query":
                    continue
                named = [
                    OpenApiExample(name, value=values[parameter["name"]], summary=summary)
                    for name, (summary, values) in examples.items()
                    if parameter["name"] in values
                ]
                if named:  # named as drf-spectacular names the response examples
                    parameter.setdefault("examples", {}).update(build_examples_list(named))
    return result
