import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import (
    DateTimeField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from config.localcache import config_cache
from config.revisions import revision_bump, row_save
from partnerships.models import Partnership
from partnerships.services import audit_record
from triggers.models import Trigger, TriggerEvent

from .client_sendable import campaign_client_sendable_errors, trigger_client_sendable_refusals
from .compiler import CampaignInvalid, CampaignSpec, TriggerSchema, compile_campaign
from .engine import candidate_until
from .models import Campaign, CampaignVersion
from .selectors import campaign_spec, end_grace_days, trigger_schemas
from .signals import EndedBy, campaigns_ended
from .versions import campaign_snapshot, snapshot_diff


def _compile_errors(spec: CampaignSpec, schemas: list[TriggerSchema]) -> dict[str, str]:
    try:
        compile_campaign(spec, schemas)
    except CampaignInvalid as exc:
        return exc.errors
    return {}


# A campaign's dates: far enough either way for any real schedule, and far from the ends of
# Python's calendar, which the end plus the lateness allowed after it must not pass.
DATES_FROM = datetime(2000, 1, 1, tzinfo=UTC)
DATES_UNTIL = datetime(2201, 1, 1, tzinfo=UTC)


def _date_errors(campaign: Campaign) -> dict[str, str]:
    errors = {}
    for name in ("starts_at", "ends_at"):
        value = getattr(campaign, name)
        if not isinstance(value, datetime):
            continue  # empty, or the field's own error
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        if not DATES_FROM <= value < DATES_UNTIL:
            errors[name] = f"A date from {DATES_FROM.year} to {DATES_UNTIL.year - 1}"
    return errors


def campaign_validate(*, campaign: Campaign) -> dict[str, str]:
    """Field -> message for everything that would keep the campaign from running."""
    if campaign.trigger_id is None or campaign.partnership_id is None:
        return _date_errors(campaign)  # the form reports the missing fields itself
    errors = _date_errors(campaign)
    compiled = _compile_errors(
        campaign_spec(campaign=campaign), trigger_schemas(partnership_id=campaign.partnership_id)
    )
    for field, message in compiled.items():
        errors.setdefault(field, message)
    for field, message in campaign_client_sendable_errors(campaign=campaign).items():
        errors.setdefault(field, message)
    if campaign.status == Campaign.Status.ACTIVE and campaign.ends_at:
        days = _days_judging_after_end(end_grace_days(partnership=campaign.partnership))
        if candidate_until(campaign.ends_at, days) <= timezone.now():
            errors.setdefault(
                "status",
                f"It ended more than {days} days ago (the partnership's maximum lateness plus "
                "the longest delivery delay): no event can reach it any more. Move its end date "
                "to reopen it.",
            )
    return errors


@transaction.atomic
def campaign_save(
    *,
    campaign: Campaign,
    author=None,
    reason: str = "",
    expected_revision: int | None = None,
) -> Campaign:
    """Validates and writes the row; a change to a saved campaign bumps its version, kept with
    its author and its difference from the one before.

    This writes what the workers read, with no approval: for a draft, and for code that owns a
    campaign's configuration (tests' factories, the demo, benchmarks). An operator's change of
    an approved campaign goes through ``campaigns.lifecycle.campaign_change``.

    The saved row is locked to read its version, so concurrent saves of one campaign queue
    there and get consecutive versions. Its revision is bumped, if still ``expected_revision``
    (None: unchecked; 412 ``version_conflict`` otherwise)."""
    campaign.full_clean()
    before = None
    if not campaign._state.adding:
        revision_bump(instance=campaign, expected=expected_revision)
        # NO KEY: reward inserts take FOR KEY SHARE on the campaign and must not wait.
        saved = Campaign.objects.select_for_update(no_key=True).values_list("version", flat=True)
        previous = saved.get(pk=campaign.pk)
        campaign.version = previous + 1
        before = (
            CampaignVersion.objects.filter(campaign=campaign, version=previous)
            .values_list("snapshot", flat=True)
            .first()
        )
    adding = campaign._state.adding
    row_save(instance=campaign)
    snapshot = campaign_snapshot(campaign=campaign)
    changes = snapshot_diff(before, snapshot)
    if author is not None:  # an operator's (Pilot, the management API); not code's own
        audit_record(
            actor=author,
            action="campaign.create" if adding else "campaign.change",
            target=campaign,
            partnership=campaign.partnership,
            changes=changes,
        )
    unapproved = campaign.status in (Campaign.Status.DRAFT, Campaign.Status.SUBMITTED)
    CampaignVersion.objects.create(
        campaign=campaign,
        version=campaign.version,
        state=CampaignVersion.State.DRAFT if unapproved else CampaignVersion.State.APPROVED,
        snapshot=snapshot,
        changes=changes,
        author=author,
        reason=reason,
    )
    return campaign


def _days_judging_after_end(grace_days: int) -> int:
    """An event that reached us in time (before the end plus ``grace_days``) may have been
    scheduled for delivery up to ``EVENT_MAX_DELAY_DAYS`` later: until then, it may still come."""
    return grace_days + settings.EVENT_MAX_DELAY_DAYS


@transaction.atomic
def campaigns_end_expired(*, now: datetime | None = None) -> int:
    """Active and paused campaigns that no event can reach any more (their end plus the
    partnership's lateness plus the longest delivery delay) become ``ended``, so that Pilot
    shows it, and a change of theirs still awaiting approval is dropped; ``campaigns_ended`` is
    sent with them in this transaction. Returns how many.

    Their rows are locked first, skipping any an operator holds (an edit, an End): a campaign
    ended meanwhile is no longer active when its lock is taken, so each ends once."""
    now = now or timezone.now()
    grace = Coalesce(
        F("partnership__max_event_lateness_days"), Value(settings.CAMPAIGN_END_GRACE_DAYS)
    )
    days = _days_judging_after_end(grace)
    until = ExpressionWrapper(
        F("ends_at") + ExpressionWrapper(days * timedelta(days=1), output_field=DurationField()),
        output_field=DateTimeField(),
    )
    # An event that happened before the end and still waits (workers behind, a retry) keeps
    # the campaign open until it is judged: it was accepted in time.
    waiting = TriggerEvent.objects.filter(
        trigger_id=OuterRef("trigger_id"),
        status__in=[TriggerEvent.Status.SCHEDULED, TriggerEvent.Status.QUEUED],
        occurred_at__lt=OuterRef("ends_at"),
    )
    ended = list(
        Campaign.objects.filter(status__in=[Campaign.Status.ACTIVE, Campaign.Status.PAUSED])
        .alias(judging_until=until)
        .filter(judging_until__lte=now)
        .filter(~Exists(waiting))
        .select_related("partnership")
        .select_for_update(no_key=True, of=("self",), skip_locked=True)
        .order_by("pk")
    )
    if not ended:
        return 0
    Campaign.objects.filter(pk__in=[campaign.pk for campaign in ended]).update(
        status=Campaign.Status.ENDED, updated_at=now, revision=F("revision") + 1
    )
    for campaign in ended:
        campaign.status, campaign.updated_at = Campaign.Status.ENDED, now
        campaign.revision += 1
    config_cache.invalidate()  # an UPDATE sends no post_save
    # As when an operator ends one (campaigns.lifecycle.campaign_end).
    CampaignVersion.objects.filter(state=CampaignVersion.State.PROPOSED, campaign__in=ended).update(
        state=CampaignVersion.State.SUPERSEDED, reason="The campaign ended."
    )
    campaigns_ended.send(sender=Campaign, campaigns=ended, ended_at=now, by=EndedBy.SCHEDULE)
    return len(ended)


@dataclass(frozen=True)
class CampaignBreak:
    """A campaign a trigger change would stop compiling, and why."""

    campaign_id: uuid.UUID
    name: str
    slug: str
    status: str
    errors: Mapping[str, str]

    def __str__(self) -> str:
        errors = "; ".join(f"{field}: {message}" for field, message in self.errors.items())
        return f"{self.name} ({self.slug}) — {errors}"


@dataclass(frozen=True)
class TriggerChangeCheck:
    refused: tuple[CampaignBreak, ...]  # active campaigns the change would stop
    warned: tuple[CampaignBreak, ...]  # draft and paused ones: they could not be activated


def trigger_schema_change_check(
    *,
    trigger: Trigger,
    new_schema: dict,
    new_name: str | None = None,
    new_partnership_id: uuid.UUID | None = None,
) -> TriggerChangeCheck:
    """What a new schema (and name, or partnership) for a saved trigger would do to the
    campaigns that read it: those on the trigger and those whose facts name it, unless ended.
    A campaign counts as broken if it compiles now and would not after the change."""
    if trigger.pk is None:
        return TriggerChangeCheck((), ())
    before = trigger_schemas(partnership_id=trigger.partnership_id)
    old_name = next(schema.name for schema in before if schema.id == trigger.pk)
    others = [schema for schema in before if schema.id != trigger.pk]
    moved = new_partnership_id not in (None, trigger.partnership_id)
    changed = TriggerSchema(trigger.pk, new_name or old_name, new_schema)
    return _breaks(trigger, old_name, before, others if moved else [*others, changed])


def trigger_delete_check(*, trigger: Trigger) -> TriggerChangeCheck:
    """What deleting a trigger would do to the campaigns whose facts read it (campaigns on it
    keep it from being deleted: their foreign key protects it)."""
    before = trigger_schemas(partnership_id=trigger.partnership_id)
    old_name = next(schema.name for schema in before if schema.id == trigger.pk)
    return _breaks(trigger, old_name, before, [s for s in before if s.id != trigger.pk])


def _breaks(trigger: Trigger, old_name: str, before: list, after: list) -> TriggerChangeCheck:
    readers = (
        Campaign.objects.filter(partnership_id=trigger.partnership_id)
        .filter(Q(trigger_id=trigger.pk) | Q(facts__contains=[{"trigger": old_name}]))
        .exclude(status=Campaign.Status.ENDED)
        .order_by("-priority", "created_at")
    )
    refused, warned = [], []
    for campaign in readers:
        spec = campaign_spec(campaign=campaign)
        errors = _compile_errors(spec, after)
        if not errors or _compile_errors(spec, before):
            continue
        broken = CampaignBreak(campaign.id, campaign.name, campaign.slug, campaign.status, errors)
        (refused if campaign.status == Campaign.Status.ACTIVE else warned).append(broken)
    return TriggerChangeCheck(tuple(refused), tuple(warned))


def user_schema_change_check(*, partnership: Partnership, new_schema: dict) -> TriggerChangeCheck:
    """What a new user-attribute schema would do to the partnership's campaigns (all of them
    may read ``user.<name>``), unless ended: as ``trigger_schema_change_check``, an active one
    that compiles now and would not after is refused, a draft or paused one warned."""
    schemas = trigger_schemas(partnership_id=partnership.pk)
    campaigns = (
        Campaign.objects.filter(partnership_id=partnership.pk)
        .exclude(status=Campaign.Status.ENDED)
        .select_related("partnership")
        .order_by("-priority", "created_at")
    )
    refused, warned = [], []
    for campaign in campaigns:
        spec = campaign_spec(campaign=campaign)
        errors = _compile_errors(replace(spec, user_schema=new_schema), schemas)
        if not errors or _compile_errors(spec, schemas):
            continue
        broken = CampaignBreak(campaign.id, campaign.name, campaign.slug, campaign.status, errors)
        (refused if campaign.status == Campaign.Status.ACTIVE else warned).append(broken)
    return TriggerChangeCheck(tuple(refused), tuple(warned))


def trigger_change_refusal(broken: CampaignBreak) -> str:
    return (
        f"This change would stop the active campaign {broken}. Change the campaign first, "
        "or pause it."
    )


def trigger_change_errors(trigger: Trigger) -> dict[str, list[str]]:
    """The refusals of a change of a saved trigger (its new values unsaved on ``trigger``):
    the active campaigns it would stop, at ``context_schema``. Pilot's trigger form and the
    management API both ask here (``triggers.services.configuration.trigger_save``'s check)."""
    if trigger.pk is None:
        return {}
    saved = Trigger.objects.filter(pk=trigger.pk).first()
    if saved is None:
        return {}
    check = trigger_schema_change_check(
        trigger=saved,
        new_schema=trigger.context_schema,
        new_name=trigger.name,
        new_partnership_id=trigger.partnership_id,
    )
    errors = {}
    if refusals := [trigger_change_refusal(broken) for broken in check.refused]:
        errors["context_schema"] = refusals
    if trigger.client_sendable and (marking := trigger_client_sendable_messages(trigger)):
        errors["client_sendable"] = marking
    archiving = saved.status == Trigger.Status.ACTIVE and trigger.status != saved.status
    if archiving and (on_it := trigger_archive_refusals(saved)):
        errors["status"] = on_it
    return errors


def trigger_client_sendable_messages(trigger: Trigger) -> list[str]:
    """Why the trigger cannot be client-sendable, at the field (Pilot's form and the API)."""
    return [
        f"{refusal} Users write this trigger's context themselves: bound the campaign first, "
        "or end it."
        for refusal in trigger_client_sendable_refusals(trigger=trigger)
    ]


def trigger_archive_refusals(trigger: Trigger) -> list[str]:
    """Why the trigger may not be archived (or deleted): the active campaigns on it, which
    would stop receiving its events. Campaigns whose facts read it keep counting its events."""
    on_it = Campaign.objects.filter(trigger_id=trigger.pk, status=Campaign.Status.ACTIVE)
    return [
        f"The active campaign {campaign.name} ({campaign.slug}) is on the trigger "
        f"{trigger.name}: end or pause it first."
        for campaign in on_it.order_by("-priority", "created_at")
    ]


def trigger_delete_refusal(trigger: Trigger, broken: CampaignBreak) -> str:
    return (
        f"The trigger {trigger.name} was not deleted: the active campaign {broken} reads it. "
        "Change the campaign first, or pause it."
    )
