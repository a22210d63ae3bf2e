"""The campaign page's lifecycle in Pilot: status as a badge (not a field), the buttons Submit,
Approve, Reject, Pause, Resume and End for whoever may use them, the change awaiting approval
with its diff, and the version history. Every rule lives in ``campaigns.lifecycle``; this
module shows its answers and passes on its refusals as messages."""

from datetime import UTC

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.db.models import Exists, OuterRef
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from unfold.decorators import action

from . import lifecycle
from .lifecycle import Action, ChangeOutcome, LifecycleRefused
from .models import Campaign, CampaignVersion
from .selectors import campaign_history, campaign_pending_change, campaigns_held_back_by
from .services import campaign_save
from .versions import LIMITS, diff_lines

DONE = {
    Action.SUBMIT: "Submitted for approval: someone else with the approve permission decides.",
    Action.APPROVE: "Approved: it is live (scheduled until its start).",
    Action.REJECT: "Rejected: the author sees your reason.",
    Action.PAUSE: "Paused: it rewards nothing until resumed.",
    Action.RESUME: "Resumed: it rewards again.",
    Action.END: "Ended: it rewards nothing any more.",
}


# Pause and End stop an exclusive campaign from taking events (what the warning says first).
STOPPING = {
    Action.PAUSE: "Pausing an exclusive campaign:",
    Action.END: "Ending an exclusive campaign:",
}

HISTORY_COLUMNS = (
    "Version",
    "State",
    "Author",
    "When (UTC)",
    "Approved / rejected by",
    "Changes",
    "Note",
)
CELL = '<td style="padding: 0.25rem 0.75rem 0.25rem 0; vertical-align: top">{}</td>'


def _diff_html(changes: dict) -> str:
    lines = diff_lines(changes)
    if not lines:
        return "—"
    return format_html_join("", '<div class="diff-line">{}</div>', ((line,) for line in lines))


def _utc(moment) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if moment else "—"


def _no_diff(version: CampaignVersion) -> str:
    return "(first version)" if version.version == 1 else "(no change to the configuration)"


def _int_or_none(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _who(user) -> str:
    return user.get_username() if user else "—"


class CampaignLifecycleAdmin:
    """A ModelAdmin mixin for ``Campaign`` (before unfold's ModelAdmin)."""

    actions_detail = [
        "lifecycle_submit",
        "lifecycle_approve",
        "lifecycle_reject",
        "lifecycle_pause",
        "lifecycle_resume",
        "lifecycle_end",
    ]
    lifecycle_readonly_fields = ("shown_status", "pending_change", "history")

    def get_queryset(self, request):
        pending = CampaignVersion.objects.filter(
            campaign=OuterRef("pk"), state=CampaignVersion.State.PROPOSED
        )
        return super().get_queryset(request).annotate(has_pending_change=Exists(pending))

    # --- what the page shows ---------------------------------------------------------------

    @admin.display(description="Status", ordering="status")
    def shown_status(self, campaign: Campaign) -> str:
        if campaign.pk is None:
            return "draft"
        shown = campaign.display_status  # "scheduled": approved, before its start
        if getattr(campaign, "has_pending_change", False) and campaign.status != "submitted":
            return f"{shown} (change awaiting approval)"
        return shown

    @admin.display(description="Awaiting approval")
    def pending_change(self, campaign: Campaign) -> str:
        pending = campaign.pk and campaign_pending_change(campaign=campaign)
        if not pending:
            return "Nothing awaits approval."
        author = pending.author
        written = "" if author == pending.submitted_by else f" (written by {_who(author)})"
        return format_html(
            '<div id="pending-change"><p>Submitted by {} at {} UTC{}. '
            "Until approved, the live campaign is unchanged.</p>{}</div>",
            _who(pending.submitted_by),
            _utc(pending.submitted_at),
            written,
            _diff_html(pending.changes),
        )

    @admin.display(description="Version history")
    def history(self, campaign: Campaign) -> str:
        if campaign.pk is None:
            return "—"
        rows = (
            (
                v.version or "pending",
                v.get_state_display(),
                _who(v.author),
                _utc(v.created_at),
                _who(v.approver) if v.approver else _who(v.rejected_by),
                _diff_html(v.changes) if v.changes else _no_diff(v),
                v.reason,
            )
            for v in campaign_history(campaign=campaign)
        )
        return format_html(
            '<table id="version-history" class="version-history"><thead><tr>{}</tr></thead>'
            "<tbody>{}</tbody></table>",
            format_html_join("", CELL.replace("td", "th"), ((h,) for h in HISTORY_COLUMNS)),
            format_html_join("", "<tr>" + CELL * len(HISTORY_COLUMNS) + "</tr>", rows),
        )

    # --- edits -----------------------------------------------------------------------------

    def save_model(self, request, obj: Campaign, form, change: bool) -> None:
        if not change:
            campaign_save(campaign=obj, author=request.user)
            return
        result = lifecycle.campaign_change(
            campaign=obj, author=request.user, expected_revision=form.loaded
        )
        request.campaign_change = result
        if result.outcome == ChangeOutcome.PROPOSED:
            self.message_user(
                request,
                "Your change awaits approval; the live campaign is unchanged until someone "
                "else with the approve permission approves it: "
                + "; ".join(diff_lines(result.version.changes)),
                messages.WARNING,
            )
            if result.replaced is not None:
                self.message_user(
                    request,
                    f"It replaces the change {result.replaced.author or 'someone'} proposed on "
                    f"{result.replaced.submitted_at:%Y-%m-%d %H:%M %Z}, which no longer awaits "
                    "approval: " + "; ".join(diff_lines(result.replaced.changes)),
                    messages.WARNING,
                )
        elif result.outcome == ChangeOutcome.APPLIED and set(LIMITS) & set(result.version.changes):
            self._warn_held_back(
                request, obj, "A lower cap on an exclusive campaign: once reached,"
            )
        elif result.withdrawn:
            self.message_user(
                request,
                "The change took the campaign back to draft: submit it again for approval.",
                messages.WARNING,
            )

    def message_user(self, request, message, level=messages.INFO, *args, **kwargs) -> None:
        proposed = getattr(request, "campaign_change", None)
        if proposed and proposed.outcome == ChangeOutcome.PROPOSED and level == messages.SUCCESS:
            return  # "changed successfully" would say it is live: it is not
        super().message_user(request, message, level, *args, **kwargs)

    def _warn_held_back(self, request: HttpRequest, campaign: Campaign, cause: str) -> None:
        """An exclusive campaign that stops taking events lets the ones after it pay them: no
        approval asked (it pays no more itself), but the operator is told which."""
        names = ", ".join(f"“{c}”" for c in campaigns_held_back_by(campaign=campaign))
        if names:
            self.message_user(
                request,
                f"{cause} {names} will now reward events this campaign took.",
                messages.WARNING,
            )

    # --- the buttons -----------------------------------------------------------------------

    def get_actions_detail(self, request: HttpRequest, object_id):
        shown = super().get_actions_detail(request, object_id)
        campaign = self.get_object(request, unquote(str(object_id))) if object_id else None
        if campaign is None:
            return []
        allowed = lifecycle.campaign_actions_allowed(campaign=campaign, user=request.user)
        prefix = f"{self.model._meta.app_label}_{self.model._meta.model_name}_lifecycle_"
        return [
            button
            for button in shown
            if not button.action_name.startswith(prefix)
            or Action(button.action_name.removeprefix(prefix)) in allowed
        ]

    def _lifecycle(self, request: HttpRequest, object_id: str, act: Action) -> HttpResponse:
        """GET: a confirmation page (with the reason, to reject). POST: the service; its
        refusal, if any, comes back as an error message on the campaign page."""
        campaign = self.get_object(request, unquote(object_id))
        if campaign is None:
            raise Http404("No such campaign.")
        page = reverse(
            f"admin:{self.model._meta.app_label}_{self.model._meta.model_name}_change",
            args=(campaign.pk,),
        )
        refusal = lifecycle.campaign_action_refusal(
            action=act, campaign=campaign, user=request.user
        )
        if refusal:
            self.message_user(request, refusal, messages.ERROR)
            return HttpResponseRedirect(page)
        if request.method != "POST":
            if act in STOPPING:
                self._warn_held_back(request, campaign, STOPPING[act])
            pending = campaign_pending_change(campaign=campaign)
            return TemplateResponse(
                request,
                "campaigns/lifecycle_confirm.html",
                {
                    **self.admin_site.each_context(request),
                    "title": f"{act.capitalize()} “{campaign}”",
                    "campaign": campaign,
                    "action": act,
                    "pending": pending,
                    "changes": diff_lines(pending.changes) if pending else [],
                    "ask_reason": act == Action.REJECT,
                    "page": page,
                },
            )
        try:
            lifecycle.campaign_act(
                campaign=campaign,
                action=act,
                user=request.user,
                reason=request.POST.get("reason", ""),
                shown_id=_int_or_none(request.POST.get("shown")),
            )
        except LifecycleRefused as refused:
            self.message_user(request, refused.message, messages.ERROR)
        else:
            self.message_user(request, DONE[act], messages.SUCCESS)
        return HttpResponseRedirect(page)

    @action(description="Submit for approval", url_path="submit")
    def lifecycle_submit(self, request, object_id):
        return self._lifecycle(request, object_id, Action.SUBMIT)

    @action(description="Approve", url_path="approve")
    def lifecycle_approve(self, request, object_id):
        return self._lifecycle(request, object_id, Action.APPROVE)

    @action(description="Reject", url_path="reject")
    def lifecycle_reject(self, request, object_id):
        return self._lifecycle(request, object_id, Action.REJECT)

    @action(description="Pause", url_path="pause")
    def lifecycle_pause(self, request, object_id):
        return self._lifecycle(request, object_id, Action.PAUSE)

    @action(description="Resume", url_path="resume")
    def lifecycle_resume(self, request, object_id):
        return self._lifecycle(request, object_id, Action.RESUME)

    @action(description="End", url_path="end")
    def lifecycle_end(self, request, object_id):
        return self._lifecycle(request, object_id, Action.END)
