from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from config.openapi import ok_envelope
from partnerships.mgmt.base import (
    BODY_ERRORS,
    CONFLICT,
    IF_MATCH,
    MGMT_AUTH_ERRORS,
    WRITE_ERRORS,
    MgmtApi,
    StrictSerializer,
    assign,
    create_examples,
    django_errors,
    if_match,
    list_schema,
    ok,
    validated,
)

from ..models import Trigger
from ..services.configuration import trigger_remove, trigger_save

TRIGGER_EXAMPLE = {
    "id": 12,
    "name": "transaction_completed",
    "description": "A card purchase",
    "context_schema": {
        "type": "object",
        "properties": {"amount": {"type": "number", "minimum": 0}},
        "required": ["amount"],
    },
    "status": "active",
    "client_sendable": False,
    "revision": 4,
    "created_at": "2026-01-05T09:30:00Z",
    "updated_at": "2026-02-01T12:00:00Z",
}


class TriggerOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    context_schema = serializers.DictField()
    status = serializers.CharField()
    client_sendable = serializers.BooleanField()
    revision = serializers.IntegerField(help_text="Also the ETag; send it back in If-Match")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class TriggerIn(StrictSerializer):
    name = serializers.CharField(max_length=64)
    description = serializers.CharField(allow_blank=True, max_length=10_000, required=False)
    context_schema = serializers.DictField(
        required=False, help_text="JSON Schema (draft 2020-12) of transaction_context"
    )
    status = serializers.ChoiceField(Trigger.Status.choices, required=False)
    client_sendable = serializers.BooleanField(
        required=False, help_text="Apps may send it with a user token (campaigns must cap users)"
    )


class TriggerApi(MgmtApi):
    def change_check(self, trigger: Trigger) -> dict[str, list[str]]:
        """What refuses a change beyond the model's rules (campaigns adds its own)."""
        return {}

    def remove_check(self, trigger: Trigger) -> None:
        """Raises if removing the trigger would stop something (campaigns adds its own)."""

    def trigger(self, partnership_id, trigger_id) -> Trigger:
        partnership = self.staff.partnership(partnership_id)
        return get_object_or_404(Trigger, partnership=partnership, pk=trigger_id)

    def save(self, trigger: Trigger, expected: int | None = None) -> Trigger:
        try:
            return trigger_save(
                trigger=trigger,
                actor=self.staff.user,
                expected_revision=expected,
                check=self.change_check,
            )
        except ValidationError as exc:
            raise django_errors(exc) from exc


class TriggerListApi(TriggerApi):
    @list_schema("trigger", TriggerOut, "A partnership's triggers")
    def get(self, request, partnership_id):
        return self.listing("triggers.view_trigger", partnership_id, Trigger.objects, TriggerOut)

    @extend_schema(
        operation_id="mgmt_trigger_create",
        summary="Create a trigger",
        request=TriggerIn,
        responses={201: ok_envelope("MgmtTriggerCreated", TriggerOut), **BODY_ERRORS},
        examples=create_examples(
            {
                "name": "transaction_completed",
                "context_schema": TRIGGER_EXAMPLE["context_schema"],
            },
            TRIGGER_EXAMPLE,
        ),
    )
    def post(self, request, partnership_id):
        self.staff.require("triggers.add_trigger")
        partnership = self.staff.partnership(partnership_id)
        body = validated(TriggerIn, request.data)
        trigger = self.save(Trigger(partnership=partnership, **body))
        return ok(TriggerOut(trigger).data, status=201, revision=trigger.revision)


class TriggerDetailApi(TriggerApi):
    @extend_schema(
        operation_id="mgmt_trigger_retrieve",
        summary="One trigger (its ETag in the header)",
        responses={200: ok_envelope("MgmtTrigger", TriggerOut), **MGMT_AUTH_ERRORS},
        examples=[
            OpenApiExample(
                "trigger", value={"code": "ok", "data": TRIGGER_EXAMPLE}, response_only=True
            )
        ],
    )
    def get(self, request, partnership_id, trigger_id):
        self.staff.require("triggers.view_trigger")
        trigger = self.trigger(partnership_id, trigger_id)
        return ok(TriggerOut(trigger).data, revision=trigger.revision)

    @extend_schema(
        operation_id="mgmt_trigger_update",
        summary="Change a trigger (If-Match); refused if it would stop an active campaign",
        parameters=[IF_MATCH],
        request=TriggerIn(partial=True),
        responses={200: ok_envelope("MgmtTriggerUpdated", TriggerOut), **WRITE_ERRORS},
        examples=[
            OpenApiExample("describe", value={"description": "A purchase"}, request_only=True)
        ],
    )
    def patch(self, request, partnership_id, trigger_id):
        self.staff.require("triggers.change_trigger")
        trigger = self.trigger(partnership_id, trigger_id)
        expected = if_match(request)
        body = validated(TriggerIn, request.data, partial=True)
        assign(trigger, body)
        self.save(trigger, expected)
        return ok(TriggerOut(trigger).data, revision=trigger.revision)

    @extend_schema(
        operation_id="mgmt_trigger_delete",
        summary="Delete a trigger, or archive it if events or campaigns reference it",
        parameters=[IF_MATCH],
        responses={
            200: OpenApiResponse(
                ok_envelope("MgmtTriggerArchived", TriggerOut),
                description="Archived (referenced): partners can no longer send it",
            ),
            204: OpenApiResponse(description="Deleted (nothing referenced it)"),
            409: CONFLICT,
            **WRITE_ERRORS,
        },
    )
    def delete(self, request, partnership_id, trigger_id):
        self.staff.require("triggers.delete_trigger")
        trigger = self.trigger(partnership_id, trigger_id)
        expected = if_match(request)
        self.remove_check(trigger)
        if trigger_remove(trigger=trigger, actor=self.staff.user, expected_revision=expected):
            return Response(status=204)
        return ok(TriggerOut(trigger).data, revision=trigger.revision)
