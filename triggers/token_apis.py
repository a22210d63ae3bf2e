"""Issuing and revoking user tokens (partnerships/user_tokens.py) with the partner key.

Here, not in partnerships, because a token's trigger scopes name client-sendable triggers.
"""

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from config import openapi_examples as examples
from config.errors import ErrorCode, field_error, validation_error
from config.openapi import AUTH_ERRORS, BODY_ERRORS, error, ok_envelope
from partnerships.pseudonyms import external_user_id_check, external_user_id_errors
from partnerships.user_tokens import (
    SCOPE_READ,
    SCOPE_TRIGGER,
    user_token_issue,
    user_token_revoke,
    user_token_revoke_all,
)

from .selectors import trigger_record

MAX_SCOPES = 20


class UserTokenOutputSerializer(serializers.Serializer):
    token_id = serializers.UUIDField(source="id")
    external_user_id = serializers.CharField(source="end_user.external_user_id")
    mode = serializers.CharField(help_text="The issuing key's mode: the token's reads and events")
    scopes = serializers.ListField(child=serializers.CharField())
    expires_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)


def _scope_errors(partnership_id, scopes: list[str]) -> list[dict]:
    errors = []
    for index, scope in enumerate(scopes):
        if scope == SCOPE_READ:
            continue
        name = scope.removeprefix(SCOPE_TRIGGER)
        if name == scope:
            message = f'A scope is "{SCOPE_READ}" or "{SCOPE_TRIGGER}<trigger name>"'
            errors.append(field_error(f"scopes.{index}", "invalid_choice", message))
            continue
        trigger = trigger_record(partnership_id=partnership_id, name=name)
        if trigger is None or not trigger.is_active:
            message = f"No active trigger named {name!r} in this partnership"
            errors.append(field_error(f"scopes.{index}", "trigger_does_not_exist", message))
        elif not trigger.client_sendable:
            message = f"The trigger {name!r} is not client-sendable (a setting in Pilot)"
            errors.append(field_error(f"scopes.{index}", "not_client_sendable", message))
    return errors


EXTERNAL_USER_ID = OpenApiParameter(
    "external_user_id",
    {"type": "string", "minLength": 1, "maxLength": 255},
    OpenApiParameter.PATH,
)
TOKEN_AUTH_ERRORS = {**AUTH_ERRORS, **BODY_ERRORS}


class UserTokenCollectionApi(APIView):
    class InputSerializer(serializers.Serializer):
        scopes = serializers.ListField(
            child=serializers.CharField(max_length=80),
            min_length=1,
            max_length=MAX_SCOPES,
            help_text=f'"{SCOPE_READ}": the user\'s rewards and balance; '
            f'"{SCOPE_TRIGGER}<name>": send that trigger (client-sendable ones only)',
        )
        lifetime_minutes = serializers.IntegerField(
            min_value=1,
            max_value=settings.USER_TOKEN_MAX_LIFETIME_MINUTES,
            default=60,
            help_text="Minutes (1 to 1440 by default); the key's expiry cuts it short",
        )

    class OutputSerializer(UserTokenOutputSerializer):
        token = serializers.CharField(help_text="Shown once: the app sends it as a Bearer token")

    @extend_schema(
        operation_id="user_token_create",
        summary="Issue a short-lived token for one user's app",
        description=(
            "The app calls with `Authorization: Bearer <token>` and reaches only this user's "
            "rewards and balance and the triggers named in its scopes. Creates the user if "
            "the partnership has not seen them; an erased user's external id is refused "
            "(410 `user_erased`). The token is shown once."
        ),
        parameters=[EXTERNAL_USER_ID],
        request=InputSerializer,
        examples=examples.USER_TOKEN_CREATE,
        responses={
            200: ok_envelope("UserTokenCreate", OutputSerializer),
            **TOKEN_AUTH_ERRORS,
            410: error("The user was erased", ErrorCode.USER_ERASED),
            422: error(
                "Invalid scopes (unknown or not client-sendable trigger) or lifetime",
                ErrorCode.VALIDATION_ERROR,
            ),
        },
    )
    def post(self, request, partnership_id: str, external_user_id: str) -> Response:
        wanted = self.InputSerializer(data=request.data)
        wanted.is_valid(raise_exception=True)
        errors = external_user_id_errors(external_user_id)
        errors += _scope_errors(request.user.partnership.id, wanted.validated_data["scopes"])
        if errors:
            raise validation_error(errors)
        issued = user_token_issue(
            principal=request.user,
            external_user_id=external_user_id,
            scopes=wanted.validated_data["scopes"],
            lifetime_minutes=wanted.validated_data["lifetime_minutes"],
        )
        data = {**UserTokenOutputSerializer(issued.token).data, "token": issued.jwt}
        return Response({"code": "ok", "data": data})

    @extend_schema(
        operation_id="user_token_revoke_all",
        summary="Revoke all of a user's tokens (of the key's mode)",
        parameters=[EXTERNAL_USER_ID],
        request=None,
        examples=examples.USER_TOKEN_REVOKE_ALL,
        responses={
            200: ok_envelope(
                "UserTokenRevokeAll",
                type("Revoked", (serializers.Serializer,), {"revoked": serializers.IntegerField()}),
            ),
            **AUTH_ERRORS,
        },
    )
    def delete(self, request, partnership_id: str, external_user_id: str) -> Response:
        external_user_id_check(external_user_id)
        revoked = user_token_revoke_all(principal=request.user, external_user_id=external_user_id)
        return Response({"code": "ok", "data": {"revoked": revoked}})


class UserTokenRevokeApi(APIView):
    @extend_schema(
        operation_id="user_token_revoke",
        summary="Revoke one user token: refused from the next request on",
        parameters=[EXTERNAL_USER_ID],
        request=None,
        examples=examples.USER_TOKEN_REVOKE,
        responses={
            200: ok_envelope("UserTokenRevoke", UserTokenOutputSerializer),
            **AUTH_ERRORS,
            404: error(
                "No such token for this user (in the key's mode)", ErrorCode.TOKEN_DOES_NOT_EXIST
            ),
        },
    )
    def delete(self, request, partnership_id: str, external_user_id: str, token_id: str):
        external_user_id_check(external_user_id)
        token = user_token_revoke(
            principal=request.user, external_user_id=external_user_id, token_id=token_id
        )
        return Response({"code": "ok", "data": UserTokenOutputSerializer(token).data})
