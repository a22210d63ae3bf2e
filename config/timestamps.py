"""Timestamps a client sends: one pattern for the schema, one parser that takes exactly it.

RFC 3339 with an offset (``Z`` or ``+02:00``), ``T``/``Z`` in either case. Refused: naive
times (no offset: whose clock?), leap seconds (``23:59:60``: Python cannot hold them, and
moving them silently would change what was sent) and years before 1000, which in some
offsets fall before year 1, where Python's datetimes end.
"""

import re
from datetime import date, datetime

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

PATTERN = (
    r"^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]"
    r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?"
    r"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
_PATTERN = re.compile(PATTERN.removesuffix("$"))

SCHEMA = {"type": "string", "format": "date-time", "pattern": PATTERN}

MESSAGE = (
    "An RFC 3339 date-time with an offset, e.g. 2025-01-31T12:00:00Z or "
    "2025-01-31T13:00:00+01:00 (seconds 00-59, year 1000 or later)"
)


def parse(value: str) -> datetime | None:
    """The aware datetime ``value`` names, or None if it is not one ``PATTERN`` describes."""
    if not isinstance(value, str) or _PATTERN.fullmatch(value) is None:
        return None
    try:
        return datetime.fromisoformat(value.upper())
    except ValueError:  # a day its month does not have: February 30
        return None


@extend_schema_field(SCHEMA)
class TimestampField(serializers.DateTimeField):
    """A DRF field taking exactly what ``parse`` takes; its OpenAPI schema says so."""

    default_error_messages = {"invalid": MESSAGE}

    def to_internal_value(self, value) -> datetime:
        parsed = parse(value)
        if parsed is None:
            self.fail("invalid")
        return self.enforce_timezone(parsed)


# A calendar day: years 1000 to 9998, so that its UTC bounds in any zone, and the day after
# it, are dates Python can hold.
DAY_PATTERN = (
    r"^([1-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-(0[1-9]|1[0-2])"
    r"-(0[1-9]|[12][0-9]|3[01])$"
)
_DAY_PATTERN = re.compile(DAY_PATTERN.removesuffix("$"))
DAY_MESSAGE = "A date YYYY-MM-DD, e.g. 2025-01-31 (years 1000 to 9998)"


def parse_day(value: str) -> date | None:
    if not isinstance(value, str) or _DAY_PATTERN.fullmatch(value) is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:  # February 30
        return None


@extend_schema_field({"type": "string", "format": "date", "pattern": DAY_PATTERN})
class DayField(serializers.Field):
    default_error_messages = {"invalid": DAY_MESSAGE}

    def to_internal_value(self, value) -> date:
        parsed = parse_day(value)
        if parsed is None:
            self.fail("invalid")
        return parsed

    def to_representation(self, value: date) -> str:
        return value.isoformat()
