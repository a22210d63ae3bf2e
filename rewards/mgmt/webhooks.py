from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from config.openapi import ok_envelope
from partnerships.mgmt.base import (
    BODY_ERRORS,
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

from ..webhooks.models import WebhookEndpoint, WebhookEventType
from ..webhooks.services import webhook_endpoint_remove, webhook_endpoint_save


class EndpointOut(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.CharField()
    event_types = serializers.ListField(child=serializers.CharField())
    modes = serializers.CharField()
    active = serializers.BooleanField()
    revision = serializers.IntegerField(help_text="Also the ETag; send it back in If-Match")
    created_at = serializers.DateTimeField()


class EndpointCreatedOut(EndpointOut):
    secret = serializers.CharField(help_text="The signing secret: shown once, never again")


class EndpointIn(StrictSerializer):
    url = serializers.CharField(max_length=500)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(WebhookEventType.choices), max_length=10
    )
    modes = serializers.ChoiceField(WebhookEndpoint.Modes.choices, required=False)
    active = serializers.BooleanField(required=False)


ENDPOINT_EXAMPLE = {
    "id": "0b6f8f8e-1c1a-4d8e-9a0e-8f7f0c6a1b2c",
    "url": "https://partner.example/webhooks/rewards",
    "event_types": ["reward.issued", "reward.reversed"],
    "modes": "live",
    "active": True,
    "revision": 1,
    "created_at": "2026-02-01T12:00:00Z",
}


class EndpointApi(MgmtApi):
    def endpoint(self, partnership_id, endpoint_id) -> WebhookEndpoint:
        partnership = self.staff.partnership(partnership_id)
        return get_object_or_404(WebhookEndpoint, partnership=partnership, pk=endpoint_id)

    def save(self, endpoint: WebhookEndpoint, expected: int | None = None) -> str | None:
        try:
            return webhook_endpoint_save(
                endpoint=endpoint, actor=self.staff.user, expected_revision=expected
            )
        except ValidationError as exc:
            raise django_errors(exc) from exc


class EndpointListApi(EndpointApi):
    @list_schema("webhook_endpoint", EndpointOut, "A partnership's webhook endpoints (no secrets)")
    def get(self, request, partnership_id):
        rows = WebhookEndpoint.objects
        return self.listing("rewards.view_webhookendpoint", partnership_id, rows, EndpointOut)

    @extend_schema(
        operation_id="mgmt_webhook_endpoint_create",
        summary="Add a webhook endpoint (its signing secret is shown once in the answer)",
        request=EndpointIn,
        responses={
            201: ok_envelope("MgmtWebhookEndpointCreated", EndpointCreatedOut),
            **BODY_ERRORS,
        },
        examples=create_examples(
            {k: ENDPOINT_EXAMPLE[k] for k in ("url", "event_types", "modes")},
            {**ENDPOINT_EXAMPLE, "secret": "whsec_…"},
        ),
    )
    def post(self, request, partnership_id):
        self.staff.require("rewards.add_webhookendpoint")
        partnership = self.staff.partnership(partnership_id)
        body = validated(EndpointIn, request.data)
        endpoint = WebhookEndpoint(partnership=partnership, **body)
        secret = self.save(endpoint)
        data = {**EndpointOut(endpoint).data, "secret": secret}
        return ok(data, status=201, revision=endpoint.revision)


class EndpointDetailApi(EndpointApi):
    @extend_schema(
        operation_id="mgmt_webhook_endpoint_retrieve",
        summary="One webhook endpoint (its ETag in the header)",
        responses={200: ok_envelope("MgmtWebhookEndpoint", EndpointOut), **MGMT_AUTH_ERRORS},
    )
    def get(self, request, partnership_id, endpoint_id):
        self.staff.require("rewards.view_webhookendpoint")
        endpoint = self.endpoint(partnership_id, endpoint_id)
        return ok(EndpointOut(endpoint).data, revision=endpoint.revision)

    @extend_schema(
        operation_id="mgmt_webhook_endpoint_update",
        summary="Change a webhook endpoint (If-Match)",
        parameters=[IF_MATCH],
        request=EndpointIn(partial=True),
        responses={200: ok_envelope("MgmtWebhookEndpointUpdated", EndpointOut), **WRITE_ERRORS},
        examples=[OpenApiExample("pause", value={"active": False}, request_only=True)],
    )
    def patch(self, request, partnership_id, endpoint_id):
        self.staff.require("rewards.change_webhookendpoint")
        endpoint = self.endpoint(partnership_id, endpoint_id)
        expected = if_match(request)
        body = validated(EndpointIn, request.data, partial=True)
        assign(endpoint, body)
        self.save(endpoint, expected)
        return ok(EndpointOut(endpoint).data, revision=endpoint.revision)

    @extend_schema(
        operation_id="mgmt_webhook_endpoint_delete",
        summary="Delete an endpoint, or deactivate it if it has deliveries (their history stays)",
        parameters=[IF_MATCH],
        responses={
            200: OpenApiResponse(
                ok_envelope("MgmtWebhookEndpointDeactivated", EndpointOut),
                description="Deactivated",
            ),
            204: OpenApiResponse(description="Deleted"),
            **WRITE_ERRORS,
        },
    )
    def delete(self, request, partnership_id, endpoint_id):
        self.staff.require("rewards.delete_webhookendpoint")
        endpoint = self.endpoint(partnership_id, endpoint_id)
        expected = if_match(request)
        if webhook_endpoint_remove(
            endpoint=endpoint, actor=self.staff.user, expected_revision=expected
        ):
            return Response(status=204)
        return ok(EndpointOut(endpoint).data, revision=endpoint.revision)
