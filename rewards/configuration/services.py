"""Plan and apply a configuration document, in one transaction under the partnership's
configuration lock (``state.configuration_lock``), through the services Pilot calls.

Apply checks the plan's fingerprint (of the configuration and of the document) inside that
transaction, after the lock, so two operators cannot overwrite each other's work, and a
document edited after its plan is not applied unreviewed. Each object is written in its own
savepoint so that every problem is reported; if any object fails, the transaction is rolled
back and nothing is applied. A plan is the same run, always rolled back: it reports exactly
the errors an apply would meet (with an actor, its permissions too).
"""

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, replace

from django.core.exceptions import ValidationError
from django.db import IntegrityError, OperationalError, transaction

from campaigns.client_sendable import trigger_client_sendable_refusals
from campaigns.lifecycle import ChangeOutcome, LifecycleRefused, campaign_change, campaign_remove
from campaigns.models import Campaign
from campaigns.services import (
    campaign_save,
    trigger_change_errors,
    trigger_change_refusal,
    trigger_delete_check,
    trigger_delete_refusal,
    user_schema_change_check,
)
from config.errors import ApplicationError, ErrorCode, field_error
from partnerships.models import Partnership
from partnerships.selectors import partnerships_for_operator
from partnerships.services import audit_record, partnership_save
from rewards.webhooks.models import WebhookEndpoint
from rewards.webhooks.services import webhook_endpoint_remove, webhook_endpoint_save
from triggers.models import Trigger
from triggers.schemas import validate_context_schema
from triggers.services.configuration import trigger_remove, trigger_save

from .document import CAMPAIGN_FIELDS, Document, invalid
from .plan import Action, Change, Kind, Outcome, Plan, configuration_diff, plan_fingerprint
from .state import LOCK_TIMEOUT, configuration_lock, configuration_state

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


def configuration_plan(
    *,
    partnership: Partnership,
    document: Document,
    actor=None,
    may: Callable[[str], bool] | None = None,
) -> Plan:
    """What applying ``document`` would do; raises what applying it would raise (422 with
    every problem). Writes nothing: the run is rolled back."""
    with _lock_waits_refused(), transaction.atomic():
        configuration_lock(partnership=partnership)
        state = configuration_state(partnership=partnership)
        plan = configuration_diff(state=state, document=document)
        if actor is not None:
            _authorize(actor, partnership, plan, may)
        _run(plan, state.partnership, actor)
        transaction.set_rollback(True)
    return plan


@contextmanager
def _lock_waits_refused():
    """A lock not had within ``state.LOCK_TIMEOUT``: 503, nothing applied, try again."""
    try:
        yield
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != "55P03":
            raise
        raise ApplicationError(
            503,
            ErrorCode.SERVICE_UNAVAILABLE,
            f"The partnership's configuration stayed locked for over {LOCK_TIMEOUT} (another "
            "plan or apply, an edit in Pilot): nothing was applied. Try again.",
            headers={"Retry-After": "5"},
        ) from exc


def configuration_apply(
    *,
    partnership: Partnership,
    document: Document,
    actor,
    expect: str | None = None,
    force: bool = False,
    may: Callable[[str], bool] | None = None,
) -> Applied:
    """Applies ``document`` if ``expect`` is the fingerprint of its plan: the configuration is
    still the one planned against and the document the one planned (412
    ``configuration_changed`` otherwise; ``force`` skips the check). Atomic: a failing
    object applies nothing (422, every problem). Recorded with ``actor`` in the campaigns'
    versions and the audit log. ``may``: whether the actor holds a permission (default: the
    user's own; the management API passes its staff token's)."""
    if expect is None and not force:
        raise ApplicationError(428, ErrorCode.FINGERPRINT_REQUIRED)
    try:
        with _lock_waits_refused(), transaction.atomic():
            configuration_lock(partnership=partnership)
            state = configuration_state(partnership=partnership)
            planned = plan_fingerprint(state, document)
            if not force and expect != planned:
                raise ApplicationError(
                    412,
                    ErrorCode.CONFIGURATION_CHANGED,
                    f"The configuration or the document changed since the plan you were shown "
                    f"(its fingerprint was {expect}; this document's against the configuration "
                    f"now is {planned}): nothing was applied. Plan again.",
                )
            plan = configuration_diff(state=state, document=document)
            _authorize(actor, partnership, plan, may)
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


def _authorize(actor, partnership: Partnership, plan: Plan, may=None) -> None:
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
    missing = sorted(p for p in needed if not (may or actor.has_perm)(p))
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
    errors += _client_sendable_errors(plan, run)
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


def _settings(change: Change, run: _Run) -> Change:
    partnership = change.target
    for name, (_, after) in change.fields.items():
        setattr(partnership, name, after)
    if "user_attribute_schema" in change.fields:
        _user_schema_check(partnership)
    partnership_save(partnership=partnership, actor=run.actor)
    return change


def _user_schema_check(partnership: Partnership) -> None:
    """As Pilot's partnership form checks it (``campaigns.user_schema``): a valid schema that
    stops no active campaign."""
    schema = partnership.user_attribute_schema
    try:
        validate_context_schema(schema)
    except ValidationError as exc:
        raise ValidationError({"user_attribute_schema": exc.messages}) from exc
    refused = user_schema_change_check(partnership=partnership, new_schema=schema).refused
    if refused:
        raise ValidationError(
            {"user_attribute_schema": [trigger_change_refusal(broken) for broken in refused]}
        )


def _client_sendable_errors(plan: Plan, run: _Run) -> list[dict]:
    """A trigger the document marks client-sendable, checked once every campaign is written (as
    Pilot's trigger form refuses it): each live campaign reading it must bound a user's money."""
    errors = []
    for change in plan.changes:
        marks = change.kind == Kind.TRIGGER and change.action != Action.DELETE
        if not marks or not change.desired["client_sendable"]:
            continue
        if change.action == Action.CHANGE and "client_sendable" not in change.fields:
            continue
        trigger = run.triggers.get(change.key)
        for refusal in trigger_client_sendable_refusals(trigger=trigger) if trigger else ():
            errors.append(
                field_error(
                    f"triggers[{change.key}].client_sendable",
                    "invalid",
                    f"{refusal} Users write this trigger's context themselves: bound the "
                    "campaign first, or end it.",
                )
            )
    return errors


def _trigger(change: Change, run: _Run) -> Change:
    trigger: Trigger = change.target
    if change.action == Action.DELETE:
        _trigger_removable(trigger, deleting=change.outcome == Outcome.DELETED)
        deleted = trigger_remove(trigger=trigger, actor=run.actor, expected_revision=None)
        return replace(change, outcome=Outcome.DELETED if deleted else Outcome.ARCHIVED)
    if trigger is None:
        trigger = Trigger(partnership=run.partnership)
    for name, value in change.desired.items():
        setattr(trigger, name, value)
    # Refused as the trigger's Pilot form refuses it: a change that would stop an active campaign.
    trigger_save(trigger=trigger, actor=run.actor, check=_schema_change_errors)
    run.triggers[trigger.name] = trigger
    return change


def _schema_change_errors(trigger: Trigger) -> dict[str, list[str]]:
    """``trigger_change_errors`` but for marking the trigger client-sendable, which a document
    may do together with bounding its campaigns: checked once every campaign is written
    (``_client_sendable_errors``), not before."""
    errors = trigger_change_errors(trigger)
    errors.pop("client_sendable", None)
    return errors


def _trigger_removable(trigger: Trigger, *, deleting: bool) -> None:
    """Refuses to archive a trigger an active campaign is still on (its move to another trigger
    awaiting approval), or to delete one whose facts an active campaign reads (as Pilot's
    delete refuses it; an archived trigger's events still count in facts)."""
    refused = list(trigger.campaigns.filter(status=Campaign.Status.ACTIVE))
    if deleting:
        refused += trigger_delete_check(trigger=trigger).refused
    if refused:
        raise ValidationError([trigger_delete_refusal(trigger, broken) for broken in refused])


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
    if run.actor is not None:
        removed = campaign_remove(campaign=campaign, actor=run.actor, expected_revision=None)
        return replace(change, outcome=Outcome(removed))
    # A plan: what campaign_remove would leave, for the checks after it.
    if change.outcome == Outcome.DELETED:
        campaign.delete()
    else:
        Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.ENDED)
    return change


def _webhook(change: Change, run: _Run) -> Change:
    endpoint: WebhookEndpoint = change.target
    if change.action == Action.DELETE:
        deleted = webhook_endpoint_remove(
            endpoint=endpoint, actor=run.actor, expected_revision=None
        )
        return replace(change, outcome=Outcome.DELETED if deleted else Outcome.DEACTIVATED)
    if endpoint is None:
        endpoint = WebhookEndpoint(partnership=run.partnership)
    endpoint.url = change.desired["url"]
    endpoint.modes = change.desired["modes"]
    endpoint.event_types = change.desired["events"]
    endpoint.active = change.desired["active"]
    # A new endpoint's signing secret is not shown here: rotate it in Pilot to see one.
    webhook_endpoint_save(endpoint=endpoint, actor=run.actor)
    return change


PERFORM: dict[Kind, Callable[[Change, _Run], Change]] = {
    Kind.SETTINGS: _settings,
    Kind.TRIGGER: _trigger,
    Kind.CAMPAIGN: _campaign,
    Kind.WEBHOOK: _webhook,
}
