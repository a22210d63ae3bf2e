from decimal import Decimal

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import ApplicationError, ErrorCode, field_error, validation_error
from config.openapi import AUTH_ERRORS, error, ok_envelope
from triggers.apis import TriggerEventOutputSerializer

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
        responses={
            200: ok_envelope("TriggerEventDetail", OutputSerializer),
            **AUTH_ERRORS,
            404: error("Unknown trigger event", ErrorCode.TRIGGER_EVENT_DOES_NOT_EXIST),
        },
    )
    def get(self, request, partnership_id: str, trigger_event_id: str) -> Response:
        event = trigger_event_get_with_rewards(
            partnership_id=request.user.partnership.id, event_id=trigger_event_id
        )
        if event is None:
            raise ApplicationError(404, ErrorCode.TRIGGER_EVENT_DOES_NOT_EXIST)
        return Response({"code": "ok", "data": self.OutputSerializer(event).data})


class TriggerEventReverseApi(APIView):
    """Benji's reverse: a refund claws back what an event earned (or cancels it if unevaluated)."""

    class InputSerializer(serializers.Serializer):
        trigger_event_id = serializers.UUIDField(required=False)
        trigger_name = serializers.CharField(required=False, max_length=64)
        external_user_id = serializers.CharField(required=False, max_length=255)
        reason = serializers.CharField(required=False, allow_blank=True, max_length=500)
        amount = serializers.DecimalField(
            required=False,
            max_digits=18,
            decimal_places=6,
            min_value=Decimal("0.000001"),
            help_text="Partial clawback: this much of the event's rewards, split in proportion",
        )
        idempotency_key = serializers.CharField(required=False, max_length=255)

        def validate(self, data: dict) -> dict:
            by_event = "trigger_event_id" in data
            by_user = "trigger_name" in data or "external_user_id" in data
            if by_event == by_user:
                raise serializers.ValidationError(
                    {
                        "trigger_event_id": "Send trigger_event_id, or trigger_name and "
                        "external_user_id"
                    },
                    code="required",
                )
            for field in ("trigger_name", "external_user_id"):
                if by_user and field not in data:
                    raise serializers.ValidationError(
                        {field: "This field is required."}, code="required"
                    )
            return data

    @extend_schema(
        operation_id="trigger_event_reverse",
        summary="Reverse a trigger event (refund): claw its rewards back",
        request=InputSerializer,
        parameters=[
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False),
        ],
        responses={
            200: ok_envelope("TriggerEventReverse", ReversalOutputSerializer),
            **AUTH_ERRORS,
            404: error("Nothing to reverse", ErrorCode.TRIGGER_EVENT_DOES_NOT_EXIST),
            409: error(
                "Already reversed, or Idempotency-Key reused",
                ErrorCode.ALREADY_REVERSED,
                ErrorCode.IDEMPOTENCY_KEY_REUSED,
            ),
            422: error("Invalid body", ErrorCode.VALIDATION_ERROR),
        },
    )
    def post(self, request, partnership_id: str) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        body = data.validated_data
        header_key = request.META.get("HTTP_IDEMPOTENCY_KEY")
        result = trigger_event_reverse(
            principal=request.user,
            request=ReversalRequest(
                trigger_event_id=body.get("trigger_event_id"),
                trigger_name=body.get("trigger_name"),
                external_user_id=body.get("external_user_id"),
                reason=body.get("reason", ""),
                amount=body.get("amount"),
                idempotency_key=header_key or body.get("idempotency_key"),
            ),
        )
        reversal = reversal_get(reversal_id=result.reversal.id)
        return Response(
            {"code": "ok", "data": ReversalOutputSerializer(reversal).data},
            headers={"Idempotent-Replayed": "true"} if result.replayed else None,
        )


def _user_or_404(request, external_user_id: str):
    user = end_user_get(
        partnership_id=request.user.partnership.id, external_user_id=external_user_id
    )
    if user is None:
        raise ApplicationError(404, ErrorCode.USER_DOES_NOT_EXIST, "No user with this id")
    return user


USER_NOT_FOUND = error("Unknown user", ErrorCode.USER_DOES_NOT_EXIST)


class UserRewardListApi(APIView):
    class FilterSerializer(serializers.Serializer):
        cursor = serializers.CharField(required=False)
        limit = serializers.IntegerField(required=False, min_value=1, max_value=200, default=50)
        campaign = serializers.CharField(required=False, help_text="Campaign id or slug")
        status = serializers.ChoiceField(choices=Reward.Status.choices, required=False)
        issued_after = serializers.DateTimeField(required=False)
        issued_before = serializers.DateTimeField(required=False)
        mode = serializers.ChoiceField(choices=["live", "test"], default="live", required=False)

    class OutputSerializer(serializers.Serializer):
        rewards = RewardOutputSerializer(many=True)
        next_cursor = serializers.CharField(allow_null=True)

    @extend_schema(
        operation_id="user_reward_list",
        summary="A user's rewards, newest first (cursor-paginated)",
        parameters=[FilterSerializer],
        responses={
            200: ok_envelope("UserRewardList", OutputSerializer),
            **AUTH_ERRORS,
            404: USER_NOT_FOUND,
        },
    )
    def get(self, request, partnership_id: str, external_user_id: str) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        user = _user_or_404(request, external_user_id)
        page = reward_list_for_user(user=user, **filters.validated_data)
        return Response({"code": "ok", "data": self.OutputSerializer(page).data})


class UserBalanceApi(APIView):
    class OutputSerializer(serializers.Serializer):
        user_uuid = serializers.UUIDField()
        external_user_id = serializers.CharField()
        mode = serializers.CharField()
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
        parameters=[OpenApiParameter("mode", str, enum=["live", "test"], required=False)],
        responses={
            200: ok_envelope("UserBalance", OutputSerializer),
            **AUTH_ERRORS,
            404: USER_NOT_FOUND,
        },
    )
    def get(self, request, partnership_id: str, external_user_id: str) -> Response:
        mode = request.query_params.get("mode", "live")
        if mode not in ("live", "test"):
            raise validation_error([field_error("mode", "invalid_choice", "live or test")])
        user = _user_or_404(request, external_user_id)
        data = {
            "user_uuid": user.id,
            "external_user_id": user.external_user_id,
            "mode": mode,
            "balances": reward_balance_for_user(user=user, mode=mode),
        }
        return Response({"code": "ok", "data": self.OutputSerializer(data).data})
