"""The filters of Pilot's report pages: all in the URL's query string, so a report can be shared.

    ?partnership=<uuid>&mode=live&from=2026-11-01&to=2026-11-30&campaign=<uuid>&trigger=<name>

A missing or empty value takes its default (the operator's first partnership, live, the last
30 local days); a wrong one is an error at its field, shown on the page (never a 500). The
partnerships offered are those of ``partnerships_for_operator``; campaigns and triggers those of
the chosen partnership.
"""

from datetime import date, timedelta
from urllib.parse import urlencode

from django import forms
from django.db.models import QuerySet
from django.utils import timezone

from campaigns.models import Campaign
from config.errors import ApplicationError
from partnerships.models import Partnership
from triggers.models import Trigger

from .selectors import ReportScope, report_scope

DEFAULT_DAYS = 30
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2099, 12, 31)
MODES = [("live", "Live"), ("test", "Test")]


class ReportFilterForm(forms.Form):
    partnership = forms.ModelChoiceField(
        queryset=Partnership.objects.none(),
        empty_label=None,
        error_messages={
            "invalid_choice": "You cannot see that partnership (or it does not exist)."
        },
    )
    mode = forms.ChoiceField(choices=MODES)
    campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.none(),
        required=False,
        empty_label="All campaigns",
        error_messages={"invalid_choice": "That campaign is not in this partnership."},
    )
    trigger = forms.ModelChoiceField(
        queryset=Trigger.objects.none(),
        to_field_name="name",  # as the partner API and the exports take it
        required=False,
        empty_label="All triggers",
        error_messages={"invalid_choice": "That trigger is not in this partnership."},
    )

    def __init__(self, query, *, partnerships: QuerySet[Partnership]) -> None:
        partnership = _chosen(query.get("partnership"), partnerships)
        super().__init__(_with_defaults(query, partnership))
        self.fields["partnership"].queryset = partnerships
        if partnership is not None:
            self.fields["campaign"].queryset = Campaign.objects.filter(
                partnership=partnership
            ).order_by("name")
            self.fields["trigger"].queryset = Trigger.objects.filter(
                partnership=partnership
            ).order_by("name")
        self.scope: ReportScope | None = None

    def clean(self) -> dict:
        cleaned = super().clean()
        for name in ("from", "to"):  # beyond these, local midnights overflow datetime
            if name in cleaned and not FIRST_DAY <= cleaned[name] <= LAST_DAY:
                self.add_error(name, f"Choose a day from {FIRST_DAY} to {LAST_DAY}.")
        if self.errors:
            return cleaned
        try:
            self.scope = report_scope(
                partnership=cleaned["partnership"],
                mode=cleaned["mode"],
                first_day=cleaned["from"],
                last_day=cleaned["to"],
                campaign_ids=[cleaned["campaign"].pk] if cleaned["campaign"] else (),
                trigger_ids=[cleaned["trigger"].pk] if cleaned["trigger"] else (),
            )
        except ApplicationError as error:  # a range backwards or too long
            self.add_error("to", error.message)
        return cleaned

    def error_lines(self) -> list[tuple[str, str, str]]:
        """(filter, the value sent, what is wrong) for each filter that cannot be read."""
        return [
            (
                self.fields[name].label or name.capitalize() if name in self.fields else "Filters",
                self.data.get(name, ""),
                " ".join(errors),
            )
            for name, errors in self.errors.items()
        ]

    def query(self, **changes) -> str:
        """The query string of these filters (with ``changes``), as links and the CSV take it."""
        values = {name: self.data.get(name, "") for name in QUERY_NAMES}
        values.update(changes)
        return urlencode({name: value for name, value in values.items() if value not in ("", None)})


QUERY_NAMES = ("partnership", "mode", "from", "to", "campaign", "trigger")

# "from" is a Python keyword: the date fields are added by name.
for _name, _label in (("from", "From"), ("to", "To")):
    ReportFilterForm.base_fields[_name] = forms.DateField(
        label=_label, widget=forms.DateInput(attrs={"type": "date"})
    )


def local_today(partnership: Partnership) -> date:
    return timezone.now().astimezone(partnership.zone).date()


def _chosen(value: str | None, partnerships: QuerySet[Partnership]) -> Partnership | None:
    """The partnership the query names if the operator may see it, else their first one."""
    if value:
        try:
            return partnerships.filter(pk=value).first()
        except (ValueError, forms.ValidationError):  # not a UUID: the field says so
            return None
    return partnerships.first()


def _with_defaults(query, partnership: Partnership | None) -> dict[str, str]:
    data = {name: query.get(name, "") for name in QUERY_NAMES}
    today = local_today(partnership) if partnership else timezone.now().date()
    defaults = {
        "partnership": str(partnership.pk) if partnership else "",
        "mode": "live",
        "from": (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat(),
        "to": today.isoformat(),
    }
    for name, default in defaults.items():
        if not data[name]:
            data[name] = default
    return data
