"""OpenAPI helpers: the error envelope and the ``{"code": "ok", "data": ...}`` wrapper."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from rest_framework import serializers

from .errors import MESSAGES, ErrorCode


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
