"""A partnership's end user through the partner API: attributes (PUT replaces, PATCH merges),
the user with its totals (GET), and erasure (DELETE). See rewards/services/users.py."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from config import openapi_examples as examples
from config.errors import ApplicationError, ErrorCode, field_error, validation_error
from config.openapi import AUTH_ERRORS, BODY_ERRORS, error, ok_envelope
from config.timestamps import TimestampField
from partnerships.pseudonyms import external_user_id_check

from .apis import READ_REFUSED, ModeFilterSerializer, key_mode
from .selectors import end_user_totals
from .services.users import (
    ATTRIBUTES_SCHEMA,
    end_user_attributes_set,
    end_user_erase_by_key,
    end_user_find,
)

ATTRIBUTES_BODY_SCHEMA = {
    "type": "object",
    "properties": {
        "attributes": {
            **ATTRIBUTES_SCHEMA,
            "description": "The user's attributes, checked against the partnership's "
            "user-attribute schema (422 per field). PATCH: a null removes the key.",
        }
    },
    "required": ["attributes"],
    "additionalProperties": False,
}

USER_NOT_FOUND = error("Unknown user", ErrorCode.USER_DOES_NOT_EXIST)
USER_ERASED = error("The user was erased: its external id reaches nothing", ErrorCode.USER_ERASED)
WRITE_REFUSED = error(
    "A test key cannot change users (shared with live), or the partnership is suspended",
    ErrorCode.TEST_KEY_READ_ONLY,
    ErrorCode.PARTNERSHIP_SUSPENDED,
)
ATTRIBUTES_INVALID = error(
    "The body, or attributes that do not match the user-attribute schema (per field)",
    ErrorCode.VALIDATION_ERROR,
)


class UserOutputSerializer(serializers.Serializer):
    user_uuid = serializers.UUIDField(source="id")
    external_user_id = serializers.CharField()
    attributes = serializers.DictField()
    created_at = TimestampField()
    blocked = serializers.SerializerMethodField(help_text="A blocked user earns nothing")

    def get_blocked(self, user) -> bool:
        return user.blocked_at is not None


class ErasureOutputSerializer(serializers.Serializer):
    user_uuid = serializers.UUIDField()
    erased_at = TimestampField()


def _attributes(body) -> dict:
    if not isinstance(body, dict):
        raise validation_error([field_error("", "type", "The body must be a JSON object")])
    unknown = sorted(set(body) - {"attributes"})
    errors = [field_error(name, "unknown_field", "Unknown field") for name in unknown]
    if "attributes" not in body:
        errors.append(field_error("attributes", "required", "This field is required"))
    elif not isinstance(body["attributes"], dict):
        errors.append(field_error("attributes", "type", "A JSON object"))
    if errors:
        raise validation_error(errors)
    return body["attributes"]


class UserDetailApi(APIView):
    class OutputSerializer(UserOutputSerializer):
        mode = serializers.CharField(help_text="The key's mode: the totals shown are of it")
        totals = inline_serializer(
            "UserTotals",
            {
                "unit": serializers.CharField(),
                "rewards_count": serializers.IntegerField(),
                "amount": serializers.CharField(help_text="Issued, before reversals"),
                "reversed": serializers.CharField(),
                "balance": serializers.CharField(help_text="amount - reversed"),
            },
            many=True,
        )

    @extend_schema(
        operation_id="user_retrieve",
        summary="A user: attributes, created, blocked, and totals per unit in the key's mode",
        parameters=[ModeFilterSerializer],
        examples=examples.USER_RETRIEVE,
        responses={
            200: ok_envelope("UserDetail", OutputSerializer),
            **AUTH_ERRORS,
            404: USER_NOT_FOUND,
            410: USER_ERASED,
            422: READ_REFUSED,
        },
    )
    def get(self, request, partnership_id: str, external_user_id: str) -> Response:
        filters = ModeFilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        mode = key_mode(request.user, filters.validated_data.get("mode"))
        user = _user_or_404(request, external_user_id)
        user.mode, user.totals = mode, end_user_totals(user=user, mode=mode)
        return Response({"code": "ok", "data": self.OutputSerializer(user).data})

    @extend_schema(
        operation_id="user_replace",
        summary="Replace a user's attributes (creates an unknown user: 201)",
        description="Live keys only. The attributes must match the partnership's "
        "user-attribute schema; null values are dropped.",
        request={"application/json": ATTRIBUTES_BODY_SCHEMA},
        examples=examples.USER_REPLACE,
        responses={
            200: ok_envelope("UserReplaced", UserOutputSerializer),
            201: ok_envelope("UserCreated", UserOutputSerializer),
            **AUTH_ERRORS,
            **BODY_ERRORS,
            403: WRITE_REFUSED,
            410: USER_ERASED,
            422: ATTRIBUTES_INVALID,
        },
    )
    def put(self, request, partnership_id: str, external_user_id: str) -> Response:
        return self._write(request, external_user_id, merge=False)

    @extend_schema(
        operation_id="user_update",
        summary="Merge into a user's attributes (null removes a key; creates an unknown user)",
        description="Live keys only. The merged attributes must match the partnership's "
        "user-attribute schema.",
        request={"application/json": ATTRIBUTES_BODY_SCHEMA},
        examples=examples.USER_UPDATE,
        responses={
            200: ok_envelope("UserUpdated", UserOutputSerializer),
            201: ok_envelope("UserUpdateCreated", UserOutputSerializer),
            **AUTH_ERRORS,
            **BODY_ERRORS,
            403: WRITE_REFUSED,
            410: USER_ERASED,
            422: ATTRIBUTES_INVALID,
        },
    )
    def patch(self, request, partnership_id: str, external_user_id: str) -> Response:
        return self._write(request, external_user_id, merge=True)

    def _write(self, request, external_user_id: str, *, merge: bool) -> Response:
        external_user_id_check(external_user_id)
        user, created = end_user_attributes_set(
            principal=request.user,
            external_user_id=external_user_id,
            attributes=_attributes(request.data),
            merge=merge,
        )
        data = UserOutputSerializer(user).data
        return Response({"code": "ok", "data": data}, status=201 if created else 200)

    @extend_schema(
        operation_id="user_erase",
        summary="Erase a user (GDPR): attributes and external id gone, rewards kept exact",
        description="Live keys only. The user's rewards, reports and budgets are unchanged; "
        "their events' contexts are cleared, and the old external id answers 410 "
        "`user_erased` from then on (events, attributes, reads).",
        request=None,
        examples=examples.USER_ERASE,
        responses={
            200: ok_envelope("UserErased", ErasureOutputSerializer),
            **AUTH_ERRORS,
            403: WRITE_REFUSED,
            404: USER_NOT_FOUND,
            410: USER_ERASED,
        },
    )
    def delete(self, request, partnership_id: str, external_user_id: str) -> Response:
        external_user_id_check(external_user_id)
        user = end_user_erase_by_key(principal=request.user, external_user_id=external_user_id)
        data = {
            "user_uuid": str(user.id),
            "erased_at": TimestampField().to_representation(user.erased_at),
        }
        return Response({"code": "ok", "data": data})


def _user_or_404(request, external_user_id: str):
    external_user_id_check(external_user_id)
    user = end_user_find(
        partnership_id=request.user.partnership.id, external_user_id=external_user_id
    )
    if user is None:
        raise ApplicationError(404, ErrorCode.USER_DOES_NOT_EXIST, "No user with this id")
    return user
