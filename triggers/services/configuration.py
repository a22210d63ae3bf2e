"""Writing a trigger's configuration: the one service behind Pilot's trigger form and the
management API. The campaigns that read a trigger are the campaigns app's to check: it hands
its check in (``check``), as its Pilot page and its API views do."""

from collections.abc import Callable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ProtectedError, RestrictedError

from config.revisions import revision_bump, row_save
from partnerships.services import audit_record, model_changes

from ..models import Trigger

FIELDS = ("name", "description", "context_schema", "status", "client_sendable")

# Field -> messages refusing a change of a trigger (unsaved values on the instance).
TriggerCheck = Callable[[Trigger], dict[str, list[str]]]


@transaction.atomic
def trigger_save(
    *,
    trigger: Trigger,
    actor,
    expected_revision: int | None = None,
    check: TriggerCheck | None = None,
) -> Trigger:
    """Validates and writes a trigger: the model's rules, then ``check``'s (``ValidationError``
    per field); a saved trigger only if still at ``expected_revision`` (412 otherwise), which
    is bumped. Audited as ``trigger.create`` / ``trigger.change``."""
    trigger.full_clean()
    if check is not None and (errors := check(trigger)):
        raise ValidationError(errors)
    adding = trigger._state.adding
    before = {}
    if not adding:
        before = Trigger.objects.filter(pk=trigger.pk).values(*FIELDS).first() or {}
        revision_bump(instance=trigger, expected=expected_revision)
    row_save(instance=trigger)
    audit_record(
        actor=actor,
        action="trigger.create" if adding else "trigger.change",
        target=trigger,
        partnership=trigger.partnership,
        changes=model_changes(before, trigger, FIELDS),
    )
    return trigger


@transaction.atomic
def trigger_remove(*, trigger: Trigger, actor, expected_revision: int | None) -> bool:
    """ "Deletes" a trigger: really, if nothing references it; else (events, campaigns) it is
    archived: partners can no longer send it, and its history stays whole. True if deleted.
    The caller checks first what it would stop (campaigns')."""
    revision_bump(instance=trigger, expected=expected_revision)
    # FOR UPDATE, unlike the bump's lock, waits for a transaction that has just made an event
    # reference the trigger (its deferred foreign-key check holds FOR KEY SHARE on it) and keeps
    # new ones out until we commit: the references checked below are then all there are, and
    # a delete never fails at commit (the row is archived instead).
    locked = Trigger.objects.select_for_update().get(pk=trigger.pk)
    try:
        with transaction.atomic():
            locked.delete()
    except (ProtectedError, RestrictedError):
        trigger.status = Trigger.Status.ARCHIVED
        trigger.save(update_fields=["status", "revision", "updated_at"])
        audit_record(
            actor=actor,
            action="trigger.archive",
            target=trigger,
            partnership=trigger.partnership,
            changes={"status": ["active", "archived"]},
        )
        return False
    audit_record(
        actor=actor, action="trigger.delete", target=trigger, partnership=trigger.partnership
    )
    return True
