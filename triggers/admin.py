from django.contrib import admin
from unfold.admin import ModelAdmin

from partnerships.scoping import PartnershipScopedAdmin

from .models import Trigger, TriggerEvent


@admin.register(Trigger)
class TriggerAdmin(PartnershipScopedAdmin, ModelAdmin):
    list_display = ("name", "partnership", "status", "updated_at")
    list_filter = ("status", "partnership")
    search_fields = ("name", "description")
    readonly_fields = ("created_at", "updated_at")


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
