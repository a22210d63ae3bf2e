from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from config import openapi_examples as examples
from config.errors import ApplicationError, ErrorCode, error_response, to_application_error
from config.http import json_body, json_ok
from config.openapi import (
    AUTH_ERRORS,
    BODY_ERRORS,
    IDEMPOTENCY_KEY,
    IDEMPOTENT_REPLAYED,
    USER_TOKEN_ERRORS,
    error,
    ok_envelope,
)
from partnerships.auth import HEADER, PartnerPrincipal, authenticate_partner, client_ip
from partnerships.cors import cors_headers_add, cors_preflight, is_preflight
from partnerships.user_tokens import (
    KeyOrUserTokenAuthentication,
    authenticate_user_token,
    bearer_token,
)

from .metrics import ingest_accepted, ingest_refused
from .models import TriggerEvent
from .selectors import trigger_event_get
from .services.client_ingest import trigger_event_ingest_for_user
from .services.ingest import INGEST_BODY_SCHEMA, IngestResult, trigger_event_ingest
from .services.processing import trigger_event_cancel


class TriggerEventCreateApi(APIView):
    """Send a trigger event (Benji's "Send Trigger Event").

    The product's hot path: DRF describes it (OpenAPI) but does not run it. ``dispatch``
    goes straight to ``post`` with the plain Django request, skipping DRF's request wrapping,
    content negotiation and rendering, which would cost as much as the work itself.
    """

    # For the schema (dispatch authenticates itself): the key, or an app's user token.
    authentication_classes = [KeyOrUserTokenAuthentication]

    class OutputSerializer(serializers.Serializer):
        trigger_event_id = serializers.UUIDField()
        status = serializers.ChoiceField(
            choices=TriggerEvent.Status.values,
            help_text="queued or scheduled; a replay answers the event's current status",
        )
        user_uuid = serializers.UUIDField()
        mode = serializers.ChoiceField(choices=["live", "test"], help_text="The key's mode")

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            if request.method != "POST":
                if is_preflight(request):  # a browser app's (user tokens)
                    return cors_preflight(request, kwargs.get("partnership_id"), methods="POST")
                raise ApplicationError(405, ErrorCode.METHOD_NOT_ALLOWED, headers={"Allow": "POST"})
            if request.META.get(HEADER) is None and "HTTP_AUTHORIZATION" in request.META:
                return self.post_with_user_token(request, **kwargs)
            return self.post(request, **kwargs)
        except Exception as exc:
            error = to_application_error(exc)
            ingest_refused(error.code if error else ErrorCode.INTERNAL_ERROR)
            if error is None:
                raise
            response = error_response(error)
            if request.META.get(HEADER) is None:
                cors_headers_add(request, response, kwargs.get("partnership_id"))
            return response

    @extend_schema(
        operation_id="trigger_event_create",
        summary="Send a trigger event",
        description=(
            "Validates `transaction_context` against the trigger's schema, stores the event "
            "durably and queues it for campaign evaluation. Send `Idempotency-Key` to make "
            "retries safe: the same key and body return the original `trigger_event_id` with "
            "`Idempotent-Replayed: true`.\n\n"
            "An app may send it with a user token (`Authorization: Bearer`): only triggers "
            "the token names and the partnership marked client-sendable, for the token's user "
            "(`external_user_id` may be left out), at the time it arrives (`occurred_at`, "
            "`delay`, `deliver_at` and `user_uuid` are refused), its idempotency keys (at most "
            "200 characters) the user's own."
        ),
        request={"application/json": INGEST_BODY_SCHEMA},
        parameters=[IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED],
        examples=examples.TRIGGER_EVENT_CREATE,
        responses={
            200: ok_envelope("TriggerEventCreate", OutputSerializer),
            **AUTH_ERRORS,
            **BODY_ERRORS,
            **USER_TOKEN_ERRORS,
            404: error(
                "Unknown partnership, trigger or user",
                ErrorCode.PARTNERSHIP_DOES_NOT_EXIST,
                ErrorCode.TRIGGER_DOES_NOT_EXIST,
                ErrorCode.USER_DOES_NOT_EXIST,
            ),
            409: error(
                "Idempotency key reused with another body", ErrorCode.IDEMPOTENCY_KEY_REUSED
            ),
            410: error(
                "The user was erased (also for a retry of one of their events)",
                ErrorCode.USER_ERASED,
            ),
            422: error(
                "Invalid body or context (one entry per problem in `errors`), archived "
                "trigger, or occurred_at older than the partnership accepts",
                ErrorCode.VALIDATION_ERROR,
                ErrorCode.TRIGGER_INACTIVE,
                ErrorCode.EVENT_TOO_LATE,
            ),
        },
    )
    def post(self, request: HttpRequest, partnership_id: str) -> HttpResponse:
        principal = authenticate_partner(
            raw_key=request.META.get(HEADER), partnership_id=partnership_id, ip=client_ip(request)
        )
        result = trigger_event_ingest(
            principal=principal,
            body=json_body(request),
            idempotency_key=request.META.get("HTTP_IDEMPOTENCY_KEY"),
        )
        return _accepted(result, principal.mode)

    def post_with_user_token(self, request: HttpRequest, partnership_id: str) -> HttpResponse:
        """An app's event for its user (``Authorization: Bearer``): see client_ingest."""
        principal = authenticate_user_token(
            raw_token=bearer_token(request) or "", partnership_id=partnership_id
        )
        result = trigger_event_ingest_for_user(
            principal=principal,
            body=json_body(request),
            idempotency_key=request.META.get("HTTP_IDEMPOTENCY_KEY"),
        )
        response = _accepted(result, principal.mode)
        cors_headers_add(request, response, partnership_id)
        return response


def _accepted(result: IngestResult, mode: str) -> HttpResponse:
    ingest_accepted(result, mode)
    data = {
        "trigger_event_id": str(result.trigger_event_id),
        "status": result.status,
        "user_uuid": str(result.user_uuid),
        "mode": mode,
    }
    return json_ok(data, headers={"Idempotent-Replayed": "true"} if result.replayed else None)


class TriggerEventOutputSerializer(serializers.Serializer):
    trigger_event_id = serializers.UUIDField(source="id")
    trigger_name = serializers.CharField(source="trigger.name")
    user_uuid = serializers.UUIDField(source="end_user_id")
    external_user_id = serializers.CharField(source="end_user.external_user_id")
    transaction_context = serializers.JSONField(source="context")
    status = serializers.CharField()
    mode = serializers.CharField()
    tags = serializers.DictField(child=serializers.CharField())
    idempotency_key = serializers.CharField(allow_null=True)
    occurred_at = serializers.DateTimeField()
    received_at = serializers.DateTimeField()
    deliver_at = serializers.DateTimeField()
    processed_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(allow_blank=True)


EVENT_NOT_FOUND = error("Unknown trigger event", ErrorCode.TRIGGER_EVENT_DOES_NOT_EXIST)


def event_not_found(principal: PartnerPrincipal) -> ApplicationError:
    return ApplicationError(
        404,
        ErrorCode.TRIGGER_EVENT_DOES_NOT_EXIST,
        f"No trigger event with this id in {principal.mode} mode",
    )


def _event_or_404(request, trigger_event_id: str):
    principal = request.user
    event = trigger_event_get(
        partnership_id=principal.partnership.id, mode=principal.mode, event_id=trigger_event_id
    )
    if event is None:
        raise event_not_found(principal)
    return event


class TriggerEventCancelApi(APIView):
    @extend_schema(
        operation_id="trigger_event_cancel",
        summary="Cancel a scheduled trigger event",
        request=None,
        examples=examples.TRIGGER_EVENT_CANCEL,
        responses={
            200: ok_envelope("TriggerEventCancel", TriggerEventOutputSerializer),
            **AUTH_ERRORS,
            404: EVENT_NOT_FOUND,
            409: error("Already queued or later", ErrorCode.TRIGGER_EVENT_NOT_CANCELLABLE),
        },
    )
    def post(self, request, partnership_id: str, trigger_event_id: str) -> Response:
        event = trigger_event_cancel(event=_event_or_404(request, trigger_event_id))
        return Response({"code": "ok", "data": TriggerEventOutputSerializer(event).data})
