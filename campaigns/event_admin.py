"""Trigger events in Pilot with their campaigns' decisions in words (``campaigns/admin.py``
registers it over the triggers app's own)."""

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from triggers.admin import TriggerEventAdmin
from triggers.models import TriggerEvent

from .decisions import outcome_label
from .selectors import trigger_event_decisions


class TriggerEventWithDecisionsAdmin(TriggerEventAdmin):
    """The event's decisions in words (they are stored as codes and parameters)."""

    readonly_fields = [
        *(name for name in TriggerEventAdmin.readonly_fields if name != "decisions"),
        "decision_table",
    ]
    fieldsets = tuple(
        (
            title,
            {
                **options,
                "fields": tuple(
                    "decision_table" if name == "decisions" else name for name in options["fields"]
                ),
            },
        )
        for title, options in TriggerEventAdmin.fieldsets
    )

    @admin.display(description="Decisions")
    def decision_table(self, event: TriggerEvent) -> str:
        """One row per candidate campaign: its outcome, what it issued, why in words, the
        values of the facts its rule read, and the limits it met."""
        rows = trigger_event_decisions(event=event)
        if not rows:
            return "—"
        return format_html(
            '<table id="decisions"><thead><tr><th>Campaign</th><th>Outcome</th><th>Amount</th>'
            "<th>Why</th><th>Facts it saw</th><th>Limits it met</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (
                        d.campaign,
                        d.outcome,
                        d.amount or "",
                        d.message or outcome_label(d.outcome),
                        _facts_in_words(d.facts),
                        "; ".join(d.limits) or "—",
                    )
                    for d in rows
                ),
            ),
        )


def _facts_in_words(facts) -> str:
    if not facts:
        return "—"
    return ", ".join(f"{name} = {value}" for name, value in facts.items())
