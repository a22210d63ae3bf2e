from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import ApplicationError, ErrorCode
from config.openapi import AUTH_ERRORS, error, ok_envelope
from triggers.apis import TriggerEventOutputSerializer

from .selectors import trigger_event_get_with_rewards
from .serializers import DecisionSerializer, RewardOutputSerializer


class TriggerEventDetailApi(APIView):
    class OutputSerializer(TriggerEventOutputSerializer):
        decisions = DecisionSerializer(many=True, help_text="One per candidate campaign")
        rewards = RewardOutputSerializer(many=True, source="reward_list")

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
