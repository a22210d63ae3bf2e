"""Pilot's rewards, reversals and campaign spend; and the pages of events and users with what
this app owns (rewards, reversals, balances, webhook deliveries), registered over the lower
apps' admins (as campaigns does for triggers)."""

import uuid
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.db.models import OuterRef, Subquery
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from unfold.admin import ModelAdmin, TabularInline
from unfold.widgets import UnfoldAdminTextareaWidget, UnfoldAdminTextInputWidget

from campaigns.admin import CampaignAdmin
from campaigns.event_admin import TriggerEventWithDecisionsAdmin
from campaigns.models import Campaign
from campaigns.selectors import trigger_event_decision_records
from config.errors import ApplicationError
from partnerships.admin import EndUserAdmin, EndUserChangeForm
from partnerships.models import EndUser
from partnerships.pilot_actions import ObjectAction, ObjectActionsAdmin
from partnerships.pilot_filters import DateTimeRangeFilter, ExternalUserFilter, exact_search
from partnerships.scoping import PartnershipScopedAdmin, ScopedRelatedFieldListFilter
from partnerships.services import end_user_refuse_new
from triggers.models import TriggerEvent

from .models import CampaignCounter, Reward, RewardAdjustment
from .notices_pilot import CampaignNoticesAdminMixin
from .selectors import (
    end_user_recent_events,
    end_user_recent_rewards,
    reward_balance_for_user,
    trigger_event_webhook_deliveries,
)
from .serializers import amount_for_display
from .services.reversal import reward_reverse
from .services.users import EndUserEraseError, attribute_errors_for_pilot, end_user_erase
from .simulation.backtest_pilot import BacktestAdminMixin
from .simulation.pilot import CampaignDryRunAdmin
from .webhooks import admin as webhooks_admin  # noqa: F401 - registers the webhooks' pages

REVERSE_PERMISSION = "rewards.reverse_reward"


def _link(obj, text=None) -> str:
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}" class="text-primary-600 underline">{}</a>', url, text or obj)


def _table(table_id: str, headers: tuple[str, ...], rows, empty: str) -> str:
    """A small read-only table of a detail page (rows: tuples of cells, already escaped by
    ``format_html`` where they hold links)."""
    if not rows:
        return format_html('<p id="{}">{}</p>', table_id, empty)
    return format_html(
        '<table id="{}"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>',
        table_id,
        format_html_join("", "<th>{}</th>", ((header,) for header in headers)),
        format_html_join(
            "",
            "<tr>{}</tr>",
            ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),) for row in rows),
        ),
    )


def _amount(value: Decimal, partnership) -> str:
    return str(value.quantize(partnership.unit_step))


def _adjustment_rows(adjustments) -> list[tuple]:
    return [
        (
            adjustment.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            _link(adjustment.reward, adjustment.reward.campaign),
            _taken(adjustment),
            adjustment.reversal.reason or "—",
            adjustment.reversal.operator or "partner API",
        )
        for adjustment in adjustments
    ]


def _taken(adjustment: RewardAdjustment) -> str:
    reward = adjustment.reward
    return f"-{_amount(adjustment.amount, reward.partnership)} {reward.unit}"


ADJUSTMENT_HEADERS = ("When", "Reward", "Amount", "Reason", "By")


class ReverseForm(forms.Form):
    amount = forms.DecimalField(
        required=False,
        min_value=Decimal("0.000001"),
        max_digits=18,
        decimal_places=6,
        widget=UnfoldAdminTextInputWidget,
        help_text="Part of what remains; empty reverses all of it.",
    )
    reason = forms.CharField(
        max_length=500,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
        help_text="Kept with the reversal and in the audit log.",
    )
    # Set when the form is shown: the token makes a second submit of it a replay of the first
    # (the reversal's Idempotency-Key); the reversed amount it showed must still hold.
    token = forms.UUIDField(required=False, widget=forms.HiddenInput)
    reversed_amount = forms.DecimalField(
        required=False, max_digits=18, decimal_places=6, widget=forms.HiddenInput
    )

    def clean(self) -> dict:
        data = super().clean()
        if data.get("token") is None or data.get("reversed_amount") is None:
            raise forms.ValidationError("This form is out of date: open Reverse again.")
        return data


@admin.register(Reward)
class RewardAdmin(ObjectActionsAdmin, PartnershipScopedAdmin, ModelAdmin):
    list_display = (
        "id",
        "campaign",
        "end_user",
        "display_amount",
        "display_reversed",
        "unit",
        "mode",
        "status",
        "issued_at",
    )
    # Report pages link here with explicit bounds: ?issued_at__gte=…&issued_at__lt=… (the
    # range filter's parameters), and by trigger through campaign__trigger.
    list_filter = (
        "status",
        "mode",
        ("campaign", ScopedRelatedFieldListFilter),
        ("campaign__trigger", ScopedRelatedFieldListFilter),
        ("partnership", ScopedRelatedFieldListFilter),
        ("issued_at", DateTimeRangeFilter),
        ExternalUserFilter,
    )
    list_filter_submit = True
    search_fields = ("id",)  # the box; get_search_results compares exactly
    search_help_text = "Exact: a reward id or its event's id."
    ordering = ("-issued_at",)
    show_full_result_count = False
    list_select_related = ("campaign", "end_user", "partnership")
    readonly_fields = [
        *(field.name for field in Reward._meta.fields),
        "display_amount",
        "display_reversed",
        "adjustment_table",
    ]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "partnership",
                    "campaign",
                    "campaign_version",
                    "trigger_event",
                    "end_user",
                    "mode",
                    "status",
                )
            },
        ),
        # With the partnership's decimal places, as the list and the API show them.
        ("Amount", {"fields": ("display_amount", "display_reversed", "unit", "user_periods")}),
        ("Times", {"fields": ("occurred_at", "issued_at")}),
        ("Reversals", {"fields": ("adjustment_table",)}),
    )
    object_action_urls = (("reverse", "reverse_view"),)

    def get_search_results(self, request, queryset, search_term):
        found = exact_search(queryset, search_term, uuid_fields=("pk", "trigger_event_id"))
        return found, False

    @admin.display(description="Amount", ordering="amount")
    def display_amount(self, reward: Reward) -> str:
        return amount_for_display(reward)

    @admin.display(description="Reversed", ordering="reversed_amount")
    def display_reversed(self, reward: Reward) -> str:
        return _amount(reward.reversed_amount, reward.partnership) if reward.reversed_amount else ""

    @admin.display(description="Reversals of this reward")
    def adjustment_table(self, reward: Reward) -> str:
        adjustments = reward.adjustments.select_related(
            "reversal__operator", "reward__campaign", "reward__partnership"
        ).order_by("created_at", "id")
        return _table("adjustments", ADJUSTMENT_HEADERS, _adjustment_rows(adjustments), "None.")

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def object_actions(self, request, obj: Reward) -> list[ObjectAction]:
        if obj.status != Reward.Status.ISSUED or not request.user.has_perm(REVERSE_PERMISSION):
            return []
        return [ObjectAction("Reverse", self.action_url(obj, "reverse"), "undo")]

    def reverse_view(self, request, object_id: str):
        reward = self.object_for_action(request, object_id, REVERSE_PERMISSION)
        if request.method == "POST":
            form = ReverseForm(request.POST)
        else:
            form = ReverseForm(
                initial={"token": uuid.uuid4(), "reversed_amount": reward.reversed_amount}
            )
        if form.is_valid():
            try:
                result = reward_reverse(
                    reward=reward,
                    operator=request.user,
                    reason=form.cleaned_data["reason"],
                    amount=form.cleaned_data["amount"],
                    token=form.cleaned_data["token"],
                    reversed_amount_seen=form.cleaned_data["reversed_amount"],
                )
            except ApplicationError as exc:
                _errors_to_form(form, exc)
                # Submitted again, the form reverses from what the page now shows.
                reward.refresh_from_db()
                form.data = form.data.copy()
                form.data["reversed_amount"] = str(reward.reversed_amount)
            else:
                reward.refresh_from_db()
                done = "Already done: this form was submitted before. " if result.replayed else ""
                messages.success(
                    request,
                    f"{done}Reversed: {_amount(reward.reversed_amount, reward.partnership)} "
                    f"{reward.unit} of {amount_for_display(reward)} taken back so far.",
                )
                return HttpResponseRedirect(self.change_url(reward))
        elif request.method != "POST" and reward.status != Reward.Status.ISSUED:
            messages.error(request, "The reward is already reversed")
        remaining = _amount(reward.remaining, reward.partnership)
        return self.action_page(
            request,
            reward,
            title=f"Reverse a reward of {amount_for_display(reward)} {reward.unit}",
            form=form,
            intro="Takes the amount back from the user (a reversal, as the partner API makes) "
            "and gives it back to the campaign's budget and the user's caps.",
            submit="Reverse",
            details=[
                ("Campaign", str(reward.campaign)),
                ("User", str(reward.end_user)),
                ("Issued", f"{amount_for_display(reward)} {reward.unit} ({reward.mode})"),
                ("Remaining", f"{remaining} {reward.unit}"),
            ],
            status=400 if form.errors else 200,
        )


def _errors_to_form(form: forms.Form, error: ApplicationError) -> None:
    """The service's refusal at the field it names (the amount), else above the form."""
    for item in error.errors or ():
        field = item.get("field")
        form.add_error(field if field in form.fields else None, item["message"])
    if not error.errors:
        form.add_error(None, error.message)


@admin.register(RewardAdjustment)
class RewardAdjustmentAdmin(PartnershipScopedAdmin, ModelAdmin):
    """Reversals, one row per reward they took back from (the rows behind "reversed")."""

    partnership_path = "reward__partnership"

    list_display = (
        "created_at",
        "reward",
        "campaign",
        "end_user",
        "amount",
        "mode",
        "reason",
        "operator",
    )
    list_filter = (
        "reward__mode",
        ("reward__campaign", ScopedRelatedFieldListFilter),
        ("reward__campaign__trigger", ScopedRelatedFieldListFilter),
        ("reward__partnership", ScopedRelatedFieldListFilter),
        ("created_at", DateTimeRangeFilter),
    )
    list_filter_submit = True
    search_fields = ("reward__id",)  # the box; get_search_results compares exactly
    search_help_text = "Exact: a reward id or its event's id."
    ordering = ("-created_at",)
    list_select_related = (
        "reward__campaign",
        "reward__end_user",
        "reversal__operator",
    )
    readonly_fields = ("reversal", "reward", "amount", "created_at", "reason", "operator")

    def get_search_results(self, request, queryset, search_term):
        found = exact_search(
            queryset, search_term, uuid_fields=("reward_id", "reversal__trigger_event_id")
        )
        return found, False

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

    @admin.display(description="By")
    def operator(self, adjustment: RewardAdjustment) -> str:
        return str(adjustment.reversal.operator or "partner API")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# --- Events and users, with what this app owns ------------------------------------------------


class TriggerEventPilotAdmin(TriggerEventWithDecisionsAdmin):
    """An event's page: its context and decisions (below), then its rewards, their reversals
    and the webhooks sent about it."""

    readonly_fields = [
        *TriggerEventWithDecisionsAdmin.readonly_fields,
        "reward_table",
        "reversal_table",
        "delivery_table",
    ]
    fieldsets = (
        *TriggerEventWithDecisionsAdmin.fieldsets,
        ("Rewards", {"fields": ("reward_table",)}),
        ("Reversals and adjustments", {"fields": ("reversal_table",)}),
        ("Webhook deliveries", {"fields": ("delivery_table",)}),
    )

    @admin.display(description="Rewards")
    def reward_table(self, event: TriggerEvent) -> str:
        rewards = event.rewards.select_related("campaign", "partnership").order_by("issued_at")
        rows = [
            (
                _link(reward, reward.campaign),
                f"{amount_for_display(reward)} {reward.unit}",
                _amount(reward.reversed_amount, reward.partnership),
                reward.status,
                reward.issued_at.strftime("%Y-%m-%d %H:%M:%S"),
            )
            for reward in rewards
        ]
        headers = ("Campaign", "Amount", "Reversed", "Status", "Issued")
        return _table("rewards", headers, rows, "No reward.")

    @admin.display(description="Reversals")
    def reversal_table(self, event: TriggerEvent) -> str:
        adjustments = (
            RewardAdjustment.objects.filter(reversal__trigger_event=event)
            .select_related("reversal__operator", "reward__campaign", "reward__partnership")
            .order_by("created_at", "id")
        )
        rows = _adjustment_rows(adjustments)
        cancelled = event.reversals.filter(cancelled_event=True).select_related("operator")
        rows += [
            (
                reversal.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                "the event (cancelled before evaluation)",
                "—",
                reversal.reason or "—",
                reversal.operator or "partner API",
            )
            for reversal in cancelled
        ]
        return _table("reversals", ADJUSTMENT_HEADERS, rows, "None.")

    @admin.display(description="Webhook deliveries")
    def delivery_table(self, event: TriggerEvent) -> str:
        rows = [
            (
                _link(delivery, delivery.event_type),
                delivery.endpoint.url,
                delivery.get_status_display(),
                delivery.attempts,
                delivery.last_status_code or "—",
                delivery.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            )
            for delivery in trigger_event_webhook_deliveries(event=event)
        ]
        headers = ("Type", "Endpoint", "Status", "Attempts", "Last response", "Created")
        return _table("deliveries", headers, rows, "None sent.")


ERASE_PERMISSION = "partnerships.erase_enduser"


class EraseForm(forms.Form):
    confirm = forms.CharField(
        max_length=255,
        help_text="Type the user's external id to confirm: erasure cannot be undone.",
    )

    def __init__(self, *args, external_user_id: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.external_user_id = external_user_id

    def clean_confirm(self) -> str:
        if self.cleaned_data["confirm"] != self.external_user_id:
            raise forms.ValidationError("Not this user's external id.")
        return self.cleaned_data["confirm"]


class EndUserForm(EndUserChangeForm):
    """Attributes typed in Pilot are checked as the API checks them; a new user's external id
    as the API's (not a pseudonym, not an erased user's: their caps would start again)."""

    def clean(self):
        cleaned = super().clean()
        partnership, external_user_id = cleaned.get("partnership"), cleaned.get("external_user_id")
        if self.instance._state.adding and partnership and external_user_id:
            try:
                end_user_refuse_new(
                    partnership_id=partnership.pk, external_user_id=external_user_id
                )
            except ApplicationError as exc:
                for item in exc.errors or [{"message": exc.message}]:
                    self.add_error("external_user_id", item["message"])
        return cleaned

    def clean_attributes(self):
        attributes = self.cleaned_data["attributes"]
        partnership = self.cleaned_data.get("partnership") or getattr(
            self.instance, "partnership", None
        )
        if partnership is None:
            return attributes
        errors = attribute_errors_for_pilot(
            schema=partnership.user_attribute_schema, attributes=attributes
        )
        if errors:
            raise forms.ValidationError([f"{e['field']}: {e['message']}" for e in errors])
        return attributes


class EndUserPilotAdmin(EndUserAdmin):
    """Benji's member page: who the user is, whether they are blocked, their balance, latest
    events and rewards; erasure (GDPR) for those with ``partnerships.erase_enduser``."""

    form = EndUserForm
    object_action_urls = (*EndUserAdmin.object_action_urls, ("erase", "erase_view"))

    def object_actions(self, request, obj: EndUser) -> list[ObjectAction]:
        actions = [] if obj.erased_at else super().object_actions(request, obj)
        if obj.erased_at is None and request.user.has_perm(ERASE_PERMISSION):
            actions.append(ObjectAction("Erase (GDPR)", self.action_url(obj, "erase"), "delete"))
        return actions

    def erase_view(self, request, object_id: str):
        user = self.object_for_action(request, object_id, ERASE_PERMISSION)
        form = EraseForm(
            request.POST if request.method == "POST" else None,
            external_user_id=user.external_user_id,
        )
        if user.erased_at is not None:
            form.is_bound = False
            messages.error(request, "This user is already erased.")
        elif form.is_valid():
            try:
                end_user_erase(end_user=user, actor=request.user, via="pilot")
            except EndUserEraseError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(
                    request,
                    "The user is erased: attributes and external id removed, their events' "
                    "contexts cleared; rewards and budgets unchanged.",
                )
                return HttpResponseRedirect(self.change_url(user))
        return self.action_page(
            request,
            user,
            title=f"Erase {user}",
            form=form,
            intro="Erasure cannot be undone. The external id is replaced by a keyed hash and "
            "accepts no more events or attributes (410 user_erased); attributes, block reason "
            "and the contexts of the user's events are removed; events not yet evaluated are "
            "cancelled. Rewards, reversals, reports and budgets stay as they are.",
            submit="Erase",
            status=400 if form.errors else 200,
        )

    readonly_fields = (*EndUserAdmin.readonly_fields, "balance", "event_table", "reward_table")
    fieldsets = (
        *EndUserAdmin.fieldsets[:2],
        ("Balance", {"fields": ("balance",)}),
        ("Latest events", {"fields": ("event_table",)}),
        ("Latest rewards", {"fields": ("reward_table",)}),
        *EndUserAdmin.fieldsets[2:],
    )

    def get_fieldsets(self, request, obj=None):
        return self.fieldsets if obj is not None else EndUserAdmin.fieldsets

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return super().get_readonly_fields(request)
        return (*self.readonly_fields, "attributes") if obj.erased_at else self.readonly_fields

    @admin.display(description="Balance (issued minus reversed)")
    def balance(self, user: EndUser) -> str:
        rows = [
            (mode, row["unit"], row["earned"], row["reversed"], row["net"])
            for mode in ("live", "test")
            for row in reward_balance_for_user(user=user, mode=mode)
        ]
        headers = ("Mode", "Unit", "Issued", "Reversed", "Balance")
        return _table("balance", headers, rows, "Nothing issued yet.")

    @admin.display(description="Events")
    def event_table(self, user: EndUser) -> str:
        rows = [
            (
                _link(event, str(event.pk)[:8]),
                event.trigger,
                event.mode,
                event.get_status_display(),
                _outcomes(event),
                event.occurred_at.strftime("%Y-%m-%d %H:%M:%S"),
            )
            for event in end_user_recent_events(user=user)
        ]
        headers = ("Event", "Trigger", "Mode", "Status", "Decisions", "Occurred")
        all_url = reverse("admin:triggers_triggerevent_changelist") + f"?end_user={user.pk}"
        return format_html(
            '{}<p><a href="{}" class="text-primary-600 underline">All their events</a></p>',
            _table("events", headers, rows, "No event."),
            all_url,
        )

    @admin.display(description="Rewards")
    def reward_table(self, user: EndUser) -> str:
        rows = [
            (
                _link(reward, reward.campaign),
                f"{amount_for_display(reward)} {reward.unit}",
                _amount(reward.reversed_amount, reward.partnership),
                reward.mode,
                reward.status,
                reward.issued_at.strftime("%Y-%m-%d %H:%M:%S"),
            )
            for reward in end_user_recent_rewards(user=user)
        ]
        headers = ("Campaign", "Amount", "Reversed", "Mode", "Status", "Issued")
        all_url = reverse("admin:rewards_reward_changelist") + f"?end_user={user.pk}"
        return format_html(
            '{}<p><a href="{}" class="text-primary-600 underline">All their rewards</a></p>',
            _table("user-rewards", headers, rows, "No reward."),
            all_url,
        )


def _outcomes(event: TriggerEvent) -> str:
    """ "2 rewarded, 1 condition_false": the event's decisions counted by outcome."""
    counts: dict[str, int] = {}
    for item in trigger_event_decision_records(event=event):
        outcome = item["outcome"] if isinstance(item, dict) else item[1]
        counts[outcome] = counts.get(outcome, 0) + 1
    return ", ".join(f"{count} {outcome}" for outcome, count in counts.items()) or "—"


admin.site.unregister(TriggerEvent)
admin.site.register(TriggerEvent, TriggerEventPilotAdmin)
admin.site.unregister(EndUser)
admin.site.register(EndUser, EndUserPilotAdmin)


class CampaignCounterInline(TabularInline):
    model = CampaignCounter
    fields = ("mode", "reward_count", "spent", "exhausted_at", "low_warned_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


def _live(field: str) -> Subquery:
    return Subquery(
        CampaignCounter.objects.filter(campaign=OuterRef("pk"), mode="live").values(field)[:1]
    )


class CampaignWithSpendAdmin(
    CampaignNoticesAdminMixin, BacktestAdminMixin, CampaignDryRunAdmin, CampaignAdmin
):
    """Pilot's campaign list with what each has issued (live) against its budget; a campaign's
    page has the dry run and its backtests (the "Backtest" button and the past runs), and says
    when its budget ran out, runs low or it ended (``notices_pilot``)."""

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
