"""Pilot's dry-run page, under the campaign admin: a sample context and user (or a past event)
in, each candidate campaign's decision out, nothing written (``rewards.simulation.dryrun``).

The campaign page posts its form here ("Dry run these values"): the campaign being edited then
takes part with its unsaved values, which the page carries along as hidden fields. Needs
``campaigns.view_campaign`` (or change); triggers, events and campaigns are those of the operator's
partnerships only.
"""

import uuid

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from unfold.widgets import (
    INPUT_CLASSES,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
)

from campaigns.models import Campaign
from config.json_input import pilot_json_loads
from partnerships.scoping import scope_queryset
from triggers.models import Trigger, TriggerEvent
from triggers.schemas import compile_schema, schema_errors

from .dryrun import dry_run_sample, dry_run_time_error, trigger_event_dry_run

PREFIX = "dryrun"
FROM_BUILDER = "_dryrun_from_builder"  # the campaign page's button
RECENT_EVENTS = 10


class DryRunForm(forms.Form):
    event = forms.UUIDField(
        required=False,
        label="A past event (id)",
        help_text="Judge a real event again as it is stored; leave empty to try a sample.",
        widget=UnfoldAdminTextInputWidget,
    )
    trigger = forms.ModelChoiceField(
        queryset=Trigger.objects.none(), required=False, widget=UnfoldAdminSelectWidget
    )
    external_user_id = forms.CharField(
        required=False,
        max_length=255,
        label="User (external id)",
        help_text="A user you have never sent reads as new: no attributes, history or rewards.",
        widget=UnfoldAdminTextInputWidget,
    )
    context = forms.CharField(
        required=False,
        label="Transaction context (JSON)",
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 5, "class": "font-mono"}),
    )
    mode = forms.ChoiceField(
        choices=TriggerEvent.Mode.choices, initial="live", widget=UnfoldAdminSelectWidget
    )
    occurred_at = forms.DateTimeField(
        required=False,
        help_text="Empty: now. ISO 8601, e.g. 2026-12-01T10:00:00Z.",
        widget=forms.DateTimeInput(attrs={"class": " ".join(INPUT_CLASSES)}),
    )

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, prefix=PREFIX, **kwargs)
        self.user = user
        self.fields["trigger"].queryset = scope_queryset(
            Trigger.objects.order_by("name"), user, "partnership"
        )

    def clean_occurred_at(self):
        if message := dry_run_time_error(self.cleaned_data["occurred_at"]):
            raise forms.ValidationError(message)
        return self.cleaned_data["occurred_at"]

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("event"):
            visible = scope_queryset(TriggerEvent.objects.all(), self.user, "partnership")
            cleaned["stored"] = visible.filter(pk=cleaned["event"]).first()
            if cleaned["stored"] is None:
                self.add_error("event", "No event with this id in your partnerships")
            return cleaned
        for name in ("trigger", "external_user_id", "context"):
            if not cleaned.get(name) and name not in self.errors:
                self.add_error(name, "Needed for a sample (or give a past event's id)")
        if cleaned.get("context"):
            cleaned["context"] = self._context(cleaned["context"], cleaned.get("trigger"))
        return cleaned

    def _context(self, text: str, trigger: Trigger | None) -> dict | None:
        try:
            context = pilot_json_loads(text)
        except ValidationError as exc:
            self.add_error("context", exc)
            return None
        if not isinstance(context, dict):
            self.add_error("context", 'A JSON object, e.g. {"amount": 25}')
            return None
        if trigger is not None:
            errors = schema_errors(compile_schema(trigger.context_schema), context, "context")
            for error in errors:  # the API would refuse it: no worker would ever judge it
                self.add_error("context", f"{error['field']}: {error['message']}")
        return context

    def event_to_judge(self) -> TriggerEvent:
        data = self.cleaned_data
        if data.get("stored"):
            return data["stored"]
        return dry_run_sample(
            trigger=data["trigger"],
            external_user_id=data["external_user_id"],
            context=data["context"],
            mode=data["mode"],
            occurred_at=data.get("occurred_at"),
        )


class CampaignDryRunAdmin:
    """A mixin for the campaign admin (rewards' ``CampaignWithSpendAdmin``): the dry-run page
    and the campaign page's button to it."""

    change_form_after_template = "rewards/simulation/dry_run_button.html"

    def get_urls(self):
        view = self.admin_site.admin_view(self.dry_run_view)
        return [path("dry-run/", view, name="campaigns_campaign_dry_run"), *super().get_urls()]

    def dry_run_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_or_change_permission(request):  # campaigns.view_campaign
            raise PermissionDenied
        edited, carried = self._edited(request)
        sent = request.method == "POST" and f"{PREFIX}-mode" in request.POST
        trigger_id = edited.trigger_id if edited else _int(request.GET.get("trigger"))
        form = DryRunForm(
            request.POST if sent else None, user=request.user, initial={"trigger": trigger_id}
        )
        chosen = _int(str(form["trigger"].value() or "")) or trigger_id
        run = None
        if sent and form.is_valid():
            run = trigger_event_dry_run(event=form.event_to_judge(), edited=edited)
        context = {
            **self.admin_site.each_context(request),
            "title": "Dry run",
            "opts": self.model._meta,
            "form": form,
            "run": run,
            "edited": edited,
            "carried": carried,
            "recent": _recent_events(request, chosen),
        }
        return TemplateResponse(request, "rewards/simulation/dry_run.html", context)

    def _edited(self, request: HttpRequest) -> tuple[Campaign | None, list[tuple[str, str]]]:
        """The campaign being edited, with the values its page posted (not saved), and those
        values to carry along; None when the page was opened on its own."""
        if request.method != "POST" or FROM_BUILDER not in request.POST:
            return None, []
        saved = None
        if request.GET.get("campaign"):
            try:
                campaign_id = uuid.UUID(request.GET["campaign"])
            except ValueError as exc:
                raise Http404("No such campaign") from exc
            visible = scope_queryset(Campaign.objects.all(), request.user, "partnership")
            saved = visible.filter(pk=campaign_id).first()
            if saved is None:
                raise Http404("No such campaign")
        builder = self.get_form(request, saved, change=saved is not None)
        form = builder(request.POST, instance=saved or Campaign())
        if not form.is_valid():
            for field, errors in form.errors.items():
                messages.warning(
                    request,
                    f"{field}: {' '.join(errors)} — the dry run judges the campaign as the "
                    "workers would judge it with the values that could be read.",
                )
        edited = form.instance
        if edited.trigger_id is None or edited.partnership_id is None:
            return None, []
        visible = scope_queryset(Trigger.objects.all(), request.user, "partnership")
        if not visible.filter(pk=edited.trigger_id).exists():
            raise Http404("No such trigger")
        carried = [
            (key, value)
            for key, values in request.POST.lists()
            if not key.startswith(f"{PREFIX}-") and key != "csrfmiddlewaretoken"
            for value in values
        ]
        return edited, carried


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _recent_events(request: HttpRequest, trigger_id) -> list[TriggerEvent]:
    """The latest events of a trigger of the operator's partnerships, to pick one from
    (through the index on the partnership's events by time)."""
    triggers = scope_queryset(Trigger.objects.all(), request.user, "partnership")
    trigger = triggers.filter(pk=trigger_id).first() if trigger_id else None
    if trigger is None:
        return []
    events = TriggerEvent.objects.filter(partnership_id=trigger.partnership_id, trigger=trigger)
    return list(events.select_related("end_user").order_by("-received_at")[:RECENT_EVENTS])
