from django.contrib import admin, messages
from django.db import models
from django.db.models import OuterRef, Subquery
from django.utils.html import format_html

from campaigns.admin import CampaignAdmin
from campaigns.models import Campaign

from .models import CampaignCounter, Reward, WebhookDelivery, WebhookEndpoint
from .serializers import amount_for_display
from .services.webhooks import (
    webhook_delivery_redeliver,
    webhook_endpoint_rotate_secret,
    webhook_secret_generate,
)


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


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("url", "partnership", "event_types", "active", "created_at")
    list_filter = ("active", "partnership")
    fields = ("partnership", "url", "event_types", "active")
    actions = ["rotate_secret"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def save_model(self, request, obj: WebhookEndpoint, form, change: bool) -> None:
        if not change:
            obj.secret = webhook_secret_generate()
        super().save_model(request, obj, form, change)
        if not change:
            _show_secret(request, obj.secret)

    @admin.action(description="Rotate the signing secret (shown once)")
    def rotate_secret(self, request, queryset) -> None:
        for endpoint in queryset:
            _show_secret(request, webhook_endpoint_rotate_secret(endpoint=endpoint), endpoint)
        self.message_user(
            request, "The old secrets keep signing too (a second signature) for 24 hours."
        )


def _show_secret(request, secret: str, endpoint=None) -> None:
    where = f" for {endpoint.url}" if endpoint else ""
    messages.warning(
        request,
        format_html(
            "Signing secret{} — copy it now, it will not be shown again: <code>{}</code>",
            where,
            secret,
        ),
    )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "event_type",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "created_at",
    )
    list_filter = ("status", "event_type", "endpoint")
    search_fields = ("id",)
    readonly_fields = [field.name for field in WebhookDelivery._meta.fields]
    list_select_related = ("endpoint",)
    actions = ["redeliver"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Redeliver now")
    def redeliver(self, request, queryset) -> None:
        queued = sum(webhook_delivery_redeliver(delivery=delivery) for delivery in queryset)
        skipped = queryset.count() - queued
        message = f"{queued} delivery(ies) queued again."
        if skipped:
            message += f" {skipped} still pending (being sent or due), left alone."
        self.message_user(request, message)
