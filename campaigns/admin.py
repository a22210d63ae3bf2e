from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from unfold.admin import ModelAdmin, TabularInline

from triggers.admin import TriggerAdmin, TriggerEventAdmin
from triggers.models import Trigger, TriggerEvent

from .models import Campaign, CampaignVersion
from .selectors import trigger_event_decisions
from .services import campaign_save, trigger_delete_check, trigger_schema_change_check


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
class CampaignAdmin(ModelAdmin):
    list_display = ("name", "slug", "trigger", "shown_status", "priority", "exclusive", "version")
    list_filter = ("status", "partnership", "trigger")
    search_fields = ("name", "slug")
    readonly_fields = ("id", "version", "created_at", "updated_at")
    prepopulated_fields = {"slug": ("name",)}
    fieldsets = (
        (None, {"fields": ("id", "partnership", "trigger", "name", "slug", "description")}),
        ("Lifecycle", {"fields": ("status", "starts_at", "ends_at", "priority", "exclusive")}),
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
        ("Versions", {"fields": ("version", "created_at", "updated_at")}),
    )
    inlines = [CampaignVersionInline]

    @admin.display(description="Status", ordering="status")
    def shown_status(self, campaign: Campaign) -> str:
        return campaign.display_status  # "scheduled": active with a future start

    def save_model(self, request, obj: Campaign, form, change: bool) -> None:
        campaign_save(campaign=obj)


# --- Triggers, as the campaigns that read them see them ----------------------------------------
# The triggers app cannot know about campaigns (the dependency points this way), so this app
# registers its own admin for triggers and their events, built on theirs.


class TriggerForm(forms.ModelForm):
    """Refuses a schema (or name) change that would stop an active campaign, naming it; a
    draft or paused campaign it would break is a warning (it could not be activated as is)."""

    campaign_warnings: tuple = ()  # draft and paused campaigns the change breaks

    def clean(self) -> dict:
        cleaned = super().clean()
        if self.instance.pk is None or not {"context_schema", "name", "partnership"} <= set(
            cleaned
        ):
            return cleaned  # a new trigger, or the form already reports the field
        check = trigger_schema_change_check(
            trigger=self.instance,
            new_schema=cleaned["context_schema"],
            new_name=cleaned["name"],
            new_partnership_id=cleaned["partnership"].pk,
        )
        for broken in check.refused:
            self.add_error(
                "context_schema",
                f"This change would stop the active campaign {broken}. Change the campaign "
                "first, or pause it.",
            )
        self.campaign_warnings = check.warned
        return cleaned


class TriggerWithCampaignsAdmin(TriggerAdmin):
    form = TriggerForm

    def delete_view(self, request, object_id, extra_context=None):
        trigger = self.get_object(request, object_id)
        refused = trigger_delete_check(trigger=trigger).refused if trigger else ()
        if refused:
            for broken in refused:
                self.message_user(request, _delete_refusal(trigger, broken), messages.ERROR)
            return redirect(reverse("admin:triggers_trigger_change", args=[trigger.pk]))
        return super().delete_view(request, object_id, extra_context)

    def delete_queryset(self, request, queryset) -> None:
        """The bulk action: the triggers active campaigns read are kept, and named."""
        kept = set()
        for trigger in queryset:
            for broken in trigger_delete_check(trigger=trigger).refused:
                kept.add(trigger.pk)
                self.message_user(request, _delete_refusal(trigger, broken), messages.ERROR)
        super().delete_queryset(request, queryset.exclude(pk__in=kept))

    def save_model(self, request, obj: Trigger, form: TriggerForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        for broken in form.campaign_warnings:
            self.message_user(
                request,
                f"The {broken.status} campaign {broken} no longer compiles: it cannot be "
                "activated as it is.",
                messages.WARNING,
            )


def _delete_refusal(trigger: Trigger, broken) -> str:
    return (
        f"The trigger {trigger.name} was not deleted: the active campaign {broken} reads it. "
        "Change the campaign first, or pause it."
    )


class TriggerEventWithDecisionsAdmin(TriggerEventAdmin):
    """The event's decisions in words (they are stored as codes and parameters)."""

    readonly_fields = [
        *(name for name in TriggerEventAdmin.readonly_fields if name != "decisions"),
        "decision_table",
    ]
    fieldsets = tuple(
        (
            title,
            {
                **options,
                "fields": tuple(
                    "decision_table" if name == "decisions" else name for name in options["fields"]
                ),
            },
        )
        for title, options in TriggerEventAdmin.fieldsets
    )

    @admin.display(description="Decisions")
    def decision_table(self, event: TriggerEvent) -> str:
        rows = trigger_event_decisions(event=event)
        if not rows:
            return "—"
        return format_html(
            "<table><thead><tr><th>Campaign</th><th>Outcome</th><th>Amount</th>"
            "<th>Message</th></tr></thead><tbody>{}</tbody></table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                ((d.campaign, d.outcome, d.amount or "", d.message) for d in rows),
            ),
        )


admin.site.unregister(Trigger)
admin.site.register(Trigger, TriggerWithCampaignsAdmin)
admin.site.unregister(TriggerEvent)
admin.site.register(TriggerEvent, TriggerEventWithDecisionsAdmin)
