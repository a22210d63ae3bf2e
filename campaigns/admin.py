from django.contrib import admin
from unfold.admin import ModelAdmin, TabularInline

from triggers.models import Trigger, TriggerEvent

from .event_admin import TriggerEventWithDecisionsAdmin
from .models import Campaign, CampaignVersion
from .pilot.admin import CampaignBuilderAdmin
from .services import campaign_save
from .trigger_admin import TriggerWithCampaignsAdmin


class CampaignVersionInline(TabularInline):
    model = CampaignVersion
    fields = ("version", "snapshot", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-version",)

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Campaign)
class CampaignAdmin(CampaignBuilderAdmin, ModelAdmin):
    list_display = ("name", "slug", "trigger", "shown_status", "priority", "exclusive", "version")
    list_filter = ("status", "partnership", "trigger")
    search_fields = ("name", "slug")
    readonly_fields = ("id", "version", "created_at", "updated_at", "rule_vocabulary")
    prepopulated_fields = {"slug": ("name",)}
    # The builder's steps, one tab each (campaigns/pilot: the form, the checks, the panel).
    fieldsets = (
        (
            "Details",
            {
                "classes": ["tab"],
                "fields": ("id", "partnership", "trigger", "name", "slug", "description", "status"),
            },
        ),
        (
            "Schedule",
            {"classes": ["tab"], "fields": ("starts_at", "ends_at", "priority", "exclusive")},
        ),
        (
            "Rule",
            {
                "classes": ["tab"],
                "fields": (("condition", "rule_vocabulary"), "facts"),
                "description": "CEL over context.&lt;field&gt;, user, event and facts, checked "
                "as you type and on save. Numbers from the context are doubles (write 20.0).",
            },
        ),
        (
            "Reward",
            {
                "classes": ["tab"],
                "fields": (
                    "reward_type",
                    "reward_value",
                    "reward_field",
                    "reward_expression",
                    "reward_min",
                    "reward_max",
                    "rounding",
                ),
                "description": "An expression reads what the Rule step lists.",
            },
        ),
        (
            "Limits",
            {
                "classes": ["tab"],
                "fields": (
                    "budget",
                    "max_rewards",
                    "max_rewards_per_user",
                    "max_rewards_per_user_per_period",
                    "period",
                    "max_amount_per_user",
                ),
            },
        ),
        ("Versions", {"classes": ["tab"], "fields": ("version", "created_at", "updated_at")}),
    )
    inlines = [CampaignVersionInline]

    @admin.display(description="Status", ordering="status")
    def shown_status(self, campaign: Campaign) -> str:
        return campaign.display_status  # "scheduled": active with a future start

    def save_model(self, request, obj: Campaign, form, change: bool) -> None:
        campaign_save(campaign=obj)


# Triggers and their events, as the campaigns that read them see them.
admin.site.unregister(Trigger)
admin.site.register(Trigger, TriggerWithCampaignsAdmin)
admin.site.unregister(TriggerEvent)
admin.site.register(TriggerEvent, TriggerEventWithDecisionsAdmin)
