"""Pilot's backtest pages, on the campaign admin (``BacktestAdminMixin``): a "Backtest" button
on the campaign, a page to choose the window and mode (and edit the rule, reward and limits
without saving them), and each run's page with its progress and results.

Every page needs the campaign view permission (``campaigns.view_campaign``) and shows only the
campaigns and backtests of the operator's partnerships (``partnerships.scoping``), by URL too.
Starting a backtest writes a row and queues a job, so it needs ``campaigns.change_campaign``
(``START_PERMISSION``): Read Only sees past runs, starts none.
"""

import copy
import functools
import uuid

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.forms.models import fields_for_model, model_to_dict
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from unfold.decorators import action
from unfold.widgets import UnfoldAdminIntegerFieldWidget, UnfoldAdminSelectWidget

from campaigns.compiler import CampaignInvalid, compile_campaign
from campaigns.decisions import outcome_label
from campaigns.models import Campaign
from campaigns.selectors import campaign_spec, trigger_schemas
from campaigns.versions import CONFIGURATION, DESCRIPTIVE
from partnerships.scoping import scope_queryset
from triggers.models import TriggerEvent

from .backtests import backtest_start, backtests_of_campaign
from .models import Backtest

START_PERMISSION = "campaigns.change_campaign"

# What an operator may change for a backtest (not saved): all the approval snapshot covers
# (``campaigns.versions.CONFIGURATION``) but what describes the campaign, its trigger and its
# schedule (a backtest replays the trigger's past events whatever the campaign's dates).
EDITABLE = tuple(
    name
    for name in CONFIGURATION
    if name not in (*DESCRIPTIVE, "trigger_id", "starts_at", "ends_at")
)


class BacktestForm(forms.Form):
    days = forms.IntegerField(
        min_value=1,
        initial=30,
        label="Last N days",
        widget=UnfoldAdminIntegerFieldWidget,
        help_text="Events received in the last N days.",
    )
    mode = forms.ChoiceField(
        choices=TriggerEvent.Mode.choices, initial="live", widget=UnfoldAdminSelectWidget
    )

    def __init__(self, data=None, *, campaign: Campaign, formfield_callback) -> None:
        super().__init__(data, initial=model_to_dict(campaign, fields=EDITABLE))
        self.fields["days"].widget.attrs["max"] = settings.BACKTEST_MAX_DAYS
        self.fields.update(
            fields_for_model(Campaign, EDITABLE, formfield_callback=formfield_callback)
        )
        self.saved = campaign
        self.campaign: Campaign | None = None  # the copy with the form's values, once valid

    def clean_days(self) -> int:
        days = self.cleaned_data["days"]
        if days > settings.BACKTEST_MAX_DAYS:
            raise forms.ValidationError(
                f"At most {settings.BACKTEST_MAX_DAYS} days.", code="max_value"
            )
        return days

    def clean(self) -> dict:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        edited = copy.copy(self.saved)  # never saved: the backtest reads it, nothing else
        for name in EDITABLE:
            setattr(edited, name, cleaned.get(name))
        spec = campaign_spec(campaign=edited)
        try:
            compile_campaign(spec, trigger_schemas(partnership_id=spec.partnership_id))
        except CampaignInvalid as exc:
            for field, message in exc.errors.items():
                self.add_error(field if field in self.fields else None, message)
            return cleaned
        self.campaign = edited
        return cleaned


class BacktestAdminMixin:
    """For the campaign ModelAdmin (before it in the bases), with ``"backtest"`` in its
    ``actions_detail``: the button and pages above."""

    @action(description="Backtest", url_path="backtest", permissions=["view"])
    def backtest(self, request: HttpRequest, object_id: str) -> HttpResponse:
        campaign = self._scoped_campaign(request, object_id)
        may_start = request.user.has_perm(START_PERMISSION)
        if request.method == "POST" and not may_start:
            raise PermissionDenied(f"Starting a backtest needs “{START_PERMISSION}”.")
        formfield = functools.partial(self.formfield_for_dbfield, request=request)
        form = BacktestForm(
            request.POST if request.method == "POST" else None,
            campaign=campaign,
            formfield_callback=formfield,
        )
        if request.method == "POST" and form.is_valid():
            run = backtest_start(
                campaign=form.campaign,
                days=form.cleaned_data["days"],
                mode=form.cleaned_data["mode"],
                created_by=request.user,
            )
            return redirect("admin:campaigns_campaign_backtest_result", run.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Backtest: {campaign.name}",
            "campaign": campaign,
            "form": form,
            "may_start": may_start,
            "start_permission": START_PERMISSION,
            "past": [_run_row(run) for run in backtests_of_campaign(campaign=campaign)],
            "max_seconds": settings.BACKTEST_MAX_SECONDS,
        }
        status = 400 if form.is_bound else 200
        return TemplateResponse(request, "rewards/simulation/backtest.html", context, status=status)

    def get_fieldsets(self, request: HttpRequest, obj: Campaign | None = None):
        """A saved campaign's page lists its past backtests (read-only: no formset to post)."""
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        return [*fieldsets, ("Backtests", {"fields": ("past_backtests",)})]

    def get_readonly_fields(self, request: HttpRequest, obj: Campaign | None = None):
        fields = super().get_readonly_fields(request, obj)
        return fields if obj is None else (*fields, "past_backtests")

    @admin.display(description="Past backtests")
    def past_backtests(self, campaign: Campaign) -> str:
        past = [_run_row(run) for run in backtests_of_campaign(campaign=campaign)]
        url = reverse("admin:campaigns_campaign_backtest", args=[campaign.pk])
        return render_to_string("rewards/simulation/_past.html", {"past": past, "new_url": url})

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "backtests/<uuid:backtest_id>/",
                view(self._run_view),
                name="campaigns_campaign_backtest_result",
            ),
            path(
                "backtests/<uuid:backtest_id>/status/",
                view(self._status_view),
                name="campaigns_campaign_backtest_status",
            ),
            *super().get_urls(),
        ]

    def _run_view(self, request: HttpRequest, backtest_id: uuid.UUID) -> HttpResponse:
        run = self._scoped_run(request, backtest_id)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Backtest: {run.campaign.name}",
            "run": _run_row(run),
            "campaign": run.campaign,
            "results": _results_view(run),
        }
        return TemplateResponse(request, "rewards/simulation/backtest_result.html", context)

    def _status_view(self, request: HttpRequest, backtest_id: uuid.UUID) -> JsonResponse:
        """What the progress bar polls."""
        run = self._scoped_run(request, backtest_id)
        return JsonResponse(
            {
                "status": run.status,
                "finished": run.finished,
                "events_done": run.events_done,
                "events_total": run.events_total,
                "percent": _percent(run),
            }
        )

    def _scoped_campaign(self, request: HttpRequest, object_id: str) -> Campaign:
        try:
            pk = uuid.UUID(str(object_id))
        except ValueError:
            raise Http404("No such campaign") from None
        campaigns = scope_queryset(Campaign.objects.all(), request.user, "partnership")
        campaign = campaigns.select_related("partnership", "trigger").filter(pk=pk).first()
        if campaign is None:
            raise Http404("No such campaign among your partnerships")
        return campaign

    def _scoped_run(self, request: HttpRequest, backtest_id: uuid.UUID) -> Backtest:
        if not self.has_view_permission(request):
            raise _forbidden()
        runs = scope_queryset(Backtest.objects.all(), request.user, "campaign__partnership")
        run = runs.select_related("campaign", "created_by").filter(pk=backtest_id).first()
        if run is None:
            raise Http404("No such backtest among your partnerships")
        return run


def _forbidden() -> PermissionDenied:
    return PermissionDenied("You may not view campaigns (campaigns.view_campaign).")


def _percent(run: Backtest) -> int:
    if run.status == Backtest.Status.DONE:
        return 100
    if not run.events_total:
        return 0
    return min(100, run.events_done * 100 // run.events_total)


def _run_row(run: Backtest) -> dict:
    results = run.results or {}
    mine = results.get("campaign", {})
    return {
        "id": run.pk,
        "url": reverse("admin:campaigns_campaign_backtest_result", args=[run.pk]),
        "status_url": reverse("admin:campaigns_campaign_backtest_status", args=[run.pk]),
        "status": run.status,
        "status_label": run.get_status_display(),
        "finished": run.finished,
        "mode": run.mode,
        "days": run.days,
        "window_start": run.window_start,
        "window_end": run.window_end,
        "created_at": run.created_at,
        "created_by": run.created_by,
        "events_done": run.events_done,
        "events_total": run.events_total,
        "percent": _percent(run),
        "error": run.error,
        "rewards": mine.get("rewards"),
        "amount": mine.get("amount"),
        "unit": results.get("unit", ""),
    }


def _results_view(run: Backtest) -> dict | None:
    results = run.results
    if not results:
        return None
    mine = results["campaign"]
    return {
        **results,
        "limit_bites": [
            (code, outcome_label(code), count) for code, count in mine["limit_bites"].items()
        ],
        "outcomes": [(code, outcome_label(code), n) for code, n in mine["outcomes"].items()],
        "others": [
            {**other, "outcomes": [(outcome_label(c), n) for c, n in other["outcomes"].items()]}
            for other in results["others"]
        ],
    }
