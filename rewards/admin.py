from django.contrib import admin
from django.db.models import OuterRef, Subquery
from unfold.admin import ModelAdmin, TabularInline

from campaigns.admin import CampaignAdmin
from campaigns.models import Campaign

from .models import CampaignCounter, Reward, RewardAdjustment
from .serializers import amount_for_display
from .simulation.pilot import BacktestAdminMixin
from .webhooks import admin as webhooks_admin  # noqa: F401 - registers the webhooks' pages


@admin.register(Reward)
class RewardAdmin(ModelAdmin):
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
    # Report pages link here with explicit bounds: ?issued_at__gte=…&issued_at__lt=… (any local
    # field's lookups are accepted), and by trigger through campaign__trigger.
    list_filter = ("status", "mode", "campaign", "campaign__trigger", "partnership")
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


@admin.register(RewardAdjustment)
class RewardAdjustmentAdmin(ModelAdmin):
    """Reversals, one row per reward they took back from (the rows behind "reversed")."""

    list_display = ("created_at", "reward", "campaign", "end_user", "amount", "mode", "reason")
    list_filter = (
        "reward__mode",
        "reward__campaign",
        "reward__campaign__trigger",
        "reward__partnership",
    )
    search_fields = ("reward__id", "reward__end_user__external_user_id", "reversal__reason")
    date_hierarchy = "created_at"
    list_select_related = ("reward__campaign", "reward__end_user", "reversal")
    readonly_fields = ("reversal", "reward", "amount", "created_at")

    @admin.display(description="Campaign", ordering="reward__campaign__name")
    def campaign(self, adjustment: RewardAdjustment):
        return adjustment.reward.campaign

    @admin.display(description="User")
    def end_user(self, adjustment: RewardAdjustment):
        return adjustment.reward.end_user

    @admin.display(description="Mode")
    def mode(self, adjustment: RewardAdjustment) -> str:
        return adjustment.reward.mode

    @admin.display(description="Reason")
    def reason(self, adjustment: RewardAdjustment) -> str:
        return adjustment.reversal.reason

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class CampaignCounterInline(TabularInline):
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


class CampaignWithSpendAdmin(BacktestAdminMixin, CampaignAdmin):
    """Pilot's campaign list with what each has issued (live) against its budget; a campaign's
    page has its backtests (the "Backtest" button and the past runs)."""

    list_display = (*CampaignAdmin.list_display, "live_rewards", "live_spent", "budget")
    inlines = [CampaignCounterInline, *CampaignAdmin.inlines]
    actions_detail = (*CampaignAdmin.actions_detail, "backtest")

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
