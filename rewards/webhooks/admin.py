from django.contrib import admin, messages
from django.db import models
from django.utils.html import format_html
from unfold.admin import ModelAdmin

from partnerships.pilot_revision import RevisionAdminMixin, RevisionForm
from partnerships.scoping import PartnershipScopedAdmin

from .models import WebhookDelivery, WebhookEndpoint
from .services import (
    webhook_delivery_redeliver,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_save,
)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(RevisionAdminMixin, PartnershipScopedAdmin, ModelAdmin):
    form = RevisionForm
    list_display = ("url", "partnership", "event_types", "modes", "active", "created_at")
    list_filter = ("active", "modes", "partnership")
    fields = ("partnership", "url", "event_types", "modes", "active")
    actions = ["rotate_secret"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def save_model(self, request, obj: WebhookEndpoint, form, change: bool) -> None:
        secret = webhook_endpoint_save(
            endpoint=obj, actor=request.user, expected_revision=form.loaded
        )
        if secret:
            _show_secret(request, secret)

    @admin.action(description="Rotate the signing secret (shown once)", permissions=["change"])
    def rotate_secret(self, request, queryset) -> None:
        for endpoint in queryset:
            secret = webhook_endpoint_rotate_secret(endpoint=endpoint, actor=request.user)
            _show_secret(request, secret, endpoint)
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
class WebhookDeliveryAdmin(PartnershipScopedAdmin, ModelAdmin):
    partnership_path = "endpoint__partnership"
    list_display = (
        "id",
        "event_type",
        "mode",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "created_at",
    )
    list_filter = ("status", "event_type", "mode", "endpoint")
    search_fields = ("id",)
    readonly_fields = [field.name for field in WebhookDelivery._meta.fields]
    list_select_related = ("endpoint",)
    actions = ["redeliver"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Redeliver now", permissions=["change"])
    def redeliver(self, request, queryset) -> None:
        queued = sum(webhook_delivery_redeliver(delivery=delivery) for delivery in queryset)
        skipped = queryset.count() - queued
        message = f"{queued} delivery(ies) queued again."
        if skipped:
            message += f" {skipped} still pending (being sent or due), left alone."
        self.message_user(request, message)
