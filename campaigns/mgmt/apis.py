"""Campaigns on the management API: the same services as Pilot's campaign page
(``campaign_save`` for a new one, ``lifecycle.campaign_change`` for an edit, the lifecycle's
actions), acting as the token's creator: approval and four eyes hold as in Pilot."""

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers
from rest_framework.response import Response

from config.errors import ApplicationError, ErrorCode, field_error, validation_error
from config.openapi import ok_envelope
from partnerships.mgmt.base import (
    BODY_ERRORS,
    CONFLICT,
    IF_MATCH,
    MGMT_AUTH_ERRORS,
    WRITE_ERRORS,
    MgmtApi,
    StrictSerializer,
    django_errors,
    if_match,
    list_schema,
    ok,
    validated,
)
from triggers.models import Trigger

from .. import lifecycle
from ..lifecycle import Action, LifecycleRefused, Removal
from ..models import Campaign
from ..selectors import campaign_pending_change
from ..services import campaign_save

Money = {"max_digits": 18, "decimal_places": 6, "coerce_to_string": True}
Count = {"min_value": 0, "max_value": 2_147_483_647}


class PendingChangeOut(serializers.Serializer):
    id = serializers.IntegerField()
    changes = serializers.DictField(help_text="field -> [before, after]")
    author = serializers.CharField(source="author.username", allow_null=True, default=None)
    submitted_at = serializers.DateTimeField(allow_null=True)


class CampaignOut(serializers.Serializer):
    id = serializers.UUIDField()
    trigger_id = serializers.IntegerField()
    trigger_name = serializers.CharField(source="trigger.name")
    name = serializers.CharField()
    slug = serializers.CharField()
    description = serializers.CharField()
    status = serializers.CharField()
    display_status = serializers.CharField(help_text="status, or scheduled before its start")
    starts_at = serializers.DateTimeField(allow_null=True)
    ends_at = serializers.DateTimeField(allow_null=True)
    priority = serializers.IntegerField()
    exclusive = serializers.BooleanField()
    condition = serializers.CharField()
    facts = serializers.ListField(child=serializers.DictField())
    reward_type = serializers.CharField()
    reward_value = serializers.DecimalField(**Money, allow_null=True)
    reward_field = serializers.CharField()
    reward_expression = serializers.CharField()
    reward_min = serializers.DecimalField(**Money, allow_null=True)
    reward_max = serializers.DecimalField(**Money, allow_null=True)
    rounding = serializers.CharField()
    budget = serializers.DecimalField(**Money, allow_null=True)
    max_rewards = serializers.IntegerField(allow_null=True)
    max_rewards_per_user = serializers.IntegerField(allow_null=True)
    max_rewards_per_user_per_period = serializers.IntegerField(allow_null=True)
    period = serializers.CharField()
    max_amount_per_user = serializers.DecimalField(**Money, allow_null=True)
    version = serializers.IntegerField(help_text="The approved configuration's number")
    revision = serializers.IntegerField(help_text="Also the ETag; send it back in If-Match")
    pending_change = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_pending_change(self, campaign: Campaign) -> dict | None:
        pending = campaign_pending_change(campaign=campaign)
        return PendingChangeOut(pending).data if pending else None


class CampaignIn(StrictSerializer):
    trigger_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=80)
    description = serializers.CharField(allow_blank=True, max_length=10_000, required=False)
    starts_at = serializers.DateTimeField(allow_null=True, required=False)
    ends_at = serializers.DateTimeField(allow_null=True, required=False)
    priority = serializers.IntegerField(min_value=-(2**31), max_value=2**31 - 1, required=False)
    exclusive = serializers.BooleanField(required=False)
    # Trimmed, as Pilot's form trims them (so errors point at the same columns).
    condition = serializers.CharField(allow_blank=True, max_length=10_000, required=False)
    facts = serializers.ListField(child=serializers.DictField(), max_length=20, required=False)
    reward_type = serializers.ChoiceField(Campaign.RewardType.choices, required=False)
    reward_value = serializers.DecimalField(**Money, allow_null=True, required=False)
    reward_field = serializers.CharField(allow_blank=True, max_length=64, required=False)
    reward_expression = serializers.CharField(allow_blank=True, max_length=10_000, required=False)
    reward_min = serializers.DecimalField(**Money, allow_null=True, required=False)
    reward_max = serializers.DecimalField(**Money, allow_null=True, required=False)
    rounding = serializers.ChoiceField(Campaign.Rounding.choices, required=False)
    budget = serializers.DecimalField(**Money, allow_null=True, required=False)
    max_rewards = serializers.IntegerField(**Count, allow_null=True, required=False)
    max_rewards_per_user = serializers.IntegerField(**Count, allow_null=True, required=False)
    max_rewards_per_user_per_period = serializers.IntegerField(
        **Count, allow_null=True, required=False
    )
    period = serializers.ChoiceField(
        [("", "none"), *Campaign.Period.choices], allow_blank=True, required=False
    )
    max_amount_per_user = serializers.DecimalField(**Money, allow_null=True, required=False)


CAMPAIGN_EXAMPLE_IN = {
    "trigger_id": 12,
    "name": "5% cashback",
    "slug": "cashback",
    "condition": "context.amount >= 20.0 && facts.purchases_30d >= 3",
    "facts": [{"name": "purchases_30d", "aggregate": "count", "window_days": 30}],
    "reward_type": "percentage",
    "reward_value": "5",
    "reward_field": "amount",
    "reward_max": "10",
    "budget": "10000",
    "max_rewards_per_user": 5,
}


def _apply(campaign: Campaign, data: dict, partnership) -> None:
    data = dict(data)
    if "trigger_id" in data:
        trigger = Trigger.objects.filter(partnership=partnership, pk=data.pop("trigger_id"))
        trigger = trigger.first()
        if trigger is None:
            raise validation_error(
                [field_error("trigger_id", "does_not_exist", "No such trigger in this partnership")]
            )
        campaign.trigger = trigger
    for name, value in data.items():
        setattr(campaign, name, value)
    for name in ("description", "condition", "reward_field", "reward_expression", "period"):
        if getattr(campaign, name) is None:
            setattr(campaign, name, "")


def _refused(exc: LifecycleRefused) -> ApplicationError:
    return ApplicationError(409, ErrorCode.ACTION_REFUSED, exc.message)


def _written(write):
    try:
        return write()
    except ValidationError as exc:
        raise django_errors(exc) from exc
    except LifecycleRefused as exc:
        raise _refused(exc) from exc


class CampaignApi(MgmtApi):
    def campaign(self, partnership_id, campaign_id) -> Campaign:
        partnership = self.staff.partnership(partnership_id)
        found = Campaign.objects.select_related("trigger", "partnership")
        return get_object_or_404(found, partnership=partnership, pk=campaign_id)

    def answer(self, campaign_id, **extra) -> Response:
        campaign = Campaign.objects.select_related("trigger").get(pk=campaign_id)
        return ok({**CampaignOut(campaign).data, **extra}, revision=campaign.revision)


class CampaignListApi(CampaignApi):
    @list_schema("campaign", CampaignOut, "A partnership's campaigns")
    def get(self, request, partnership_id):
        rows = Campaign.objects.select_related("trigger")
        return self.listing("campaigns.view_campaign", partnership_id, rows, CampaignOut)

    @extend_schema(
        operation_id="mgmt_campaign_create",
        summary="Create a campaign (a draft: submit it for approval)",
        request=CampaignIn,
        responses={201: ok_envelope("MgmtCampaignCreated", CampaignOut), **BODY_ERRORS},
        examples=[OpenApiExample("cashback", value=CAMPAIGN_EXAMPLE_IN, request_only=True)],
    )
    def post(self, request, partnership_id):
        self.staff.require("campaigns.add_campaign")
        partnership = self.staff.partnership(partnership_id)
        body = validated(CampaignIn, request.data)
        campaign = Campaign(partnership=partnership)
        _apply(campaign, body, partnership)
        _written(lambda: campaign_save(campaign=campaign, author=self.staff.user))
        response = self.answer(campaign.pk)
        response.status_code = 201
        return response


class CampaignDetailApi(CampaignApi):
    @extend_schema(
        operation_id="mgmt_campaign_retrieve",
        summary="One campaign, with the change awaiting approval (its ETag in the header)",
        responses={200: ok_envelope("MgmtCampaign", CampaignOut), **MGMT_AUTH_ERRORS},
    )
    def get(self, request, partnership_id, campaign_id):
        self.staff.require("campaigns.view_campaign")
        campaign = self.campaign(partnership_id, campaign_id)
        return ok(CampaignOut(campaign).data, revision=campaign.revision)

    @extend_schema(
        operation_id="mgmt_campaign_update",
        summary="Change a campaign (If-Match): a draft in place; an approved campaign's rule, "
        "reward, schedule or limits wait for approval (outcome: proposed)",
        parameters=[IF_MATCH],
        request=CampaignIn(partial=True),
        responses={
            200: ok_envelope("MgmtCampaignUpdated", CampaignOut),
            409: CONFLICT,
            **WRITE_ERRORS,
        },
        examples=[OpenApiExample("raise budget", value={"budget": "20000"}, request_only=True)],
    )
    def patch(self, request, partnership_id, campaign_id):
        self.staff.require("campaigns.change_campaign")
        campaign = self.campaign(partnership_id, campaign_id)
        expected = if_match(request)
        body = validated(CampaignIn, request.data, partial=True)
        _apply(campaign, body, campaign.partnership)
        result = _written(
            lambda: lifecycle.campaign_change(
                campaign=campaign, author=self.staff.user, expected_revision=expected
            )
        )
        return self.answer(campaign.pk, outcome=result.outcome.value)

    @extend_schema(
        operation_id="mgmt_campaign_delete",
        summary="Delete a draft; end an approved campaign (its rewards keep it)",
        parameters=[IF_MATCH],
        responses={
            200: OpenApiResponse(
                ok_envelope("MgmtCampaignEnded", CampaignOut), description="Ended"
            ),
            204: OpenApiResponse(description="Deleted (a draft)"),
            409: CONFLICT,
            **WRITE_ERRORS,
        },
    )
    def delete(self, request, partnership_id, campaign_id):
        campaign = self.campaign(partnership_id, campaign_id)
        self.staff.require(
            "campaigns.delete_campaign"
            if campaign.status in (Campaign.Status.DRAFT, Campaign.Status.SUBMITTED)
            else lifecycle.PERMISSION[Action.END]
        )
        expected = if_match(request)
        removal = _written(
            lambda: lifecycle.campaign_remove(
                campaign=campaign, actor=self.staff.user, expected_revision=expected
            )
        )
        if removal == Removal.DELETED:
            return Response(status=204)
        return self.answer(campaign.pk)


class ActionIn(StrictSerializer):
    reason = serializers.CharField(
        max_length=10_000, required=False, default="", help_text="Why (reject needs one)"
    )


class CampaignActionApi(CampaignApi):
    action: Action

    @extend_schema(
        parameters=[IF_MATCH],
        request=ActionIn,
        responses={
            200: ok_envelope("MgmtCampaignAction", CampaignOut),
            409: OpenApiResponse(
                description="Refused by the approval rules (state, four eyes): `action_refused`"
            ),
            **WRITE_ERRORS,
        },
    )
    def post(self, request, partnership_id, campaign_id):
        self.staff.require(lifecycle.PERMISSION[self.action])
        campaign = self.campaign(partnership_id, campaign_id)
        expected = if_match(request)
        body = validated(ActionIn, request.data if request.data else {})
        pending = campaign_pending_change(campaign=campaign)
        # If-Match covers what approval shows: a new proposal bumps the revision under the
        # lock approval takes, so the pending change read here is the one at that revision.
        _written(
            lambda: lifecycle.campaign_act(
                campaign=campaign,
                action=self.action,
                user=self.staff.user,
                reason=body["reason"],
                shown_id=pending.pk if pending else None,
                expected_revision=expected,
            )
        )
        return self.answer(campaign.pk)


def action_view(action: Action):
    return extend_schema_view(
        post=extend_schema(
            operation_id=f"mgmt_campaign_{action.value}",
            summary=f"{action.value.capitalize()} a campaign (If-Match; the approval rules "
            "apply, acting as the token's creator)",
            examples=[
                OpenApiExample(
                    "reject" if action == Action.REJECT else "no body",
                    value={"reason": "The budget is above this quarter's"}
                    if action == Action.REJECT
                    else {},
                    request_only=True,
                )
            ],
        )
    )(type(f"Campaign{action.value.capitalize()}Api", (CampaignActionApi,), {"action": action}))
