"""Revisions: an integer on each configuration row (partnership, trigger, campaign, webhook
endpoint), bumped by every write of its service, so that two writers cannot overwrite each
other. The management API sends it as the ETag and requires it back in ``If-Match``; Pilot's
change forms carry the revision they loaded. Both hand it to the same service, which bumps it
here first, in its transaction.

The bump is one conditional ``UPDATE ... SET revision = revision + 1 WHERE pk = %s AND
revision = %s``: a row lock that does not touch a key column (PostgreSQL's FOR NO KEY UPDATE),
so it never blocks the ``FOR KEY SHARE`` that inserting an event or a reward takes on the
partnership, trigger or campaign it references. A concurrent writer with the same revision
waits for the first to commit, re-reads the row, finds the revision moved, and is refused.
"""

from django.db import IntegrityError, transaction
from django.db.models import F, Model

from .errors import ApplicationError, ErrorCode


def version_conflict(current: int | None = None) -> ApplicationError:
    message = None
    if current is not None:
        message = (
            f"It changed since you read it (it is at revision {current} now): read it again, "
            "reapply your change and send its ETag"
        )
    return ApplicationError(412, ErrorCode.VERSION_CONFLICT, message)


def revision_bump(*, instance: Model, expected: int | None) -> int:
    """Bumps ``instance``'s revision if it is still ``expected`` (None: whatever it is now),
    sets the new one on ``instance`` and returns it; else raises 412 ``version_conflict``.
    Call it inside the write's transaction, before the write: the row stays locked until it
    commits."""
    rows = type(instance)._default_manager.filter(pk=instance.pk)
    matching = rows if expected is None else rows.filter(revision=expected)
    if not matching.update(revision=F("revision") + 1):
        current = rows.values_list("revision", flat=True).first()
        if current is None:
            raise ApplicationError(404, ErrorCode.NOT_FOUND)
        raise version_conflict(current)
    instance.revision = rows.values_list("revision", flat=True).get()
    return instance.revision


def revision_stale(*, instance: Model, expected: int | None) -> str | None:
    """Why a form that loaded revision ``expected`` of ``instance`` may not save it, or None:
    what Pilot shows at the top of the form (the service checks again under the row lock)."""
    if expected is None or instance.pk is None:
        return None
    current = (
        type(instance)._default_manager.filter(pk=instance.pk).values_list("revision", flat=True)
    )
    current = current.first()
    if current is None or current == expected:
        return None
    return (
        f"Someone changed this {instance._meta.verbose_name} since you opened it (through "
        f"Pilot or the management API; revision {expected} then, {current} now). Your changes "
        "were not saved: reload the page to see theirs, then make yours again."
    )


def row_save(*, instance: Model, **save_kwargs) -> None:
    """``instance.save()``, where a concurrent writer may have just made it a duplicate (two
    creates of one slug or name: both passed the model's checks, then the second's insert
    waited on the first's unique index entry and failed once it committed). That one is
    refused as a sequential duplicate is: the model's unique checks, run again, now find the
    other row (``ValidationError`` at the field). 409 ``write_conflict`` if they do not."""
    try:
        with transaction.atomic():
            instance.save(**save_kwargs)
    except IntegrityError as exc:
        instance.validate_unique()
        instance.validate_constraints()
        raise ApplicationError(
            409,
            ErrorCode.WRITE_CONFLICT,
            f"A concurrent write conflicts with this {instance._meta.verbose_name}: read it "
            "again and retry",
        ) from exc
