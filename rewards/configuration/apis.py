"""Configuration as code over the management API: export, plan and apply (``If-Match`` with the
plan's fingerprint). Staff tokens only (``partnerships.mgmt``); the services are the commands'."""

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers

from config.errors import ApplicationError, ErrorCode
from config.openapi import error, ok_envelope
from partnerships.mgmt.base import BODY_ERRORS, MGMT_AUTH_ERRORS, MgmtApi, ok

from .document import SCHEMA, document_parse
from .plan import Action, Kind, Outcome
from .services import configuration_apply, configuration_plan
from .state import configuration_state

# What reading a configuration needs: seeing each kind of object in it.
VIEW = (
    "partnerships.view_partnership",
    "triggers.view_trigger",
    "campaigns.view_campaign",
    "rewards.view_webhookendpoint",
)
MEDIA_TYPES = ("application/json", "application/yaml", "application/x-yaml", "text/yaml")


@extend_schema_field(SCHEMA)
class DocumentField(serializers.JSONField):
    """The configuration document (format version 1; docs/api.md)."""


class ConfigurationOut(serializers.Serializer):
    fingerprint = serializers.CharField(
        help_text="The configuration's (also the ETag); a plan's also covers its document"
    )
    document = DocumentField()


class ChangeOut(serializers.Serializer):
    kind = serializers.ChoiceField([kind.value for kind in Kind])
    key = serializers.CharField(help_text="Trigger name, campaign slug, or 'url (modes)'")
    action = serializers.ChoiceField([action.value for action in Action])
    outcome = serializers.ChoiceField([outcome.value for outcome in Outcome])
    fields = serializers.DictField(
        child=serializers.ListField(), help_text="field -> [before, after]"
    )
    status = serializers.CharField(required=False, help_text="A campaign's status before")


class PlanOut(serializers.Serializer):
    fingerprint = serializers.CharField(
        help_text="Of the configuration and the document: send it as If-Match to apply them"
    )
    summary = serializers.DictField(child=serializers.IntegerField())
    needs_approval = serializers.ListField(
        child=serializers.CharField(), help_text="Campaigns whose change would await approval"
    )
    changes = ChangeOut(many=True)


class AppliedOut(PlanOut):
    fingerprint = serializers.CharField(help_text="The configuration's fingerprint now")
    fingerprint_before = serializers.CharField()


DOCUMENT_EXAMPLE = {
    "format_version": 1,
    "settings": {"time_zone": "Europe/Paris"},
    "triggers": [
        {
            "name": "transaction_completed",
            "description": "A card purchase",
            "status": "active",
            "context_schema": {
                "type": "object",
                "properties": {"amount": {"type": "number"}},
                "required": ["amount"],
            },
        }
    ],
    "campaigns": [
        {
            "slug": "cashback",
            "name": "5% cashback",
            "trigger": "transaction_completed",
            "condition": "context.amount >= 20.0",
            "reward_type": "percentage",
            "reward_value": "5",
            "reward_field": "amount",
            "reward_max": "10",
            "budget": "5000",
        }
    ],
    "webhooks": [
        {
            "url": "https://partner.example/webhooks/rewards",
            "modes": "live",
            "events": ["reward.issued", "reward.reversed"],
            "active": True,
        }
    ],
}
FINGERPRINT = "4f1c0d6e2b8a9f7c3e5d1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d"
PLAN_EXAMPLE = {
    "fingerprint": FINGERPRINT,
    "summary": {"create": 0, "change": 2, "delete": 0},
    "needs_approval": ["cashback"],
    "changes": [
        {
            "kind": "settings",
            "key": "settings",
            "action": "change",
            "outcome": "applied",
            "fields": {"time_zone": ["UTC", "Europe/Paris"]},
        },
        {
            "kind": "campaign",
            "key": "cashback",
            "action": "change",
            "outcome": "awaits_approval",
            "status": "active",
            "fields": {"budget": ["1000", "5000"]},
        },
    ],
}
DOCUMENT_BODY = {
    "application/json": SCHEMA,
    "application/yaml": {"type": "string", "description": "The same document in YAML"},
}
DOCUMENT_ERRORS = {
    **BODY_ERRORS,
    400: error("Not YAML or JSON (line and column)", ErrorCode.MALFORMED_DOCUMENT),
    415: error("Send application/json or application/yaml", ErrorCode.UNSUPPORTED_MEDIA_TYPE),
    422: error("Invalid objects or fields (each in `errors`)", ErrorCode.VALIDATION_ERROR),
}
IF_MATCH_FINGERPRINT = OpenApiParameter(
    "If-Match",
    {"type": "string", "maxLength": 200},
    OpenApiParameter.HEADER,
    required=True,
    description='The plan\'s fingerprint (its ETag), e.g. `"4f1c…0d"`: refused with 412 '
    "`configuration_changed` if the configuration changed since or the document is another; "
    "`*` applies whatever it is "
    "now (force). 428 `precondition_required` without it.",
)


def _fingerprint_matched(request) -> tuple[str | None, bool]:
    """(the expected fingerprint, force) from If-Match."""
    header = (request.META.get("HTTP_IF_MATCH") or "").strip()
    if not header:
        raise ApplicationError(428, ErrorCode.PRECONDITION_REQUIRED)
    if header == "*":
        return None, True
    return header.removeprefix("W/").strip('"'), False


class ConfigurationMixin:
    def document(self, request):
        media = (request.content_type or "").split(";")[0].strip().lower()
        if media not in MEDIA_TYPES:
            raise ApplicationError(
                415,
                ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                "Send the document as application/json or application/yaml",
            )
        return document_parse(request.body)


def _tagged(data: dict, fingerprint: str):
    """``{"code": "ok", "data": ...}`` with the fingerprint as the ETag."""
    response = ok(data)
    response["ETag"] = f'"{fingerprint}"'
    return response


class ConfigurationExportApi(MgmtApi):
    @extend_schema(
        operation_id="mgmt_configuration_export",
        summary="A partnership's configuration as one document (no keys or secrets)",
        responses={200: ok_envelope("MgmtConfiguration", ConfigurationOut), **MGMT_AUTH_ERRORS},
        examples=[
            OpenApiExample(
                "configuration",
                value={
                    "code": "ok",
                    "data": {"fingerprint": FINGERPRINT, "document": DOCUMENT_EXAMPLE},
                },
                response_only=True,
            )
        ],
        tags=["management"],
    )
    def get(self, request, partnership_id):
        self.staff.require(*VIEW)
        state = configuration_state(partnership=self.staff.partnership(partnership_id))
        data = {"fingerprint": state.fingerprint, "document": state.document.as_dict()}
        return _tagged(data, state.fingerprint)


class ConfigurationPlanApi(ConfigurationMixin, MgmtApi):
    @extend_schema(
        operation_id="mgmt_configuration_plan",
        summary="What applying a document would do (writes nothing)",
        description="Each object created, changed (fields before -> after) or deleted, what "
        "it does (`outcome`), the campaigns whose change would await approval, and the "
        "fingerprint to send back as If-Match. Errors are those an apply would meet, the "
        "token's permissions included.",
        request=DOCUMENT_BODY,
        responses={200: ok_envelope("MgmtConfigurationPlan", PlanOut), **DOCUMENT_ERRORS},
        examples=[
            OpenApiExample("plan", value=DOCUMENT_EXAMPLE, request_only=True),
            OpenApiExample("plan", value={"code": "ok", "data": PLAN_EXAMPLE}, response_only=True),
        ],
        tags=["management"],
    )
    def post(self, request, partnership_id):
        self.staff.require(*VIEW)
        partnership = self.staff.partnership(partnership_id)
        plan = configuration_plan(
            partnership=partnership,
            document=self.document(request),
            actor=self.staff.user,
            may=self.staff.may,
        )
        return _tagged(plan.as_dict(), plan.fingerprint)


class ConfigurationApplyApi(ConfigurationMixin, MgmtApi):
    @extend_schema(
        operation_id="mgmt_configuration_apply",
        summary="Apply a document atomically (If-Match: the plan's fingerprint)",
        description="In one transaction: if any object fails, nothing is applied (422 with "
        "every problem). Rule, reward and raised limit changes of approved campaigns await "
        "approval, as edits in Pilot do.",
        parameters=[IF_MATCH_FINGERPRINT],
        request=DOCUMENT_BODY,
        responses={
            200: ok_envelope("MgmtConfigurationApplied", AppliedOut),
            **DOCUMENT_ERRORS,
            409: error(
                "Rows written meanwhile conflict with it (nothing applied)",
                ErrorCode.CONFIGURATION_CHANGED,
            ),
            412: error("The configuration changed since the plan", ErrorCode.CONFIGURATION_CHANGED),
            428: error("If-Match is required", ErrorCode.PRECONDITION_REQUIRED),
        },
        examples=[
            OpenApiExample("apply", value=DOCUMENT_EXAMPLE, request_only=True),
            OpenApiExample(
                "apply",
                value={
                    "code": "ok",
                    "data": {
                        **PLAN_EXAMPLE,
                        "fingerprint_before": FINGERPRINT,
                        "fingerprint": "9a8b…",
                    },
                },
                response_only=True,
            ),
        ],
        tags=["management"],
    )
    def post(self, request, partnership_id):
        self.staff.require(*VIEW)
        partnership = self.staff.partnership(partnership_id)
        expect, force = _fingerprint_matched(request)
        applied = configuration_apply(
            partnership=partnership,
            document=self.document(request),
            actor=self.staff.user,
            expect=expect,
            force=force,
            may=self.staff.may,
        )
        return _tagged(applied.as_dict(), applied.fingerprint)
