from django.contrib import admin
from django.db.models import OuterRef, Subquery

from campaigns.admin import CampaignAdmin
from campaigns.models import Campaign

from .models import CampaignCounter, Reward
from .serializers import amount_for_display
from .webhooks import admin as webhooks_admin  # noqa: F401 - registers the webhooks' pages


@admin.register(Reward)
class RewardAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "campaign",
        "end_user",
        "display_amount",
        "unit",
        "mode",
        "status",
        "issued_at",
    )
    list_filter = ("status", "mode", "campaign", "partnership")
    search_fields = ("id", "end_user__external_user_id", "trigger_event__id")
    date_hierarchy = "issued_at"
    list_select_related = ("campaign", "end_user", "partnership")
    readonly_fields = [field.name for field in Reward._meta.fields]

    @admin.display(description="Amount", ordering="amount")
    def display_amount(self, reward: Reward) -> str:
        return amount_for_display(reward)

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class CampaignCounterInline(admin.TabularInline):
    model = CampaignCounter
    fields = ("mode", "reward_count", "spent")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


def _live(field: str) -> Subquery:
    return Subquery(
        CampaignCounter.objects.filter(campaign=OuterRef("pk"), mode="live").values(field)[:1]
    )


class CampaignWithSpendAdmin(CampaignAdmin):
    """Pilot's campaign list with what each has issued (live) against its budget."""

    list_display = (*CampaignAdmin.list_display, "live_rewards", "live_spent", "budget")
    inlines = [CampaignCounterInline, *CampaignAdmin.inlines]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(live_rewards=_live("reward_count"), live_spent=_live("spent"))
        )

    @admin.display(description="Rewards (live)", ordering="live_rewards")
    def live_rewards(self, campaign) -> int:
        return campaign.live_rewards or 0

    @admin.display(description="Spent (live)", ordering="live_spent")
    def live_spent(self, campaign):
        return campaign.live_spent or 0


admin.site.unregister(Campaign)
admin.site.register(Campaign, CampaignWithSpendAdmin)
