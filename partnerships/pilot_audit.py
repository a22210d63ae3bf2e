"""Audit entries for what operators do on Pilot's stock pages (keys, webhook secrets,
memberships, roles): the services behind them are also used by the API and commands, where
no operator acts, so the pages record it (``audit_record``, in the page's transaction)."""

from .services import audit_record


def pilot_audit(request, action: str, target, *, partnership=None, mode="", changes=None):
    """Records that the signed-in operator did ``action`` on ``target``."""
    return audit_record(
        actor=request.user,
        action=action,
        target=target,
        partnership=partnership,
        mode=mode,
        changes=changes,
    )


def form_changes(form) -> dict:
    """{field: [before, after]} of a model form's changed fields, as text (never a secret:
    the forms audited hold none)."""
    return {
        name: [audit_text(form.initial.get(name)), audit_text(form.cleaned_data.get(name))]
        for name in form.changed_data
    }


def audit_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, list | tuple | set):
        return ", ".join(sorted(str(item) for item in value))
    return str(value)
