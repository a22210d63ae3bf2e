"""Triggers in Pilot, as the campaigns that read them see them.

The triggers app cannot know about campaigns (the dependency points this way), so this app
registers its own admin for triggers, built on theirs (``campaigns/admin.py`` registers it).
"""

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse

from triggers.admin import TriggerAdmin
from triggers.models import Trigger, TriggerEvent
from triggers.pilot.forms import TriggerSchemaForm

from .decisions import outcome_label
from .selectors import trigger_event_decisions
from .services import (
    trigger_archive_refusals,
    trigger_change_errors,
    trigger_change_refusal,
    trigger_client_sendable_messages,
    trigger_delete_check,
    trigger_delete_refusal,
    trigger_schema_change_check,
)


class TriggerForm(TriggerSchemaForm):
    """Refuses a schema (or name) change that would stop an active campaign, naming it; a
    draft or paused campaign it would break is a warning (it could not be activated as is)."""

    campaign_refusals: tuple = ()  # active campaigns the change would stop
    campaign_warnings: tuple = ()  # draft and paused campaigns the change breaks

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("client_sendable") and self.instance.pk is not None:
            for message in trigger_client_sendable_messages(self.instance):
                self.add_error("client_sendable", message)
        archiving = cleaned.get("status") not in (None, Trigger.Status.ACTIVE)
        if self.instance.pk is not None and self.instance.status == Trigger.Status.ACTIVE:
            for refusal in trigger_archive_refusals(self.instance) if archiving else ():
                self.add_error("status", refusal)
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
            self.add_error("context_schema", trigger_change_refusal(broken))
        self.campaign_refusals, self.campaign_warnings = check.refused, check.warned
        return cleaned


class TriggerWithCampaignsAdmin(TriggerAdmin):
    form = TriggerForm

    def change_check(self, trigger: Trigger) -> dict[str, list[str]]:
        return trigger_change_errors(trigger)

    def test_event_decisions(self, event: TriggerEvent) -> list[dict]:
        return [
            {
                "campaign": decision.campaign,
                "outcome": outcome_label(decision.outcome),
                "amount": decision.amount,
                "message": decision.message,
            }
            for decision in trigger_event_decisions(event=event)
        ]

    def schema_check_extra(self, form: TriggerForm, trigger: Trigger | None) -> dict:
        """The campaigns the checked schema would break: refused (active) and warned."""
        return {
            "refused": [_described(broken) for broken in form.campaign_refusals],
            "warned": [_described(broken) for broken in form.campaign_warnings],
        }

    def delete_view(self, request, object_id, extra_context=None):
        trigger = self.get_object(request, object_id)
        if trigger is None or not self.has_delete_permission(request, trigger):
            return super().delete_view(request, object_id, extra_context)  # its refusal
        refused = trigger_delete_check(trigger=trigger).refused
        if refused:
            for broken in refused:
                self.message_user(request, trigger_delete_refusal(trigger, broken), messages.ERROR)
            return redirect(reverse("admin:triggers_trigger_change", args=[trigger.pk]))
        return super().delete_view(request, object_id, extra_context)

    def delete_queryset(self, request, queryset) -> None:
        """The bulk action: the triggers active campaigns read are kept, and named."""
        kept = set()
        for trigger in queryset:
            for broken in trigger_delete_check(trigger=trigger).refused:
                kept.add(trigger.pk)
                self.message_user(request, trigger_delete_refusal(trigger, broken), messages.ERROR)
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


def _described(broken) -> str:
    errors = "; ".join(f"{field}: {message}" for field, message in broken.errors.items())
    return f"{broken.name} ({broken.slug}, {broken.status}): {errors}"
