"""Dry runs (synchronous: one event judged, nothing written) and backtests (queued, read back
for their progress and results) on the management API: ``rewards.simulation``'s services."""

import copy

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers

from campaigns.compiler import CampaignInvalid
from campaigns.models import Campaign
from config.errors import field_error, validation_error
from config.openapi import ok_envelope
from partnerships.mgmt.base import (
    BODY_ERRORS,
    MGMT_AUTH_ERRORS,
    MgmtApi,
    StrictSerializer,
    ok,
    validated,
)
from triggers.models import Trigger, TriggerEvent
from triggers.schemas import compile_schema, schema_errors

from ..simulation.backtests import backtest_start
from ..simulation.dryrun import dry_run_sample, trigger_event_dry_run
from ..simulation.models import Backtest


class DryRunIn(StrictSerializer):
    trigger_event_id = serializers.UUIDField(
        required=False, help_text="Judge a stored event again (or send a sample below)"
    )
    trigger_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False)
    external_user_id = serializers.CharField(max_length=255, required=False)
    context = serializers.DictField(required=False)
    mode = serializers.ChoiceField(TriggerEvent.Mode.choices, default=TriggerEvent.Mode.LIVE)
    occurred_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="When the sample occurred: from 2000 to 2200 (campaigns' dates); empty: now",
    )


class LimitOut(serializers.Serializer):
    name = serializers.CharField()
    limit = serializers.CharField()
    used = serializers.CharField()


class DecisionOut(serializers.Serializer):
    campaign_id = serializers.UUIDField()
    slug = serializers.CharField()
    name = serializers.CharField()
    outcome = serializers.CharField()
    label = serializers.CharField()
    message = serializers.CharField()
    amount = serializers.DecimalField(18, 6, allow_null=True)
    computed = serializers.DecimalField(18, 6, allow_null=True)
    facts = serializers.DictField()
    limits = LimitOut(many=True)


class DryRunOut(serializers.Serializer):
    sample = serializers.BooleanField()
    user_known = serializers.BooleanField()
    unit = serializers.CharField()
    decisions = DecisionOut(many=True)


class DryRunApi(MgmtApi):
    @extend_schema(
        operation_id="mgmt_dry_run_create",
        summary="Dry run: every active campaign's decision on an event, nothing written",
        request=DryRunIn,
        responses={200: ok_envelope("MgmtDryRun", DryRunOut), **BODY_ERRORS},
        examples=[
            OpenApiExample(
                "sample",
                value={
                    "trigger_id": 12,
                    "external_user_id": "user-42",
                    "context": {"amount": 42.5, "currency": "USD"},
                },
                request_only=True,
            ),
            OpenApiExample(
                "stored event",
                value={"trigger_event_id": "9b2f8c4e-2c1d-4b5a-8e7f-1a2b3c4d5e6f"},
                request_only=True,
            ),
        ],
    )
    def post(self, request, partnership_id):
        self.staff.require("campaigns.view_campaign")
        partnership = self.staff.partnership(partnership_id)
        body = validated(DryRunIn, request.data)
        event = _event(partnership, body)
        return ok(DryRunOut(trigger_event_dry_run(event=event)).data)


def _event(partnership, data: dict) -> TriggerEvent:
    if data.get("trigger_event_id"):
        event = TriggerEvent.objects.filter(
            partnership=partnership, pk=data["trigger_event_id"]
        ).first()
        if event is None:
            raise validation_error(
                [field_error("trigger_event_id", "does_not_exist", "No such event here")]
            )
        return event
    missing = [
        field_error(name, "required", "Needed for a sample (or give trigger_event_id)")
        for name in ("trigger_id", "external_user_id", "context")
        if name not in data
    ]
    if missing:
        raise validation_error(missing)
    trigger = Trigger.objects.filter(partnership=partnership, pk=data["trigger_id"]).first()
    if trigger is None:
        raise validation_error(
            [field_error("trigger_id", "does_not_exist", "No such trigger in this partnership")]
        )
    # The API would refuse such a context: no worker would ever judge it.
    errors = schema_errors(compile_schema(trigger.context_schema), data["context"], "context")
    if errors:
        raise validation_error(errors)
    return dry_run_sample(
        trigger=trigger,
        external_user_id=data["external_user_id"],
        context=data["context"],
        mode=data["mode"],
        occurred_at=data["occurred_at"],
    )


class BacktestIn(StrictSerializer):
    days = serializers.IntegerField(min_value=1, max_value=settings.BACKTEST_MAX_DAYS)
    mode = serializers.ChoiceField(TriggerEvent.Mode.choices, default=TriggerEvent.Mode.LIVE)


class BacktestOut(serializers.Serializer):
    id = serializers.UUIDField()
    campaign_id = serializers.UUIDField()
    status = serializers.CharField(help_text="queued, running, done, failed or timed_out")
    mode = serializers.CharField()
    days = serializers.IntegerField()
    window_start = serializers.DateTimeField()
    window_end = serializers.DateTimeField()
    events_done = serializers.IntegerField()
    events_total = serializers.IntegerField(allow_null=True)
    results = serializers.DictField(help_text="Once finished: the campaign's and the others'")
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


def _campaign(staff, partnership_id, campaign_id) -> Campaign:
    partnership = staff.partnership(partnership_id)
    return get_object_or_404(Campaign, partnership=partnership, pk=campaign_id)


class BacktestListApi(MgmtApi):
    @extend_schema(
        operation_id="mgmt_backtest_create",
        summary="Start a backtest of a campaign as saved (queued; read it back for results)",
        request=BacktestIn,
        responses={202: ok_envelope("MgmtBacktestQueued", BacktestOut), **BODY_ERRORS},
        examples=[OpenApiExample("30 days", value={"days": 30, "mode": "live"}, request_only=True)],
    )
    def post(self, request, partnership_id, campaign_id):
        self.staff.require("campaigns.change_campaign")  # as Pilot's backtest button
        campaign = _campaign(self.staff, partnership_id, campaign_id)
        body = validated(BacktestIn, request.data)
        try:
            run = backtest_start(campaign=copy.copy(campaign), created_by=self.staff.user, **body)
        except CampaignInvalid as exc:
            raise validation_error(
                [field_error(name, "invalid", message) for name, message in exc.errors.items()],
                "The campaign does not compile: it cannot be backtested",
            ) from exc
        return ok(BacktestOut(run).data, status=202)


class BacktestDetailApi(MgmtApi):
    @extend_schema(
        operation_id="mgmt_backtest_retrieve",
        summary="A backtest's status, progress and results",
        responses={200: ok_envelope("MgmtBacktest", BacktestOut), **MGMT_AUTH_ERRORS},
    )
    def get(self, request, partnership_id, campaign_id, backtest_id):
        self.staff.require("campaigns.view_campaign")
        campaign = _campaign(self.staff, partnership_id, campaign_id)
        run = get_object_or_404(Backtest, campaign=campaign, pk=backtest_id)
        return ok(BacktestOut(run).data)
