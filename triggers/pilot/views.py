"""The trigger page's tools in Pilot: the example and its curl, sending a test event and
seeing what it got, checking a schema before saving it. Each is a view of ``TriggerAdmin``
(the admin site's login; rows scoped to the operator's partnerships by its queryset)."""

import json

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse

from config.errors import ApplicationError

from ..models import Trigger, TriggerEvent
from ..schema_editor import NotExpressible, schema_to_rows
from ..services.test_events import NO_TEST_MODE, test_mode_key, trigger_event_send_test
from .examples import EXAMPLE_USER, curl_command, example_body, example_context
from .forms import TestEventForm

SEND_TEST_PERMISSION = "triggers.send_test_event"


def trigger_tools(request: HttpRequest, trigger: Trigger) -> dict:
    """What the trigger page shows under the form: the example payload and its curl."""
    example = example_context(trigger.context_schema)
    url = request.build_absolute_uri(reverse("trigger-event-create", args=[trigger.partnership_id]))
    body = example_body(trigger_name=trigger.name, context=example.context)
    return {
        "example": example,
        "example_json": json.dumps(example.context, indent=2),
        "curl": curl_command(url=url, body=body),
        "can_send_test": request.user.has_perm(SEND_TEST_PERMISSION),
        "send_test_url": reverse("admin:triggers_trigger_send_test", args=[trigger.pk]),
    }


def _trigger(model_admin, request: HttpRequest, object_id: str) -> Trigger:
    trigger = model_admin.get_object(request, object_id)
    if trigger is None:  # none, or another partnership's
        raise Http404("No such trigger")
    return trigger


def send_test_event(model_admin, request: HttpRequest, object_id: str) -> HttpResponse:
    trigger = _trigger(model_admin, request, object_id)
    if not request.user.has_perm(SEND_TEST_PERMISSION):
        raise PermissionDenied
    if request.method == "POST":
        form = TestEventForm(request.POST)
        if form.is_valid():
            try:
                result = trigger_event_send_test(
                    trigger=trigger,
                    operator=request.user,
                    external_user_id=form.cleaned_data["external_user_id"],
                    context=form.cleaned_data["transaction_context"],
                )
            except ApplicationError as exc:
                form.add_ingest_errors(exc.errors or [], exc.message)
            else:
                return redirect("admin:triggers_trigger_event", trigger.pk, result.trigger_event_id)
    else:
        example = example_context(trigger.context_schema)
        form = TestEventForm(
            initial={
                "external_user_id": EXAMPLE_USER,
                "transaction_context": json.dumps(example.context, indent=2),
            }
        )
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Send a test event: {trigger.name}",
        "opts": model_admin.opts,
        "original": trigger,
        "form": form,
        "no_test_mode": None
        if test_mode_key(partnership_id=trigger.partnership_id)
        else NO_TEST_MODE,
    }
    return TemplateResponse(request, "triggers/pilot/send_test_event.html", context)


def test_event_result(
    model_admin, request: HttpRequest, object_id: str, event_id: str
) -> HttpResponse:
    """A test event sent from this trigger: its status, and its decisions once evaluated."""
    trigger = _trigger(model_admin, request, object_id)
    if not model_admin.has_view_or_change_permission(request, trigger):
        raise PermissionDenied
    event = (
        TriggerEvent.objects.select_related("end_user")
        .filter(trigger=trigger, mode=TriggerEvent.Mode.TEST, pk=event_id)
        .first()
    )
    if event is None:
        raise Http404("No such test event of this trigger")
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Test event: {trigger.name}",
        "opts": model_admin.opts,
        "original": trigger,
        "event": event,
        "context_json": json.dumps(event.context, indent=2),
        "evaluated": event.status in (TriggerEvent.Status.PROCESSED, TriggerEvent.Status.FAILED),
        "decisions": model_admin.test_event_decisions(event),
        "send_test_url": reverse("admin:triggers_trigger_send_test", args=[trigger.pk]),
    }
    return TemplateResponse(request, "triggers/pilot/test_event_result.html", context)


def schema_check(model_admin, request: HttpRequest, object_id: str | None = None) -> HttpResponse:
    """The schema the posted form would save (rows or raw), and its problems, not saved."""
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "POST"})
    trigger = _trigger(model_admin, request, object_id) if object_id else None
    if not (
        model_admin.has_change_permission(request, trigger)
        if trigger
        else model_admin.has_add_permission(request)
    ):
        raise PermissionDenied
    form = model_admin.get_form(request, trigger)(request.POST, instance=trigger)
    form.is_valid()
    row_errors = [
        {"row": index + 1, "field": field, "message": message}
        for index, errors in enumerate(form.rows.errors)
        for field, messages in errors.items()
        for message in messages
    ]
    schema = getattr(form, "schema", None)
    return JsonResponse(
        {
            "schema": json.dumps(schema, indent=2) if schema is not None else None,
            **_as_rows(schema),
            "errors": [str(error) for error in form.errors.get(form.schema_field, [])],
            "row_errors": row_errors,
            **model_admin.schema_check_extra(form, trigger),
        }
    )


def _as_rows(schema) -> dict:
    """The schema as the editor's rows ("rows"), or why it cannot be ("raw_note")."""
    if schema is None:
        return {"rows": None, "raw_note": ""}
    try:
        return {"rows": [row.as_dict() for row in schema_to_rows(schema)], "raw_note": ""}
    except NotExpressible as exc:
        return {"rows": None, "raw_note": str(exc)}
