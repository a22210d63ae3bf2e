from django.contrib import admin
from django.urls import path
from unfold.admin import ModelAdmin

from partnerships.scoping import PartnershipScopedAdmin

from .models import Trigger, TriggerEvent
from .pilot import views
from .pilot.forms import TriggerSchemaForm


@admin.register(Trigger)
class TriggerAdmin(PartnershipScopedAdmin, ModelAdmin):
    """The trigger page: the schema's field editor, the example payload and its curl, and
    "Send a test event" (``triggers/pilot/``)."""

    form = TriggerSchemaForm
    list_display = ("name", "partnership", "status", "updated_at")
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


@admin.register(TriggerEvent)
class TriggerEventAdmin(PartnershipScopedAdmin, ModelAdmin):
    list_display = ("id", "trigger", "end_user", "status", "mode", "occurred_at", "received_at")
    list_filter = ("status", "mode", "partnership", "trigger")
    search_fields = ("id", "end_user__external_user_id", "idempotency_key")
    date_hierarchy = "received_at"
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

    def has_add_permission(self, request) -> bool:
        return False
