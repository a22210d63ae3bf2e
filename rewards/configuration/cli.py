"""What the three commands share: the partnership and actor they name, the document they
read, the plan in words, and errors as ``CommandError`` (a message, a non-zero exit)."""

import sys
import uuid

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from config.errors import ApplicationError
from partnerships.models import Partnership

from .document import MAX_DOCUMENT_BYTES, Document, document_parse
from .plan import Action, Plan

SIGNS = {Action.CREATE: "+", Action.CHANGE: "~", Action.DELETE: "-"}


def partnership_named(value: str) -> Partnership:
    try:
        return Partnership.objects.get(pk=uuid.UUID(value))
    except (ValueError, Partnership.DoesNotExist) as exc:
        raise CommandError(f"No partnership {value!r} (give its id)") from exc


def actor_named(username: str | None):
    if not username:
        return None
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"No user {username!r}")
    return user


def document_read(path: str) -> Document:
    """The document in the file ``path`` ("-": standard input), validated."""
    try:
        if path == "-":
            text = sys.stdin.buffer.read(MAX_DOCUMENT_BYTES + 1)  # more is refused: too large
        else:
            with open(path, "rb") as file:
                text = file.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise CommandError(f"Cannot read {path}: {exc.strerror}") from exc
    return document_parse(text)


def command_error(exc: ApplicationError) -> CommandError:
    lines = [f"{exc.message} ({exc.code})"]
    lines += [f"  {error['field']}: {error['message']}" for error in exc.errors or []]
    return CommandError("\n".join(lines))


def _shown(value) -> str:
    if value in (None, ""):
        return "(none)"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def plan_lines(plan: Plan) -> list[str]:
    """The plan in words, one object per line and its fields below it."""
    if not plan.changes:
        return ["No changes: the configuration already is the document."]
    lines = []
    for change in plan.changes:
        status = f" (it is {change.status})" if change.status else ""
        lines.append(
            f"{SIGNS[change.action]} {change.kind} {change.key}: {change.action} "
            f"-> {change.outcome}{status}"
        )
        if change.action == Action.CHANGE:
            lines += [
                f"    {name}: {_shown(before)} -> {_shown(after)}"
                for name, (before, after) in change.fields.items()
            ]
    summary = plan.as_dict()["summary"]
    lines.append(", ".join(f"{count} to {action}" for action, count in summary.items()))
    if plan.approvals:
        lines.append("Awaiting approval after apply: " + ", ".join(plan.approvals))
    return lines
