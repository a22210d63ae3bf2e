"""Partnerships and their API keys on the management API."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from config.errors import ApplicationError, ErrorCode
from config.openapi import ok_envelope

from .. import roles
from ..models import ApiKey, Partner, Partnership
from ..services import (
    ROTATION_MAX_OVERLAP_HOURS,
    api_key_create_audited,
    api_key_revoke_audited,
    api_key_rotate_audited,
    partnership_remove,
    partnership_save,
)
from .base import (
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
    page,
    validated,
)

PARTNERSHIP_EXAMPLE = {
    "id": "7f1c1e9e-4a8b-4c1e-9a57-2d0f3b8e6a11",
    "partner": "Acme Bank",
    "name": "Acme Rewards",
    "status": "active",
    "reward_unit": "Points",
    "reward_decimal_places": 2,
    "time_zone": "Europe/Paris",
    "max_event_lateness_days": 30,
    "allowed_cidrs": [],
    "revision": 3,
    "created_at": "2026-01-05T09:30:00Z",
    "updated_at": "2026-02-01T12:00:00Z",
}


class PartnershipOut(serializers.Serializer):
    id = serializers.UUIDField()
    partner = serializers.CharField(source="partner.name")
    name = serializers.CharField()
    status = serializers.CharField()
    reward_unit = serializers.CharField()
    reward_decimal_places = serializers.IntegerField()
    time_zone = serializers.CharField()
    max_event_lateness_days = serializers.IntegerField(allow_null=True)
    allowed_cidrs = serializers.ListField(child=serializers.CharField())
    revision = serializers.IntegerField(help_text="Also the ETag; send it back in If-Match")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class PartnershipIn(StrictSerializer):
    name = serializers.CharField(max_length=200)
    status = serializers.ChoiceField(Partnership.Status.choices, required=False)
    reward_unit = serializers.CharField(max_length=40, required=False)
    reward_decimal_places = serializers.IntegerField(min_value=0, max_value=6, required=False)
    time_zone = serializers.CharField(max_length=64, required=False)
    max_event_lateness_days = serializers.IntegerField(
        min_value=1, max_value=366, allow_null=True, required=False
    )
    allowed_cidrs = serializers.ListField(
        child=serializers.CharField(max_length=64), max_length=100, required=False
    )


class PartnershipCreateIn(PartnershipIn):
    partner = serializers.CharField(max_length=200, help_text="The company; created if new")


def _saved(save):
    try:
        return save()
    except ValidationError as exc:
        raise django_errors(exc) from exc


class PartnershipListApi(MgmtApi):
    @list_schema("partnership", PartnershipOut, "The token's partnerships")
    def get(self, request):
        self.staff.require("partnerships.view_partnership")
        rows = self.staff.partnerships().order_by("created_at", "id")
        return page(request, rows, lambda row: PartnershipOut(row).data)

    @extend_schema(
        operation_id="mgmt_partnership_create",
        summary="Create a partnership (unscoped Admin tokens only)",
        request=PartnershipCreateIn,
        responses={201: ok_envelope("MgmtPartnershipCreated", PartnershipOut), **BODY_ERRORS},
        examples=create_examples(
            {"partner": "Acme Bank", "name": "Acme Rewards", "time_zone": "Europe/Paris"},
            PARTNERSHIP_EXAMPLE,
        ),
    )
    def post(self, request):
        _unscoped_admin(self.staff.token, "creates partnerships")
        self.staff.require("partnerships.add_partnership", "partnerships.add_partner")
        data = validated(PartnershipCreateIn, request.data)
        with transaction.atomic():
            partner, _ = Partner.objects.get_or_create(name=data.pop("partner"))
            partnership = Partnership(partner=partner)
            assign(partnership, data)
            _saved(lambda: partnership_save(partnership=partnership, actor=self.staff.user))
        return ok(PartnershipOut(partnership).data, status=201, revision=partnership.revision)


class PartnershipDetailApi(MgmtApi):
    @extend_schema(
        operation_id="mgmt_partnership_retrieve",
        summary="One partnership (its ETag in the header)",
        responses={200: ok_envelope("MgmtPartnership", PartnershipOut), **MGMT_AUTH_ERRORS},
        examples=[
            OpenApiExample(
                "partnership", value={"code": "ok", "data": PARTNERSHIP_EXAMPLE}, response_only=True
            )
        ],
    )
    def get(self, request, partnership_id):
        self.staff.require("partnerships.view_partnership")
        partnership = self.staff.partnership(partnership_id)
        return ok(PartnershipOut(partnership).data, revision=partnership.revision)

    @extend_schema(
        operation_id="mgmt_partnership_update",
        summary="Change a partnership (If-Match: its ETag)",
        parameters=[IF_MATCH],
        request=PartnershipIn(partial=True),
        responses={200: ok_envelope("MgmtPartnershipUpdated", PartnershipOut), **WRITE_ERRORS},
        examples=[OpenApiExample("rename", value={"name": "Acme Cashback"}, request_only=True)],
    )
    def patch(self, request, partnership_id):
        self.staff.require("partnerships.change_partnership")
        partnership = self.staff.partnership(partnership_id)
        expected = if_match(request)
        body = validated(PartnershipIn, request.data, partial=True)
        if body.get("status", partnership.status) != partnership.status:
            # Suspending stops every key; lifting a suspension takes what imposing it takes.
            _unscoped_admin(self.staff.token, "changes a partnership's status")
        assign(partnership, body)
        _saved(
            lambda: partnership_save(
                partnership=partnership, actor=self.staff.user, expected_revision=expected
            )
        )
        return ok(PartnershipOut(partnership).data, revision=partnership.revision)

    @extend_schema(
        operation_id="mgmt_partnership_destroy",
        summary="Delete a partnership never used, or suspend it (If-Match: its ETag)",
        description=(
            "Deleted (204) when nothing refers to it but its own API keys, members and staff "
            "tokens; otherwise suspended (200): its keys and user tokens stop at once, and its "
            "triggers, campaigns, users, events, rewards and reports stay. Only an Admin token "
            "for every partnership (no scope)."
        ),
        parameters=[IF_MATCH],
        responses={
            200: OpenApiResponse(
                ok_envelope("MgmtPartnershipSuspended", PartnershipOut),
                description="Suspended (it has history)",
            ),
            204: OpenApiResponse(description="Deleted (it was never used)"),
            **WRITE_ERRORS,
        },
    )
    def delete(self, request, partnership_id):
        _unscoped_admin(self.staff.token, "deletes partnerships")
        self.staff.require("partnerships.delete_partnership")
        partnership = self.staff.partnership(partnership_id)
        expected = if_match(request)
        if partnership_remove(
            partnership=partnership, actor=self.staff.user, expected_revision=expected
        ):
            return Response(status=204)
        return ok(PartnershipOut(partnership).data, revision=partnership.revision)


def _unscoped_admin(token, what: str) -> None:
    if token.partnership_id is not None or token.role != roles.ADMIN:
        raise ApplicationError(
            403,
            ErrorCode.PERMISSION_DENIED,
            f"Only an Admin token for every partnership (no partnership scope) {what}",
        )


# --- API keys --------------------------------------------------------------------------------


class ApiKeyOut(serializers.Serializer):
    prefix = serializers.CharField()
    name = serializers.CharField()
    mode = serializers.CharField()
    status = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)

    def get_status(self, key: ApiKey) -> str:
        if key.revoked_at:
            return "revoked"
        return "active" if key.is_active else "expired"


class ApiKeyCreatedOut(ApiKeyOut):
    api_key = serializers.CharField(help_text="The key itself: shown once, never again")


class ApiKeyIn(StrictSerializer):
    name = serializers.CharField(max_length=100, allow_blank=True, required=False, default="")
    mode = serializers.ChoiceField(ApiKey.Mode.choices, default=ApiKey.Mode.LIVE)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


KEY_CREATED = {
    "prefix": "pk_live_ab12cd34",
    "name": "backend",
    "mode": "live",
    "status": "active",
    "created_at": "2026-02-01T12:00:00Z",
    "expires_at": None,
    "revoked_at": None,
    "last_used_at": None,
    "api_key": "pk_live_ab12cd34.5mYc…",
}


class ApiKeyListApi(MgmtApi):
    @list_schema("api_key", ApiKeyOut, "A partnership's API keys (never their secrets)")
    def get(self, request, partnership_id):
        return self.listing("partnerships.view_apikey", partnership_id, ApiKey.objects, ApiKeyOut)

    @extend_schema(
        operation_id="mgmt_api_key_create",
        summary="Issue an API key (shown once in the answer)",
        request=ApiKeyIn,
        responses={201: ok_envelope("MgmtApiKeyCreated", ApiKeyCreatedOut), **BODY_ERRORS},
        examples=create_examples({"name": "backend", "mode": "live"}, KEY_CREATED),
    )
    def post(self, request, partnership_id):
        self.staff.require("partnerships.add_apikey")
        partnership = self.staff.partnership(partnership_id)
        body = validated(ApiKeyIn, request.data)
        key = ApiKey(partnership=partnership, **body)
        issued = _saved(lambda: api_key_create_audited(api_key=key, actor=self.staff.user))
        return ok({**ApiKeyOut(issued.api_key).data, "api_key": issued.plaintext}, status=201)


def _key(staff, partnership_id, prefix: str) -> ApiKey:
    partnership = staff.partnership(partnership_id)
    return get_object_or_404(ApiKey, partnership=partnership, prefix=prefix)


class ApiKeyDetailApi(MgmtApi):
    @extend_schema(
        operation_id="mgmt_api_key_retrieve",
        summary="One API key",
        responses={200: ok_envelope("MgmtApiKey", ApiKeyOut), **MGMT_AUTH_ERRORS},
    )
    def get(self, request, partnership_id, prefix):
        self.staff.require("partnerships.view_apikey")
        return ok(ApiKeyOut(_key(self.staff, partnership_id, prefix)).data)


class ApiKeyRevokeApi(MgmtApi):
    @extend_schema(
        operation_id="mgmt_api_key_revoke",
        summary="Revoke an API key at once (idempotent; no If-Match: it only stops a key)",
        request=None,
        responses={200: ok_envelope("MgmtApiKeyRevoked", ApiKeyOut), **MGMT_AUTH_ERRORS},
    )
    def post(self, request, partnership_id, prefix):
        self.staff.require("partnerships.change_apikey")
        key = _key(self.staff, partnership_id, prefix)
        key = api_key_revoke_audited(api_key=key, actor=self.staff.user).key
        return ok(ApiKeyOut(key).data)


class RotateIn(StrictSerializer):
    overlap_hours = serializers.IntegerField(
        min_value=0,
        max_value=ROTATION_MAX_OVERLAP_HOURS,
        default=24,
        help_text="How long the old key keeps working (0: it stops now)",
    )


class ApiKeyRotatedOut(serializers.Serializer):
    old = ApiKeyOut(help_text="Works until its expires_at, the end of the overlap")
    new = ApiKeyCreatedOut()


class ApiKeyRotateApi(MgmtApi):
    @extend_schema(
        operation_id="mgmt_api_key_rotate",
        summary="Rotate an API key: a new one (shown once), the old one for the overlap",
        request=RotateIn,
        responses={
            201: ok_envelope("MgmtApiKeyRotated", ApiKeyRotatedOut),
            409: CONFLICT,
            **BODY_ERRORS,
        },
        examples=[OpenApiExample("a day", value={"overlap_hours": 24}, request_only=True)],
    )
    def post(self, request, partnership_id, prefix):
        self.staff.require("partnerships.add_apikey", "partnerships.change_apikey")
        key = _key(self.staff, partnership_id, prefix)
        overlap = validated(RotateIn, request.data)["overlap_hours"]
        rotated = api_key_rotate_audited(api_key=key, overlap_hours=overlap, actor=self.staff.user)
        old, new = rotated.old, rotated.new
        data = {
            "old": ApiKeyOut(old).data,
            "new": {**ApiKeyOut(new.api_key).data, "api_key": new.plaintext},
        }
        return ok(data, status=201)
