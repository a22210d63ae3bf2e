"""Comparison views for `make bench`, mounted under /bench/ only when BENCH_VIEWS is true.

- ``bare``: the floor, a Django JSON view that parses the body and touches nothing else.
- ``NaiveTriggerEventApi``: the textbook design our endpoint is measured against: DRF parsing,
  authentication and serializer, pure-Python jsonschema, ORM get_or_create + create, and a
  Celery ``.delay()`` per request of a task that evaluates the event (``tasks.naive_evaluate``;
  the ingest bench runs no worker, the end-to-end bench does). The trigger and its compiled
  validator are cached per process, which flatters the naive design a little (no trigger query
  per request).
"""

import orjson
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from jsonschema import Draft202012Validator
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from partnerships.auth import IsPartnershipKey, PartnerKeyAuthentication
from partnerships.models import EndUser
from triggers.models import Trigger, TriggerEvent

from .tasks import naive_evaluate


@csrf_exempt
@require_POST
def bare(request: HttpRequest) -> JsonResponse:
    body = orjson.loads(request.body)
    return JsonResponse({"code": "ok", "data": {"trigger_name": body.get("trigger_name")}})


_triggers: dict[tuple, tuple[int, Draft202012Validator]] = {}


def _trigger(partnership_id, name: str) -> tuple[int, Draft202012Validator]:
    key = (partnership_id, name)
    if key not in _triggers:
        trigger = Trigger.objects.get(partnership_id=partnership_id, name=name)
        _triggers[key] = (trigger.id, Draft202012Validator(trigger.context_schema))
    return _triggers[key]


class NaiveTriggerEventApi(APIView):
    authentication_classes = [PartnerKeyAuthentication]
    permission_classes = [IsPartnershipKey]

    class InputSerializer(serializers.Serializer):
        trigger_name = serializers.CharField(max_length=64)
        external_user_id = serializers.CharField(max_length=255)
        transaction_context = serializers.DictField()
        tags = serializers.DictField(child=serializers.CharField(max_length=200), required=False)

    def post(self, request, partnership_id: str) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        partnership = request.user.partnership
        trigger_id, validator = _trigger(partnership.id, data["trigger_name"])
        errors = [error.message for error in validator.iter_errors(data["transaction_context"])]
        if errors:
            raise serializers.ValidationError({"transaction_context": errors})
        user, _ = EndUser.objects.get_or_create(
            partnership_id=partnership.id, external_user_id=data["external_user_id"]
        )
        now = timezone.now()
        event = TriggerEvent.objects.create(
            partnership_id=partnership.id,
            trigger_id=trigger_id,
            end_user=user,
            context=data["transaction_context"],
            mode=request.user.mode,
            tags=data.get("tags", {}),
            occurred_at=now,
            received_at=now,
            deliver_at=now,
        )
        naive_evaluate.delay(str(event.id))
        data = {
            "trigger_event_id": str(event.id),
            "status": event.status,
            "user_uuid": str(user.id),
        }
        return Response({"code": "ok", "data": data})
