"""A campaign's life with approval: draft -> submitted -> approved (``active``, shown as
scheduled before its start) -> paused -> ended.

The Campaign row is the live, approved configuration the workers read; nothing here changes
their hot path. A draft is edited in place (``campaign_save``). A change of an approved
campaign that could pay more or differently waits as a proposed ``CampaignVersion`` and
reaches the row only when someone else with ``campaigns.approve_campaign`` approves it; a
change that only describes the campaign or lowers a cap is applied at once, as are pause and
end (they only stop payments).

Every service locks the campaign row first (``_locked``) and checks the state under that
lock, so two approvers racing approve once. Refusals raise ``LifecycleRefused`` with the text
Pilot shows.
"""

from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from config.revisions import revision_bump
from partnerships.services import audit_record

from .models import Campaign, CampaignVersion
from .selectors import campaign_pending_change
from .services import campaign_save, campaign_validate
from .signals import EndedBy, campaigns_ended
from .versions import campaign_snapshot, needs_approval, snapshot_apply, snapshot_diff

Status = Campaign.Status
State = CampaignVersion.State


class Action(StrEnum):
    SUBMIT = "submit"
    APPROVE = "approve"
    REJECT = "reject"
    PAUSE = "pause"
    RESUME = "resume"
    END = "end"


CHANGE = "campaigns.change_campaign"
APPROVE = "campaigns.approve_campaign"
# Resuming puts money back in motion, so it is an approver's call; pausing and ending only
# stop payments, so whoever may edit the campaign may do them at once.
PERMISSION = {
    Action.SUBMIT: CHANGE,
    Action.APPROVE: APPROVE,
    Action.REJECT: APPROVE,
    Action.PAUSE: CHANGE,
    Action.RESUME: APPROVE,
    Action.END: CHANGE,
}
FROM_STATUS = {
    Action.SUBMIT: {Status.DRAFT},
    Action.PAUSE: {Status.ACTIVE},
    Action.RESUME: {Status.PAUSED},
    Action.END: {Status.ACTIVE, Status.PAUSED},
}
NOT_NOW = {
    Action.SUBMIT: "Only a draft can be submitted; it is {status}.",
    Action.APPROVE: "Nothing awaits approval on this campaign (it is {status}).",
    Action.REJECT: "Nothing awaits approval on this campaign (it is {status}).",
    Action.PAUSE: "Only an active or scheduled campaign can be paused; it is {status}.",
    Action.RESUME: "Only a paused campaign can be resumed; it is {status}.",
    Action.END: "Only an approved campaign can be ended; it is {status}.",
}
FOUR_EYES = (
    "Four eyes: you wrote or submitted this change, so someone else with the permission to "
    "approve campaigns must approve it."
)


CHANGED_SINCE_SHOWN = (
    "Not approved: the change awaiting approval is not the one you were shown (it was edited "
    "or submitted again since). Open Approve again to see what now awaits approval."
)


class LifecycleRefused(Exception):
    """An action the user may not take on the campaign as it is now; ``message`` says why."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class ChangeOutcome(StrEnum):
    UNCHANGED = "unchanged"
    APPLIED = "applied"  # the row changed: a draft, or a change approval does not guard
    PROPOSED = "proposed"  # waits for approval; nothing live changed


@dataclass(frozen=True)
class ChangeResult:
    outcome: ChangeOutcome
    version: CampaignVersion | None
    withdrawn: bool = False  # the change took a submitted draft back to draft
    replaced: CampaignVersion | None = None  # another author's pending change this one replaced


def _locked(campaign: Campaign, expected_revision: int | None = None) -> Campaign:
    """The campaign row, locked until the end of the transaction (the lifecycle's one lock),
    its revision bumped if still ``expected_revision`` (None: unchecked; else 412
    ``version_conflict``): every action and edit changes the ETag the API serves.

    ``FOR NO KEY UPDATE OF`` the campaign alone: a plain ``FOR UPDATE`` of the join would lock
    the partnership row too, and it and the campaign's ``FOR UPDATE`` would block the ``FOR KEY
    SHARE`` that every event insert takes on its partnership and every reward insert on its
    campaign, for as long as the caller's transaction lasts (a configuration apply's)."""
    revision_bump(instance=campaign, expected=expected_revision)
    locked = Campaign.objects.select_for_update(no_key=True, of=("self",))
    return locked.select_related("partnership").get(pk=campaign.pk)


def _contributors(campaign: Campaign, pending: CampaignVersion) -> set[int]:
    """Who wrote or submitted what approval would put live: the proposed change, or every
    version of a campaign that was never approved."""
    versions = [pending] if pending.version is None else campaign.versions.all()
    return {
        user_id
        for version in versions
        for user_id in (version.author_id, version.submitted_by_id)
        if user_id is not None
    }


def _refusal(action: Action, campaign: Campaign, user, pending: CampaignVersion | None):
    """Why ``user`` may not take ``action`` on ``campaign`` now, or None."""
    shown = campaign.display_status
    if action in (Action.APPROVE, Action.REJECT):
        if pending is None:
            return NOT_NOW[action].format(status=shown)
    elif campaign.status not in FROM_STATUS[action]:
        return NOT_NOW[action].format(status=shown)
    if not user.has_perm(PERMISSION[action]):
        return (
            f"You may not {action} campaigns: it needs the permission “{PERMISSION[action]}”. "
            "Ask an administrator."
        )
    if (
        action == Action.APPROVE
        and settings.CAMPAIGN_APPROVAL_FOUR_EYES
        and user.pk in _contributors(campaign, pending)
    ):
        return FOUR_EYES
    return None


def _check(action: Action, campaign: Campaign, user) -> CampaignVersion | None:
    pending = campaign_pending_change(campaign=campaign)
    if refusal := _refusal(action, campaign, user, pending):
        raise LifecycleRefused(refusal)
    return pending


def campaign_action_refusal(*, campaign: Campaign, user, action: Action) -> str | None:
    """Why ``user`` may not take ``action`` now (the services check it again, under lock)."""
    return _refusal(action, campaign, user, campaign_pending_change(campaign=campaign))


def campaign_actions_allowed(*, campaign: Campaign, user) -> frozenset[Action]:
    """The lifecycle actions ``user`` may take on ``campaign`` now (Pilot shows only these)."""
    pending = campaign_pending_change(campaign=campaign)
    return frozenset(a for a in Action if _refusal(a, campaign, user, pending) is None)


def _audit(action: Action, campaign: Campaign, actor, **changes) -> None:
    audit_record(
        actor=actor,
        action=f"campaign.{action}",
        target=campaign,
        partnership=campaign.partnership,
        changes=changes,
    )


def _runnable(campaign: Campaign) -> None:
    """Refuses to let a campaign that could not run go live."""
    if errors := campaign_validate(campaign=campaign):
        text = "; ".join(f"{field}: {message}" for field, message in errors.items())
        raise LifecycleRefused(f"It cannot go live as it is: {text}")


@transaction.atomic
def campaign_change(
    *, campaign: Campaign, author, expected_revision: int | None = None
) -> ChangeResult:
    """Saves an operator's edit of ``campaign`` (the unsaved instance holds the new values).

    A draft is changed in place; a submitted one goes back to draft (what is approved is what
    was submitted). For an approved campaign, a change that needs approval
    (``versions.needs_approval``) is kept as the one proposed version, replacing any earlier
    one, and the row (what the workers read) stays as it is; any other change is applied.
    ``expected_revision``: the revision the edit was made on (Pilot's form, If-Match)."""
    live = _locked(campaign, expected_revision)
    if not author.has_perm(CHANGE):
        raise LifecycleRefused(f"You may not change campaigns: it needs “{CHANGE}”.")
    if live.status in (Status.DRAFT, Status.SUBMITTED):
        withdrawn = live.status == Status.SUBMITTED
        if withdrawn:
            live.versions.filter(state=State.PROPOSED).update(state=State.SUPERSEDED)
        campaign.status = Status.DRAFT
        campaign_save(campaign=campaign, author=author)
        return ChangeResult(ChangeOutcome.APPLIED, live.versions.first(), withdrawn)

    campaign.status = live.status  # the lifecycle's actions move it, not an edit
    changes = snapshot_diff(campaign_snapshot(campaign=live), campaign_snapshot(campaign=campaign))
    if not changes:
        return ChangeResult(ChangeOutcome.UNCHANGED, None)
    if not needs_approval(changes):
        campaign_save(
            campaign=campaign,
            author=author,
            reason="Applied at once: it only describes the campaign or lowers a cap.",
        )
        return ChangeResult(ChangeOutcome.APPLIED, live.versions.first())

    campaign.full_clean()
    pending = live.versions.filter(state=State.PROPOSED).select_related("author").first()
    live.versions.filter(state=State.PROPOSED).update(state=State.SUPERSEDED)
    proposed = CampaignVersion.objects.create(
        campaign=live,
        state=State.PROPOSED,
        snapshot=campaign_snapshot(campaign=campaign),
        changes=changes,
        base_version=live.version,
        author=author,
        submitted_by=author,
        submitted_at=timezone.now(),
    )
    _audit(Action.SUBMIT, live, author, **changes)
    replaced = pending if pending is not None and pending.author_id != author.pk else None
    return ChangeResult(ChangeOutcome.PROPOSED, proposed, replaced=replaced)


@transaction.atomic
def campaign_submit(*, campaign: Campaign, actor, expected_revision: int | None = None) -> Campaign:
    """A draft goes to approval as it is now (its current version)."""
    live = _locked(campaign, expected_revision)
    _check(Action.SUBMIT, live, actor)
    _runnable(live)
    live.status = Status.SUBMITTED
    live.save(update_fields=["status", "updated_at"])
    submitted = {"state": State.PROPOSED, "submitted_by": actor, "submitted_at": timezone.now()}
    CampaignVersion.objects.update_or_create(  # created: a row written around campaign_save
        campaign=live,
        version=live.version,
        defaults=submitted,
        create_defaults={**submitted, "snapshot": campaign_snapshot(campaign=live)},
    )
    _audit(Action.SUBMIT, live, actor, status=[Status.DRAFT, Status.SUBMITTED])
    return live


@transaction.atomic
def campaign_approve(
    *,
    campaign: Campaign,
    approver,
    shown_id: int | None,
    expected_revision: int | None = None,
) -> CampaignVersion:
    """Approves what awaits approval: a submitted draft goes live (active, or scheduled until
    its start); a proposed change is applied to the row under a new version number, which the
    rewards issued from then on name. Four eyes (``CAMPAIGN_APPROVAL_FOUR_EYES``): not by
    whoever wrote or submitted it.

    ``shown_id`` is the pending version the approver saw: if the author changed it since (a
    new proposal, or a draft edited and submitted again: both are new versions), approving
    is refused, so nothing goes live that its approver did not see."""
    live = _locked(campaign, expected_revision)
    pending = _check(Action.APPROVE, live, approver)
    if pending.pk != shown_id:
        raise LifecycleRefused(CHANGED_SINCE_SHOWN)
    if live.status == Status.SUBMITTED:
        live.status = Status.ACTIVE
        _runnable(live)
        live.save(update_fields=["status", "updated_at"])
    else:
        previous = campaign_snapshot(campaign=live)
        snapshot_apply(campaign=live, snapshot=pending.snapshot, fields=pending.changes)
        try:
            live.full_clean()
        except ValidationError as exc:
            raise LifecycleRefused(
                "The change cannot go live as it is: " + "; ".join(exc.messages)
            ) from exc
        live.version += 1  # the row holds the highest numbered version
        live.save()
        pending.version = live.version
        pending.snapshot = campaign_snapshot(campaign=live)
        pending.changes = snapshot_diff(previous, pending.snapshot)
    pending.state = State.APPROVED
    pending.approver = approver
    pending.approved_at = timezone.now()
    pending.save()
    _audit(Action.APPROVE, live, approver, version=pending.version, **pending.changes)
    return pending


@transaction.atomic
def campaign_reject(
    *, campaign: Campaign, actor, reason: str, expected_revision: int | None = None
) -> CampaignVersion:
    """Sends what awaits approval back with a reason: a submitted draft returns to draft; a
    proposed change is dropped (the live campaign was never touched)."""
    live = _locked(campaign, expected_revision)
    pending = _check(Action.REJECT, live, actor)
    if not reason.strip():
        raise LifecycleRefused("Say why it is rejected: the author reads the reason.")
    if live.status == Status.SUBMITTED:
        live.status = Status.DRAFT
        live.save(update_fields=["status", "updated_at"])
    pending.state = State.REJECTED
    pending.rejected_by = actor
    pending.rejected_at = timezone.now()
    pending.reason = reason.strip()
    pending.save()
    _audit(Action.REJECT, live, actor, reason=pending.reason, version=pending.version)
    return pending


def _move(
    action: Action, campaign: Campaign, actor, to: str, expected_revision: int | None
) -> Campaign:
    live = _locked(campaign, expected_revision)
    _check(action, live, actor)
    before = live.status
    live.status = to
    if to == Status.ACTIVE:
        _runnable(live)
    live.save(update_fields=["status", "updated_at"])  # post_save empties the config cache
    _audit(action, live, actor, status=[before, to])
    return live


@transaction.atomic
def campaign_pause(*, campaign: Campaign, actor, expected_revision: int | None = None) -> Campaign:
    """Stops rewarding at once (no approval: it only stops payments)."""
    return _move(Action.PAUSE, campaign, actor, Status.PAUSED, expected_revision)


@transaction.atomic
def campaign_resume(*, campaign: Campaign, actor, expected_revision: int | None = None) -> Campaign:
    """Rewards again with the approved configuration; needs the approve permission."""
    return _move(Action.RESUME, campaign, actor, Status.ACTIVE, expected_revision)


@transaction.atomic
def campaign_end(*, campaign: Campaign, actor, expected_revision: int | None = None) -> Campaign:
    """Ends it for good, at once; a change still awaiting approval is dropped with it."""
    live = _move(Action.END, campaign, actor, Status.ENDED, expected_revision)
    live.versions.filter(state=State.PROPOSED).update(
        state=State.SUPERSEDED, reason="The campaign ended."
    )
    campaigns_ended.send(
        sender=Campaign, campaigns=[live], ended_at=live.updated_at, by=EndedBy.OPERATOR
    )
    return live


def campaign_act(
    *,
    campaign: Campaign,
    action: Action,
    user,
    reason: str = "",
    shown_id: int | None = None,
    expected_revision: int | None = None,
):
    """Pilot's buttons and the management API: one action by name (``shown_id``: the pending
    version the confirm page showed, which approval checks; ``expected_revision``: If-Match)."""
    revision = {"expected_revision": expected_revision}
    match action:
        case Action.SUBMIT:
            return campaign_submit(campaign=campaign, actor=user, **revision)
        case Action.APPROVE:
            return campaign_approve(campaign=campaign, approver=user, shown_id=shown_id, **revision)
        case Action.REJECT:
            return campaign_reject(campaign=campaign, actor=user, reason=reason, **revision)
        case Action.PAUSE:
            return campaign_pause(campaign=campaign, actor=user, **revision)
        case Action.RESUME:
            return campaign_resume(campaign=campaign, actor=user, **revision)
        case Action.END:
            return campaign_end(campaign=campaign, actor=user, **revision)


class Removal(StrEnum):
    DELETED = "deleted"
    ENDED = "ended"


@transaction.atomic
def campaign_remove(*, campaign: Campaign, actor, expected_revision: int | None) -> Removal:
    """ "Deletes" a campaign: a draft or a submitted one (nothing issued) is deleted; an approved
    one is ended (its rewards and versions stay whole, as the End button does); an ended one
    is refused (``LifecycleRefused``)."""
    live = _locked(campaign, expected_revision)
    if live.status in (Status.ACTIVE, Status.PAUSED):
        campaign_end(campaign=live, actor=actor)
        return Removal.ENDED
    if live.status == Status.ENDED:
        raise LifecycleRefused("It has ended already: its rewards and history keep it.")
    if not actor.has_perm("campaigns.delete_campaign"):
        raise LifecycleRefused(
            "You may not delete campaigns: it needs “campaigns.delete_campaign”."
        )
    _audit("delete", live, actor, status=[live.status, None])
    live.delete()
    return Removal.DELETED
