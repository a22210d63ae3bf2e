import uuid
from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from config import openapi_examples as examples
from config.errors import (
    ApplicationError,
    ErrorCode,
    field_error,
    idempotency_key_errors,
    validation_error,
)
from config.openapi import (
    AUTH_ERRORS,
    BODY_ERRORS,
    IDEMPOTENCY_KEY,
    IDEMPOTENT_REPLAYED,
    USER_TOKEN_ERRORS,
    error,
    ok_envelope,
)
from config.timestamps import TimestampField
from partnerships.auth import PartnerPrincipal
from partnerships.cors import UserTokenCorsMixin
from partnerships.pseudonyms import external_user_id_check
from partnerships.user_tokens import (
    SCOPE_READ,
    IsKeyOrUserToken,
    KeyOrUserTokenAuthentication,
    UserPrincipal,
)
from triggers.apis import TriggerEventOutputSerializer, event_not_found
from triggers.schemas import compile_schema, schema_errors

from .models import Reward
from .selectors import (
    end_user_get,
    reversal_get,
    reward_balance_for_user,
    reward_list_for_user,
    trigger_event_get_with_rewards,
)
from .serializers import DecisionSerializer, ReversalOutputSerializer, RewardOutputSerializer
from .services.reversal import ReversalRequest, trigger_event_reverse


class TriggerEventDetailApi(APIView):
    class OutputSerializer(TriggerEventOutputSerializer):
        decisions = DecisionSerializer(
            many=True, source="decision_list", help_text="One per candidate campaign"
        )
        rewards = RewardOutputSerializer(many=True, source="reward_list")
        reversals = ReversalOutputSerializer(many=True, source="reversal_list")

    @extend_schema(
        operation_id="trigger_event_retrieve",
        summary="A trigger event: its status, campaign decisions and rewards",
        description="An event sent with a key of the other mode (live or test) is a 404.",
        examples=examples.TRIGGER_EVENT_RETRIEVE,
        responses={
            200: ok_envelope("TriggerEventDetail", OutputSerializer),
            **AUTH_ERRORS,
            404: error(
                "Unknown trigger event, or one of the other mode",
                ErrorCode.TRIGGER_EVENT_DOES_NOT_EXIST,
            ),
        },
    )
    def get(self, request, partnership_id: str, trigger_event_id: str) -> Response:
        principal = request.user
        event = trigger_event_get_with_rewards(
            partnership_id=principal.partnership.id, mode=principal.mode, event_id=trigger_event_id
        )
        if event is None:
            raise event_not_found(principal)
        return Response({"code": "ok", "data": self.OutputSerializer(event).data})


# A positive amount as the ledger holds it (18 digits, 6 of them decimals), as a string:
# up to 12 digits before the point without a leading zero, up to 6 after it, not zero
# (below 1: a first non-zero decimal in one of the 6 places).
AMOUNT_PATTERN = (
    r"^([1-9][0-9]{0,11}(\.[0-9]{1,6})?"
    r"|0\.([1-9][0-9]{0,5}|0[1-9][0-9]{0,4}|00[1-9][0-9]{0,3}|000[1-9][0-9]{0,2}"
    r"|0000[1-9][0-9]?|00000[1-9]))$"
)
_AMOUNT_STEP = Decimal("0.000001")

# The reversal body, as a JSON Schema: validated in one pass and served in the OpenAPI docs.
REVERSE_BODY_SCHEMA = {
    "type": "object",
    "properties": {
        "trigger_event_id": {"type": "string", "format": "uuid"},
        "trigger_name": {"type": "string", "minLength": 1, "maxLength": 64},
        "external_user_id": {"type": "string", "minLength": 1, "maxLength": 255},
        "reason": {"type": "string", "maxLength": 500},
        "amount": {
            "type": "string",
            "pattern": AMOUNT_PATTERN,
            "description": 'Partial clawback, a decimal string such as "2.50": this much of '
            "the event's rewards, split in proportion",
        },
        "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 255},
    },
    # The event by its id, or the user's latest event of a trigger: one or the other.
    "oneOf": [
        {
            "required": ["trigger_event_id"],
            "not": {"anyOf": [{"required": ["trigger_name"]}, {"required": ["external_user_id"]}]},
        },
        {
            "required": ["trigger_name", "external_user_id"],
            "not": {"required": ["trigger_event_id"]},
        },
    ],
    # A misspelt "amount" must not become a full reversal.
    "additionalProperties": False,
}
_reverse_body_validator = compile_schema(REVERSE_BODY_SCHEMA)


def _reverse_body(body: Any, header_key: str | None) -> ReversalRequest:
    if not isinstance(body, dict):
        raise validation_error([field_error("", "type", "The body must be a JSON object")])
    errors = [
        _target_error(body, error) for error in schema_errors(_reverse_body_validator, body, "")
    ]
    errors += idempotency_key_errors(header_key, body.get("idempotency_key"))
    if errors:
        raise validation_error(errors)
    return ReversalRequest(
        trigger_event_id=uuid.UUID(body["trigger_event_id"])
        if "trigger_event_id" in body
        else None,
        trigger_name=body.get("trigger_name"),
        external_user_id=body.get("external_user_id"),
        reason=body.get("reason", ""),
        amount=Decimal(body["amount"]).quantize(_AMOUNT_STEP) if "amount" in body else None,
        idempotency_key=header_key or body.get("idempotency_key"),
    )


def _target_error(body: dict, error: dict) -> dict:
    """The schema's ``oneOf`` error, in words that say which field is missing."""
    if error["field"] != "" or error["code"] != "one_of":
        return error
    by_user = [field for field in ("trigger_name", "external_user_id") if field in body]
    if "trigger_event_id" in body and by_user:
        message = "Send trigger_event_id, or trigger_name and external_user_id; not both"
        return field_error("trigger_event_id", "conflict", message)
    if len(by_user) == 1:
        missing = "external_user_id" if by_user == ["trigger_name"] else "trigger_name"
        return field_error(missing, "required", "This field is required.")
    message = "Send trigger_event_id, or trigger_name and external_user_id"
    return field_error("trigger_event_id", "required", message)


class TriggerEventReverseApi(APIView):
    """Benji's reverse: a refund claws back what an event earned (or cancels it if unevaluated)."""

    @extend_schema(
        operation_id="trigger_event_reverse",
        summary="Reverse a trigger event (refund): claw its rewards back",
        request={"application/json": REVERSE_BODY_SCHEMA},
        parameters=[IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED],
        examples=examples.TRIGGER_EVENT_REVERSE,
        responses={
            200: ok_envelope("TriggerEventReverse", ReversalOutputSerializer),
            **AUTH_ERRORS,
            **BODY_ERRORS,
            404: error(
                "Nothing to reverse (in the key's mode)", ErrorCode.TRIGGER_EVENT_DOES_NOT_EXIST
            ),
            409: error(
                "Already reversed, or Idempotency-Key reused",
                ErrorCode.ALREADY_REVERSED,
                ErrorCode.IDEMPOTENCY_KEY_REUSED,
            ),
            422: error(
                "Invalid body, or an amount the event's rewards cannot give",
                ErrorCode.VALIDATION_ERROR,
            ),
        },
    )
    def post(self, request, partnership_id: str) -> Response:
        wanted = _reverse_body(request.data, request.META.get("HTTP_IDEMPOTENCY_KEY"))
        result = trigger_event_reverse(principal=request.user, request=wanted)
        reversal = reversal_get(reversal_id=result.reversal.id)
        return Response(
            {"code": "ok", "data": ReversalOutputSerializer(reversal).data},
            headers={"Idempotent-Replayed": "true"} if result.replayed else None,
        )


def _user_or_404(request, external_user_id: str):
    if isinstance(request.user, UserPrincipal):  # an app: its own user, if the token may read
        request.user.require_user(external_user_id)
        request.user.require_scope(SCOPE_READ)
    external_user_id_check(external_user_id)
    user = end_user_get(
        partnership_id=request.user.partnership.id, external_user_id=external_user_id
    )
    if user is None:
        raise ApplicationError(404, ErrorCode.USER_DOES_NOT_EXIST, "No user with this id")
    return user


USER_NOT_FOUND = error("Unknown user", ErrorCode.USER_DOES_NOT_EXIST)
READ_REFUSED = error(
    "Invalid filter, a cursor this API did not give, or `mode` is not the key's mode",
    ErrorCode.VALIDATION_ERROR,
    ErrorCode.MODE_MISMATCH,
)


class ModeFilterSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(
        choices=["live", "test"],
        required=False,
        help_text="Optional: a key reads only its own mode; naming the other is 422 "
        "`mode_mismatch`",
    )


def key_mode(principal: PartnerPrincipal | UserPrincipal, requested: str | None) -> str:
    """The mode a read shows: always the key's. Naming the other one is refused, not ignored,
    so a client that believes it reads live data with a test key finds out."""
    if requested is not None and requested != principal.mode:
        message = f"A {principal.mode} key reads only {principal.mode} data"
        raise ApplicationError(
            422,
            ErrorCode.MODE_MISMATCH,
            message,
            errors=[field_error("mode", "mode_mismatch", message)],
        )
    return principal.mode


class UserReadApi(UserTokenCorsMixin, APIView):
    """A read of one user's data: with the partner key, or the user's own token (an app)."""

    authentication_classes = [KeyOrUserTokenAuthentication]
    permission_classes = [IsKeyOrUserToken]


class UserRewardListApi(UserReadApi):
    class FilterSerializer(ModeFilterSerializer):
        cursor = serializers.CharField(required=False)
        limit = serializers.IntegerField(required=False, min_value=1, max_value=200, default=50)
        campaign = serializers.CharField(required=False, help_text="Campaign id or slug")
        status = serializers.ChoiceField(choices=Reward.Status.choices, required=False)
        issued_after = TimestampField(required=False)
        issued_before = TimestampField(required=False)

    class OutputSerializer(serializers.Serializer):
        mode = serializers.CharField(help_text="The key's mode: the rewards shown are of it")
        rewards = RewardOutputSerializer(many=True)
        next_cursor = serializers.CharField(allow_null=True)

    @extend_schema(
        operation_id="user_reward_list",
        summary="A user's rewards, newest first (cursor-paginated)",
        parameters=[FilterSerializer],
        examples=examples.USER_REWARD_LIST,
        responses={
            200: ok_envelope("UserRewardList", OutputSerializer),
            **AUTH_ERRORS,
            **USER_TOKEN_ERRORS,
            404: USER_NOT_FOUND,
            422: READ_REFUSED,
        },
    )
    def get(self, request, partnership_id: str, external_user_id: str) -> Response:
        # A plain dict: as a QueryDict, DRF would take "?status=" for no filter at all.
        filters = self.FilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        params = dict(filters.validated_data)
        mode = key_mode(request.user, params.pop("mode", None))
        user = _user_or_404(request, external_user_id)
        page = reward_list_for_user(user=user, mode=mode, **params)
        data = {"mode": mode, "rewards": page.rewards, "next_cursor": page.next_cursor}
        return Response({"code": "ok", "data": self.OutputSerializer(data).data})


class UserBalanceApi(UserReadApi):
    class OutputSerializer(serializers.Serializer):
        user_uuid = serializers.UUIDField()
        external_user_id = serializers.CharField()
        mode = serializers.CharField(help_text="The key's mode: the balances shown are of it")
        balances = inline_serializer(
            "Balance",
            {
                "unit": serializers.CharField(),
                "earned": serializers.CharField(),
                "reversed": serializers.CharField(),
                "net": serializers.CharField(),
            },
            many=True,
        )

    @extend_schema(
        operation_id="user_balance",
        summary="A user's reward balance per unit: earned, reversed, net",
        parameters=[ModeFilterSerializer],
        examples=examples.USER_BALANCE,
        responses={
            200: ok_envelope("UserBalance", OutputSerializer),
            **AUTH_ERRORS,
            **USER_TOKEN_ERRORS,
            404: USER_NOT_FOUND,
            422: READ_REFUSED,
        },
    )
    def get(self, request, partnership_id: str, external_user_id: str) -> Response:
        filters = ModeFilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        mode = key_mode(request.user, filters.validated_data.get("mode"))
        user = _user_or_404(request, external_user_id)
        data = {
            "user_uuid": user.id,
            "external_user_id": user.external_user_id,
            "mode": mode,
            "balances": reward_balance_for_user(user=user, mode=mode),
        }
        return Response({"code": "ok", "data": self.OutputSerializer(data).data})
