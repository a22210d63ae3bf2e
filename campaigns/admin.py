from django.contrib import admin
from unfold.admin import ModelAdmin

from partnerships.scoping import PartnershipScopedAdmin
from triggers.models import Trigger, TriggerEvent

from .event_admin import TriggerEventWithDecisionsAdmin
from .lifecycle_admin import CampaignLifecycleAdmin
from .models import Campaign
from .trigger_admin import TriggerWithCampaignsAdmin


@admin.register(Campaign)
class CampaignAdmin(CampaignLifecycleAdmin, PartnershipScopedAdmin, ModelAdmin):
    list_display = ("name", "slug", "trigger", "shown_status", "priority", "exclusive", "version")
    list_filter = ("status", "partnership", "trigger")
    search_fields = ("name", "slug")
    readonly_fields = (
        "id",
        "version",
        "created_at",
        "updated_at",
        *CampaignLifecycleAdmin.lifecycle_readonly_fields,
    )
    prepopulated_fields = {"slug": ("name",)}
    fieldsets = (
        (None, {"fields": ("id", "partnership", "trigger", "name", "slug", "description")}),
        (
            "Lifecycle",
            {
                "fields": (
                    "shown_status",
                    "pending_change",
                    "starts_at",
                    "ends_at",
                    "priority",
                    "exclusive",
                ),
                "description": "Status moves with the buttons above (Submit, Approve, ...). "
                "A change of an approved campaign's rule, reward, schedule, priority or limits "
                "(except lowering a cap) waits for approval; the live campaign is unchanged "
                "until then.",
            },
        ),
        (
            "Rule",
            {
                "fields": ("condition", "facts"),
                "description": "CEL over context.&lt;field&gt;, user, event and facts. "
                "Numbers from the context are doubles (write 20.0). Checked on save.",
            },
        ),
        (
            "Reward",
            {
                "fields": (
                    "reward_type",
                    "reward_value",
                    "reward_field",
                    "reward_expression",
                    "reward_min",
                    "reward_max",
                    "rounding",
                )
            },
        ),
        (
            "Limits",
            {
                "fields": (
                    "budget",
                    "max_rewards",
                    "max_rewards_per_user",
                    "max_rewards_per_user_per_period",
                    "period",
                    "max_amount_per_user",
                )
            },
        ),
        ("Versions", {"fields": ("version", "history", "created_at", "updated_at")}),
    )


# Triggers and their events, as the campaigns that read them see them.
admin.site.unregister(Trigger)
admin.site.register(Trigger, TriggerWithCampaignsAdmin)
admin.site.unregister(TriggerEvent)
admin.site.register(TriggerEvent, TriggerEventWithDecisionsAdmin)
