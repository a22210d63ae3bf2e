from django.contrib import admin
from unfold.admin import ModelAdmin

from partnerships.models import Partnership
from partnerships.pilot_revision import RevisionAdminMixin
from partnerships.scoping import PartnershipScopedAdmin
from triggers.models import Trigger, TriggerEvent

from .event_admin import TriggerEventWithDecisionsAdmin
from .lifecycle_admin import CampaignLifecycleAdmin
from .models import Campaign
from .pilot.admin import CampaignBuilderAdmin
from .trigger_admin import TriggerWithCampaignsAdmin
from .user_schema import PartnershipWithUserSchemaAdmin


@admin.register(Campaign)
class CampaignAdmin(
    RevisionAdminMixin,
    CampaignLifecycleAdmin,
    CampaignBuilderAdmin,
    PartnershipScopedAdmin,
    ModelAdmin,
):
    list_display = ("name", "slug", "trigger", "shown_status", "priority", "exclusive", "version")
    list_filter = ("status", "partnership", "trigger")
    search_fields = ("name", "slug")
    readonly_fields = (
        "id",
        "version",
        "created_at",
        "updated_at",
        "rule_vocabulary",
        *CampaignLifecycleAdmin.lifecycle_readonly_fields,
    )
    prepopulated_fields = {"slug": ("name",)}

    def get_readonly_fields(self, request, obj: Campaign | None = None):
        """A saved campaign stays in its partnership: the approval snapshot leaves it out, so
        moving it would change what pays without an approval."""
        fields = super().get_readonly_fields(request, obj)
        return fields if obj is None else (*fields, "partnership")

    # The builder's steps, one tab each (campaigns/pilot: the form, the checks, the panel).
    fieldsets = (
        (
            "Details",
            {
                "classes": ["tab"],
                "fields": (
                    "id",
                    "partnership",
                    "trigger",
                    "name",
                    "slug",
                    "description",
                    "shown_status",
                    "pending_change",
                ),
                "description": "Status moves with the buttons above (Submit, Approve, ...). "
                "A change of an approved campaign's rule, reward, schedule, priority or limits "
                "(except lowering a cap) waits for approval; the live campaign is unchanged "
                "until then.",
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
        (
            "Versions",
            {"classes": ["tab"], "fields": ("version", "history", "created_at", "updated_at")},
        ),
    )


# Triggers and their events, as the campaigns that read them see them.
admin.site.unregister(Trigger)
admin.site.register(Trigger, TriggerWithCampaignsAdmin)
admin.site.unregister(TriggerEvent)
admin.site.register(TriggerEvent, TriggerEventWithDecisionsAdmin)

# Partnerships, with their user-attribute schema checked against their campaigns.
admin.site.unregister(Partnership)
admin.site.register(Partnership, PartnershipWithUserSchemaAdmin)
