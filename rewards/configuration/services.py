"""Plan and apply a configuration document, in one transaction under the partnership's
configuration lock (``state.configuration_lock``), through the services Pilot calls.

Apply checks the fingerprint the plan was made against inside that transaction, after the
lock, so two operators cannot overwrite each other's work. Each object is written in its own
savepoint so that every problem is reported; if any object fails, the transaction is rolled
back and nothing is applied. A plan is the same run, always rolled back: it reports exactly
the errors an apply would meet (with an actor, its permissions too).
"""

from collections.abc import Callable
from dataclasses import dataclass, replace

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F

from campaigns.lifecycle import ChangeOutcome, LifecycleRefused, campaign_change, campaign_end
from campaigns.models import Campaign
from campaigns.services import (
    campaign_save,
    trigger_delete_check,
    trigger_schema_change_check,
)
from config.errors import ApplicationError, ErrorCode, field_error
from config.revisions import revision_bump
from partnerships.models import Partnership
from partnerships.selectors import partnerships_for_operator
from partnerships.services import audit_record
from rewards.webhooks.models import WebhookEndpoint
from rewards.webhooks.services import webhook_endpoint_create
from triggers.models import Trigger

from .document import CAMPAIGN_FIELDS, Document, invalid
from .plan import Action, Change, Kind, Outcome, Plan, configuration_diff
from .state import configuration_lock, configuration_state

PERMISSIONS = {
    Kind.SETTINGS: "partnerships.{}_partnership",
    Kind.TRIGGER: "triggers.{}_trigger",
    Kind.CAMPAIGN: "campaigns.{}_campaign",
    Kind.WEBHOOK: "rewards.{}_webhookendpoint",
}
# Ending a campaign or archiving a trigger or endpoint changes it; only a deletion deletes.
VERB = {Action.CREATE: "add", Action.CHANGE: "change"}


@dataclass(frozen=True)
class Applied:
    """What an apply did: the plan's changes with their outcomes, and the new fingerprint."""

    plan: Plan
    fingerprint: str

    def as_dict(self) -> dict:
        return {
            **self.plan.as_dict(),
            "fingerprint_before": self.plan.fingerprint,
            "fingerprint": self.fingerprint,
        }


def configuration_plan(*, partnership: Partnership, document: Document, actor=None) -> Plan:
    """What applying ``document`` would do; raises what applying it would raise (422 with
    every problem). Writes nothing: the run is rolled back."""
    with transaction.atomic():
        configuration_lock(partnership=partnership)
        state = configuration_state(partnership=partnership)
        plan = configuration_diff(state=state, document=document)
        if actor is not None:
            _authorize(actor, partnership, plan)
        _run(plan, state.partnership, actor)
        transaction.set_rollback(True)
    return plan


def configuration_apply(
    *,
    partnership: Partnership,
    document: Document,
    actor,
    expect: str | None = None,
    force: bool = False,
) -> Applied:
    """Applies ``document`` if the configuration is still the one fingerprinted ``expect``
    (412 ``configuration_changed`` otherwise; ``force`` skips the check). Atomic: a failing
    object applies nothing (422, every problem). Recorded with ``actor`` in the campaigns'
    versions and the audit log."""
    if expect is None and not force:
        raise ApplicationError(428, ErrorCode.FINGERPRINT_REQUIRED)
    try:
        with transaction.atomic():
            configuration_lock(partnership=partnership)
            state = configuration_state(partnership=partnership)
            if not force and expect != state.fingerprint:
                raise ApplicationError(
                    412,
                    ErrorCode.CONFIGURATION_CHANGED,
                    f"The configuration changed since the plan you were shown (its fingerprint "
                    f"was {expect}, it is now {state.fingerprint}): nothing was applied. Plan "
                    "again.",
                )
            plan = configuration_diff(state=state, document=document)
            _authorize(actor, partnership, plan)
            done = _run(plan, state.partnership, actor)
            after = configuration_state(partnership=partnership).fingerprint
            audit_record(
                actor=actor,
                action="configuration.apply",
                target=partnership,
                partnership=partnership,
                changes={
                    "fingerprint": [state.fingerprint, after],
                    "forced": force,
                    "changes": [change.as_dict() for change in done.changes],
                },
            )
    except IntegrityError as exc:  # at commit: a deferred foreign key met a row written meanwhile
        raise ApplicationError(
            409,
            ErrorCode.CONFIGURATION_CHANGED,
            "Rows were written meanwhile that conflict with this configuration (an event for a "
            "deleted trigger, a campaign with the same slug): nothing was applied. Plan again.",
        ) from exc
    return Applied(done, after)


def _authorize(actor, partnership: Partnership, plan: Plan) -> None:
    """The actor must be an operator of the partnership with the permissions Pilot would ask
    for each change (a lifecycle service checks its own again)."""
    if actor is None or not getattr(actor, "is_active", False):
        raise ApplicationError(403, ErrorCode.PERMISSION_DENIED, "No active operator given")
    if not partnerships_for_operator(user=actor).filter(pk=partnership.pk).exists():
        raise ApplicationError(
            403, ErrorCode.PERMISSION_DENIED, f"{actor} is not an operator of {partnership}"
        )
    needed = set()
    for change in plan.changes:
        deletes = change.action == Action.DELETE and change.outcome == Outcome.DELETED
        verb = "delete" if deletes else VERB.get(change.action, "change")
        needed.add(PERMISSIONS[change.kind].format(verb))
    missing = sorted(p for p in needed if not actor.has_perm(p))
    if missing:
        raise ApplicationError(
            403,
            ErrorCode.PERMISSION_DENIED,
            f"{actor} may not apply this configuration: it needs {', '.join(missing)}",
        )


# --- running a plan ---------------------------------------------------------------------------

# Campaigns end before triggers change (a trigger change may only break campaigns that stay),
# triggers are saved before the campaigns that read them, and deleted after.
STEPS = (
    (Kind.SETTINGS, None),
    (Kind.CAMPAIGN, Action.DELETE),
    (Kind.TRIGGER, Action.CREATE),
    (Kind.TRIGGER, Action.CHANGE),
    (Kind.CAMPAIGN, Action.CREATE),
    (Kind.CAMPAIGN, Action.CHANGE),
    (Kind.TRIGGER, Action.DELETE),
    (Kind.WEBHOOK, None),
)


@dataclass
class _Run:
    """What the writes of one run share: its partnership, actor, and the triggers by name
    (those created or renamed so far included)."""

    partnership: Partnership
    actor: object
    triggers: dict[str, Trigger]


class _Skipped(Exception):
    """An object that cannot be written because one it depends on failed (reported there)."""


def _run(plan: Plan, partnership: Partnership, actor) -> Plan:
    """Performs the plan's changes in ``STEPS`` order, each in a savepoint; raises 422 with
    every problem if any failed (the caller's transaction then applies nothing). Returns the
    plan with each change's actual outcome."""
    run = _Run(partnership, actor, {t.name: t for t in partnership.triggers.all()})
    errors, done = [], {}
    for kind, action in STEPS:
        for change in plan.changes:
            if change.kind != kind or action not in (None, change.action):
                continue
            where = _where(change)
            try:
                with transaction.atomic():
                    done[id(change)] = PERFORM[change.kind](change, run)
            except ValidationError as exc:
                errors.extend(_validation_errors(where, exc))
            except LifecycleRefused as exc:
                errors.append(field_error(where, "refused", exc.message))
            except ApplicationError as exc:
                errors.append(field_error(where, exc.code, exc.message))
            except IntegrityError:
                errors.append(
                    field_error(
                        where, "conflict", "A row written meanwhile conflicts with it: plan again"
                    )
                )
            except _Skipped:
                continue  # what it needs failed, and says so
    if errors:
        raise invalid(errors)
    return Plan(
        plan.fingerprint,
        tuple(done.get(id(change), change) for change in plan.changes),
    )


def _where(change: Change) -> str:
    return "settings" if change.kind == Kind.SETTINGS else f"{change.kind}s[{change.key}]"


def _validation_errors(where: str, exc: ValidationError) -> list[dict]:
    if not hasattr(exc, "error_dict"):
        return [field_error(where, "invalid", message) for message in exc.messages]
    errors = []
    for name, messages in exc.message_dict.items():
        name = {"trigger_id": "trigger", "event_types": "events"}.get(name, name)
        field = where if name == "__all__" else f"{where}.{name}"
        errors.extend(field_error(field, "invalid", message) for message in messages)
    return errors


def _audit(actor, action: str, target, partnership, changes: dict | None = None) -> None:
    if actor is not None:
        audit_record(
            actor=actor, action=action, target=target, partnership=partnership, changes=changes
        )


def _settings(change: Change, run: _Run) -> Change:
    partnership = change.target
    for name, (_, after) in change.fields.items():
        setattr(partnership, name, after)
    partnership.full_clean()
    revision_bump(instance=partnership, expected=None)  # the management API's ETag moves
    partnership.save(update_fields=[*change.fields, "updated_at"])
    _audit(run.actor, "partnership.change", partnership, partnership, change.fields)
    return change


def _trigger(change: Change, run: _Run) -> Change:
    trigger: Trigger = change.target
    if change.action == Action.DELETE:
        _trigger_removable(trigger, deleting=change.outcome == Outcome.DELETED)
        if change.outcome == Outcome.DELETED:
            trigger.delete()
            _audit(run.actor, "trigger.delete", trigger, trigger.partnership)
        else:
            trigger.status = Trigger.Status.ARCHIVED
            revision_bump(instance=trigger, expected=None)
            trigger.save(update_fields=["status", "updated_at"])
            _audit(run.actor, "trigger.archive", trigger, trigger.partnership, change.fields)
        return change
    desired = change.desired
    if trigger is None:
        trigger = Trigger(partnership=run.partnership)
    else:
        # As the trigger's Pilot form refuses it (campaigns.trigger_admin.TriggerForm).
        check = trigger_schema_change_check(
            trigger=trigger, new_schema=desired["context_schema"], new_name=desired["name"]
        )
        if check.refused:
            raise ValidationError(
                {
                    "context_schema": [
                        f"This change would stop the active campaign {broken}. Change the "
                        "campaign first, or pause it."
                        for broken in check.refused
                    ]
                }
            )
    for name, value in desired.items():
        setattr(trigger, name, value)
    trigger.full_clean()
    if trigger.pk is not None:
        revision_bump(instance=trigger, expected=None)
    trigger.save()
    run.triggers[trigger.name] = trigger
    verb = "create" if change.action == Action.CREATE else "change"
    _audit(run.actor, f"trigger.{verb}", trigger, trigger.partnership, change.fields)
    return change


def _trigger_removable(trigger: Trigger, *, deleting: bool) -> None:
    """Refuses to archive a trigger an active campaign is still on (its move to another trigger
    awaiting approval), or to delete one whose facts an active campaign reads (as Pilot's
    delete refuses it; an archived trigger's events still count in facts)."""
    on_it = Campaign.objects.filter(trigger=trigger, status=Campaign.Status.ACTIVE)
    messages = [
        f"The active campaign {campaign.name} ({campaign.slug}) is on this trigger (a change "
        "awaiting approval does not move it until approved). End or pause it first."
        for campaign in on_it
    ]
    messages += [
        f"The active campaign {broken} reads it. Change the campaign first, or pause it."
        for broken in (trigger_delete_check(trigger=trigger).refused if deleting else ())
    ]
    if messages:
        raise ValidationError(messages)


def _campaign(change: Change, run: _Run) -> Change:
    if change.action == Action.DELETE:
        return _campaign_delete(change, run)
    desired = change.desired
    trigger = run.triggers.get(desired["trigger"])
    if trigger is None:
        raise _Skipped
    if change.action == Action.CREATE:
        campaign = Campaign(partnership=run.partnership, status=Campaign.Status.DRAFT)
    else:
        campaign = Campaign.objects.get(pk=change.target.pk)
    _campaign_fields(campaign, desired, trigger)
    if change.action == Action.CREATE:
        campaign_save(campaign=campaign, author=run.actor, reason="Configuration applied.")
        return change
    if run.actor is None:  # a plan: what campaign_change checks before it writes
        campaign.full_clean()
        return change
    result = campaign_change(campaign=campaign, author=run.actor)
    outcome = {
        ChangeOutcome.PROPOSED: Outcome.AWAITS_APPROVAL,
        ChangeOutcome.UNCHANGED: Outcome.APPLIED,
    }.get(result.outcome, change.outcome)
    if result.outcome == ChangeOutcome.APPLIED and result.withdrawn:
        outcome = Outcome.BACK_TO_DRAFT
    return replace(change, outcome=outcome)


def _campaign_fields(campaign: Campaign, desired: dict, trigger: Trigger) -> None:
    """Sets the document's values, converted as the model reads them (errors at their field)."""
    campaign.trigger = trigger
    errors = {}
    for name in CAMPAIGN_FIELDS:
        if name == "trigger":
            continue
        model_field = Campaign._meta.get_field(name)
        try:
            setattr(campaign, name, model_field.to_python(desired[name]))
        except ValidationError as exc:
            errors[name] = exc.messages
    if errors:
        raise ValidationError(errors)


def _campaign_delete(change: Change, run: _Run) -> Change:
    campaign: Campaign = change.target
    if change.outcome == Outcome.DELETED:
        if campaign.rewards.exists():  # a draft never rewarded; kept for safety
            raise ApplicationError(
                409, ErrorCode.VALIDATION_ERROR, "It issued rewards: it can only be ended"
            )
        campaign.delete()
        _audit(run.actor, "campaign.delete", campaign, campaign.partnership)
    elif run.actor is None:  # a plan: end it as campaign_end would, for the checks after it
        Campaign.objects.filter(pk=campaign.pk).update(
            status=Campaign.Status.ENDED, revision=F("revision") + 1
        )
    else:
        campaign_end(campaign=campaign, actor=run.actor)
    return change


def _webhook(change: Change, run: _Run) -> Change:
    endpoint: WebhookEndpoint = change.target
    if change.action == Action.DELETE:
        if change.outcome == Outcome.DELETED:
            endpoint.delete()
            _audit(run.actor, "webhook.delete", endpoint, endpoint.partnership)
        else:
            endpoint.active = False
            revision_bump(instance=endpoint, expected=None)
            endpoint.save(update_fields=["active"])
            _audit(run.actor, "webhook.deactivate", endpoint, endpoint.partnership, change.fields)
        return change
    desired = change.desired
    creating = endpoint is None
    if creating:
        endpoint = WebhookEndpoint(partnership=run.partnership)
    endpoint.url = desired["url"]
    endpoint.modes = desired["modes"]
    endpoint.event_types = desired["events"]
    endpoint.active = desired["active"]
    endpoint.full_clean(exclude=["secret"] if creating else None)
    if creating:
        webhook_endpoint_create(endpoint=endpoint)
    else:
        revision_bump(instance=endpoint, expected=None)
        endpoint.save(update_fields=["url", "modes", "event_types", "active"])
    verb = "create" if creating else "change"
    _audit(run.actor, f"webhook.{verb}", endpoint, endpoint.partnership, change.fields)
    return change


PERFORM: dict[Kind, Callable[[Change, _Run], Change]] = {
    Kind.SETTINGS: _settings,
    Kind.TRIGGER: _trigger,
    Kind.CAMPAIGN: _campaign,
    Kind.WEBHOOK: _webhook,
}
