"""Pilot's list filters with an input rather than a list of choices: a time range on a
date-time column, and a user by their exact external id. Both filter on indexed columns with
exact bounds; a value that does not parse is refused as the admin refuses any bad filter
(the list reloads with "?e=1"), never a 500."""

import uuid
from datetime import datetime, time

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from .models import EndUser
from .scoping import scope_queryset


def parse_moment(raw: str) -> datetime:
    """A date ("2026-12-01": its midnight) or a date-time, in the current time zone unless it
    names one; raises ValueError."""
    raw = raw.strip()
    moment = parse_datetime(raw)
    if moment is None:
        day = parse_date(raw)
        if day is None:
            raise ValueError(f"{raw!r} is not a date or a date and time (2026-12-01 09:30)")
        moment = datetime.combine(day, time.min)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


class DateTimeRangeFilter(admin.FieldListFilter):
    """From (inclusive) and to (exclusive): ``?<field>__gte=…&<field>__lt=…``, the parameters
    the report pages link with."""

    template = "pilot/filters/inputs.html"

    def __init__(self, field, request, params, model, model_admin, field_path):
        self.lookup_from, self.lookup_to = f"{field_path}__gte", f"{field_path}__lt"
        super().__init__(field, request, params, model, model_admin, field_path)

    def expected_parameters(self) -> list[str]:
        return [self.lookup_from, self.lookup_to]

    def _raw(self, name: str) -> str:
        value = self.used_parameters.get(name)
        return (value[-1] if isinstance(value, list) else value) or ""

    def queryset(self, request, queryset):
        bounds = {}
        for name in self.expected_parameters():
            if self._raw(name):
                try:
                    bounds[name] = parse_moment(self._raw(name))
                except ValueError as exc:
                    raise IncorrectLookupParameters(exc) from exc
        return queryset.filter(**bounds) if bounds else queryset

    def choices(self, changelist):
        yield {
            "inputs": [
                ("From", self.lookup_from, self._raw(self.lookup_from), "2026-12-01 or …T09:30"),
                ("Before", self.lookup_to, self._raw(self.lookup_to), "2026-12-02"),
            ],
            "clear": changelist.get_query_string(remove=self.expected_parameters()),
        }


class ExternalUserFilter(admin.ListFilter):
    """A user by the partner's exact id for them: looked up in the operator's partnerships
    (the unique (partnership, external_user_id) index), then rows by ``end_user`` id."""

    title = "user (external id)"
    parameter_name = "external_user_id"
    end_user_path = "end_user"
    template = "pilot/filters/inputs.html"

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        value = params.pop(self.parameter_name, None)
        self.value = ((value[-1] if isinstance(value, list) else value) or "").strip()
        self.used_parameters = {self.parameter_name: self.value} if self.value else {}

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str]:
        return [self.parameter_name]

    def queryset(self, request, queryset):
        if not self.value:
            return queryset
        users = list(
            scope_queryset(
                EndUser.objects.filter(external_user_id=self.value), request.user, "partnership"
            ).values_list("pk", flat=True)
        )
        return queryset.filter(**{f"{self.end_user_path}__in": users})

    def choices(self, changelist):
        yield {
            "inputs": [("Exact id", self.parameter_name, self.value, "as the partner sends it")],
            "clear": changelist.get_query_string(remove=[self.parameter_name]),
        }


def exact_search(queryset, term: str, *, uuid_fields=(), text_fields=()):
    """Pilot's search box on a big table: the term equal to one of these columns (indexed
    ones), never ``icontains`` nor Django's ``=`` prefix (``UPPER(col) = UPPER(term)``, which
    no index serves). A term that is not a UUID is not compared with the UUID columns."""
    term = term.strip()
    if not term:
        return queryset
    found = Q(pk__in=[])
    try:
        as_uuid = uuid.UUID(term)
    except ValueError:
        as_uuid = None
    if as_uuid is not None:
        for field in uuid_fields:
            found |= Q(**{field: as_uuid})
    for field in text_fields:
        found |= Q(**{field: term})
    return queryset.filter(found)
