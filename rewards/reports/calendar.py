"""Local days in a zone, as UTC moments (Python's tz data only)."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The first moment of ``day`` in ``zone`` (a day that starts in a DST gap starts at the
    first wall time that exists)."""
    naive = datetime(day.year, day.month, day.day)
    return timezone.make_aware(naive, zone) if _exists(naive, zone) else _after_gap(naive, zone)


def _exists(naive: datetime, zone: ZoneInfo) -> bool:
    aware = naive.replace(tzinfo=zone)
    return aware.astimezone(ZoneInfo("UTC")).astimezone(zone).replace(tzinfo=None) == naive


def _after_gap(naive: datetime, zone: ZoneInfo) -> datetime:
    moment = naive
    while not _exists(moment, zone):
        moment += timedelta(minutes=15)
    return moment.replace(tzinfo=zone)


def local_day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """``[start, end)`` of a local day, as aware datetimes (for links to the rows behind it)."""
    return local_midnight(day, zone), local_midnight(day + timedelta(days=1), zone)
