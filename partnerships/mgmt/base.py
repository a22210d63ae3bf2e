"""What every management endpoint shares: staff-token auth, the audit log's "via", the
``{"code": "ok", "data": ...}`` envelope with an ETag, If-Match, pagination, and Django
validation errors as the error envelope."""

import re
from typing import Any
from urllib.parse import urlencode

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import ApplicationError, ErrorCode, field_error, validation_error
from config.openapi import ErrorSerializer, error, ok_envelope
from config.revisions import version_conflict

from ..services import audit_via
from .auth import IsStaffToken, StaffPrincipal, StaffTokenAuthentication

DEFAULT_LIMIT, MAX_LIMIT = 50, 200


class MgmtApi(APIView):
    """A management endpoint: authenticated by a staff token; every audit entry its services
    record names the token (the actor is the token's creator)."""

    authentication_classes = [StaffTokenAuthentication]
    permission_classes = [IsStaffToken]

    def initial(self, request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        self._via = audit_via(request.user.label)
        self._via.__enter__()

    def finalize_response(self, request, response, *args, **kwargs):
        via = getattr(self, "_via", None)
        if via is not None:
            self._via = None
            via.__exit__(None, None, None)
        return super().finalize_response(request, response, *args, **kwargs)

    @property
    def staff(self) -> StaffPrincipal:
        return self.request.user

    def listing(self, permission: str, partnership_id, rows, out) -> Response:
        """A page of ``rows`` (a model's manager or queryset) of one of the token's
        partnerships, oldest first, each as ``out`` serializes it."""
        self.staff.require(permission)
        partnership = self.staff.partnership(partnership_id)
        found = rows.filter(partnership=partnership).order_by("created_at", "id")
        return page(self.request, found, lambda row: out(row).data)


def etag(revision: int) -> str:
    return f'"{revision}"'


def ok(data: Any, *, status: int = 200, revision: int | None = None) -> Response:
    headers = {"ETag": etag(revision)} if revision is not None else None
    return Response({"code": "ok", "data": data}, status=status, headers=headers)


_TAG = re.compile(r'^\s*(?:W/)?"?(\d{1,9})"?\s*$')


def if_match(request) -> int:
    """The revision the client read (``If-Match``): missing is 428 ``precondition_required``,
    one that is not an ETag we gave is 412 ``version_conflict`` (as a stale one is)."""
    header = request.META.get("HTTP_IF_MATCH")
    if header is None or not header.strip():
        raise ApplicationError(428, ErrorCode.PRECONDITION_REQUIRED)
    match = _TAG.match(header)
    if match is None:
        raise version_conflict()
    return int(match.group(1))


def validated(serializer: type[serializers.Serializer], data, *, partial: bool = False) -> dict:
    """``data`` as ``serializer`` validates it (422 per field otherwise)."""
    body = serializer(data=data, partial=partial)
    body.is_valid(raise_exception=True)
    return dict(body.validated_data)


def assign(instance, values: dict) -> None:
    for name, value in values.items():
        setattr(instance, name, value)


class PageQuery(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)
    offset = serializers.IntegerField(min_value=0, max_value=10_000_000, default=0)


def page(request, rows: QuerySet, serialize) -> Response:
    """One page of ``rows`` (ordered) and the URL of the next, or null."""
    query = PageQuery(data=request.query_params)
    query.is_valid(raise_exception=True)
    limit, offset = query.validated_data["limit"], query.validated_data["offset"]
    found = list(rows[offset : offset + limit + 1])
    next_url = None
    if len(found) > limit:
        found = found[:limit]
        params = {**request.query_params.dict(), "limit": limit, "offset": offset + limit}
        next_url = request.build_absolute_uri(request.path) + "?" + urlencode(params)
    return ok({"results": [serialize(row) for row in found], "next": next_url})


def django_errors(exc: DjangoValidationError) -> ApplicationError:
    """A model's or a service's ValidationError as the 422 envelope, one entry per message."""
    if not hasattr(exc, "error_dict"):
        return validation_error([field_error("", e.code or "invalid", m) for e, m in _each(exc)])
    errors = []
    for name, field_errors in exc.error_dict.items():
        field = "" if name == NON_FIELD_ERRORS else name
        for item in field_errors:
            for one in item.error_list if hasattr(item, "error_list") else [item]:
                for message in one.messages:
                    errors.append(field_error(field, one.code or "invalid", message))
    return validation_error(errors)


def _each(exc: DjangoValidationError):
    for item in exc.error_list:
        for message in item.messages:
            yield item, message


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not declare (a typo must not be silently ignored)."""

    def to_internal_value(self, data):
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, dict) else []
        errors = {name: [serializers.ErrorDetail("Unknown field", "unknown")] for name in unknown}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if not isinstance(exc.detail, dict):
                raise
            raise serializers.ValidationError({**exc.detail, **errors}) from exc
        if errors:
            raise serializers.ValidationError(errors)
        return value


# --- OpenAPI --------------------------------------------------------------------------------


class StaffTokenScheme(OpenApiAuthenticationExtension):
    target_class = "partnerships.mgmt.auth.StaffTokenAuthentication"
    name = "StaffToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A staff token (staff_…), created in Pilot or by "
            "`manage.py create_staff_token`; never a partner API key.",
        }


IF_MATCH = OpenApiParameter(
    "If-Match",
    {"type": "string", "pattern": r'^(W/)?"?\d{1,9}"?$'},
    OpenApiParameter.HEADER,
    required=True,
    description='The ETag of the version you read (e.g. `"3"`): a write is refused with 412 '
    "`version_conflict` if it changed since, 428 `precondition_required` without it.",
)
PAGE_PARAMETERS = [
    OpenApiParameter("limit", int, description=f"1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})"),
    OpenApiParameter("offset", int, description="Rows to skip; follow `next` instead"),
]

MGMT_AUTH_ERRORS = {
    401: error(
        "No, an unknown, revoked or expired staff token; or a partner API key",
        ErrorCode.INVALID_TOKEN,
        ErrorCode.PARTNER_KEY_NOT_ACCEPTED,
    ),
    403: error(
        "The token's role (or its creator) lacks the permission", ErrorCode.PERMISSION_DENIED
    ),
    404: error("Not one of the token's partnerships, or no such object", ErrorCode.NOT_FOUND),
    503: error("Database unavailable; retry after Retry-After", ErrorCode.SERVICE_UNAVAILABLE),
}
READ_ERRORS = {**MGMT_AUTH_ERRORS, 422: error("Invalid query", ErrorCode.VALIDATION_ERROR)}
BODY_ERRORS = {
    **MGMT_AUTH_ERRORS,
    400: error("The body is not JSON", ErrorCode.MALFORMED_JSON),
    413: error("Body too large", ErrorCode.PAYLOAD_TOO_LARGE),
    415: error("Body is not application/json", ErrorCode.UNSUPPORTED_MEDIA_TYPE),
    422: error("Invalid fields (per field in `errors`)", ErrorCode.VALIDATION_ERROR),
}
WRITE_ERRORS = {
    **BODY_ERRORS,
    412: error("Changed since read: GET it again", ErrorCode.VERSION_CONFLICT),
    428: error("If-Match is required", ErrorCode.PRECONDITION_REQUIRED),
}
CONFLICT = OpenApiResponse(ErrorSerializer, description="In use, or refused in its state")


def page_of(name: str, item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    return type(
        f"{name}Page",
        (serializers.Serializer,),
        {
            "results": item(many=True),
            "next": serializers.URLField(allow_null=True, help_text="The next page, or null"),
        },
    )


def create_examples(request: dict, created: dict) -> list[OpenApiExample]:
    """A create operation's examples: what to send, and its 201."""
    return [
        OpenApiExample("create", value=request, request_only=True),
        OpenApiExample(
            "created",
            value={"code": "ok", "data": created},
            response_only=True,
            status_codes=["201"],
        ),
    ]


def list_schema(name: str, item: type[serializers.Serializer], summary: str):
    """The OpenAPI of a list endpoint: ``mgmt_<name>_list``, paginated ``item``s."""
    component = "Mgmt" + "".join(part.capitalize() for part in name.split("_"))
    return extend_schema(
        operation_id=f"mgmt_{name}_list",
        summary=summary,
        parameters=PAGE_PARAMETERS,
        responses={
            200: ok_envelope(f"{component}Page", page_of(component, item)),
            **READ_ERRORS,
        },
    )
