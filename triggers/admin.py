from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import path
from unfold.admin import ModelAdmin

from config.errors import ApplicationError
from partnerships.pilot_actions import ObjectAction, ObjectActionsAdmin
from partnerships.pilot_filters import DateTimeRangeFilter, ExternalUserFilter
from partnerships.pilot_revision import RevisionAdminMixin
from partnerships.scoping import PartnershipScopedAdmin, ScopedRelatedFieldListFilter
from partnerships.selectors import partnerships_for_operator

from .models import Trigger, TriggerEvent
from .pilot import views
from .pilot.forms import TriggerSchemaForm
from .selectors import trigger_event_search
from .services.configuration import trigger_save
from .services.processing import trigger_event_retry

RETRY_PERMISSION = "triggers.change_triggerevent"


@admin.register(Trigger)
class TriggerAdmin(RevisionAdminMixin, PartnershipScopedAdmin, ModelAdmin):
    """The trigger page: the schema's field editor, the example payload and its curl, and
    "Send a test event" (``triggers/pilot/``)."""

    form = TriggerSchemaForm
    list_display = ("name", "partnership", "status", "client_sendable", "updated_at")
    list_filter = ("status", "partnership")
    search_fields = ("name", "description")
    readonly_fields = ("created_at", "updated_at")
    change_form_outer_after_template = "triggers/pilot/trigger_tools.html"

    def get_urls(self) -> list:
        routes = [
            ("add/schema-check/", views.schema_check, "schema_check_add"),
            ("<path:object_id>/schema-check/", views.schema_check, "schema_check"),
            ("<path:object_id>/send-test-event/", views.send_test_event, "send_test"),
            ("<path:object_id>/test-events/<uuid:event_id>/", views.test_event_result, "event"),
        ]
        return [
            path(route, self._admin_view(view), name=f"triggers_trigger_{name}")
            for route, view, name in routes
        ] + super().get_urls()

    def _admin_view(self, view):
        def run(request, *args, **kwargs):
            return view(self, request, *args, **kwargs)

        return self.admin_site.admin_view(run)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context.update(views.trigger_tools(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def test_event_decisions(self, event: TriggerEvent) -> list:
        """The decisions shown for a test event: words come from campaigns (its admin says)."""
        return []

    def schema_check_extra(self, form, trigger: Trigger | None) -> dict:
        """More for the schema check to say (campaigns adds the campaigns it would break)."""
        return {}

    def change_check(self, trigger: Trigger) -> dict[str, list[str]]:
        """What refuses a change beyond the model's rules (campaigns adds its own)."""
        return {}

    def save_model(self, request, obj: Trigger, form, change: bool) -> None:
        trigger_save(
            trigger=obj,
            actor=request.user,
            expected_revision=form.loaded,
            check=self.change_check,
        )


class RetryForm(forms.Form):
    """Retrying asks for nothing but a confirmation."""


@admin.register(TriggerEvent)
class TriggerEventAdmin(ObjectActionsAdmin, PartnershipScopedAdmin, ModelAdmin):
    """Events, for support: found by exact values on indexed columns (``trigger_event_search``,
    the filters), scoped to the operator's partnerships; a failed one can be retried."""

    list_display = ("id", "trigger", "end_user", "status", "mode", "occurred_at", "received_at")
    list_filter = (
        "status",
        "mode",
        ("partnership", ScopedRelatedFieldListFilter),
        ("trigger", ScopedRelatedFieldListFilter),
        ("received_at", DateTimeRangeFilter),
        ExternalUserFilter,
    )
    list_filter_submit = True
    # Only so that the search box shows: get_search_results replaces Django's icontains.
    search_fields = ("id",)
    search_help_text = "Exact: an event id, a user's external id or id, or an idempotency key."
    ordering = ("-received_at",)
    show_full_result_count = False  # a second count of the whole table, on every page
    list_select_related = ("trigger", "end_user")
    readonly_fields = [field.name for field in TriggerEvent._meta.fields]
    fieldsets = (
        (None, {"fields": ("id", "partnership", "trigger", "end_user", "mode", "status")}),
        ("Payload", {"fields": ("context", "tags", "idempotency_key", "request_hash")}),
        (
            "Times",
            {
                "fields": (
                    "occurred_at",
                    "received_at",
                    "deliver_at",
                    "last_attempt_at",
                    "processed_at",
                )
            },
        ),
        ("Evaluation", {"fields": ("decisions", "attempts", "error")}),
    )
    object_action_urls = (("retry", "retry_view"),)

    def has_add_permission(self, request) -> bool:
        return False

    def get_search_results(self, request, queryset, search_term):
        allowed = list(partnerships_for_operator(user=request.user).values_list("pk", flat=True))
        found = trigger_event_search(events=queryset, term=search_term, partnership_ids=allowed)
        return found, False

    def object_actions(self, request, obj: TriggerEvent) -> list[ObjectAction]:
        if obj.status != TriggerEvent.Status.FAILED or not request.user.has_perm(RETRY_PERMISSION):
            return []
        return [ObjectAction("Retry", self.action_url(obj, "retry"), "replay")]

    def retry_view(self, request, object_id: str):
        event = self.object_for_action(request, object_id, RETRY_PERMISSION)
        form = RetryForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            try:
                trigger_event_retry(event=event, operator=request.user)
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(
                    request,
                    "The event is back in the queue: the workers evaluate it again shortly.",
                )
                return HttpResponseRedirect(self.change_url(event))
        elif event.status != TriggerEvent.Status.FAILED:
            messages.error(
                request,
                f"The event is {event.get_status_display().lower()}; "
                "only failed events can be retried",
            )
        return self.action_page(
            request,
            event,
            title=f"Retry event {event.pk}",
            form=form,
            intro="The event goes back in the queue and is evaluated again, alone; its "
            "attempts so far are kept.",
            submit="Retry",
            details=[
                ("Status", event.get_status_display()),
                ("Attempts", str(event.attempts)),
                ("Error", event.error or "—"),
            ],
            status=409 if form.errors else 200,
        )
