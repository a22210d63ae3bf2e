from celery import shared_task

from .days import reports_close_days
from .maintain import reports_count_received


@shared_task(name="rewards.reports.count_received_events")
def count_received_events() -> None:
    """Beat, every ``REPORTS_RECEIVED_INTERVAL`` seconds: events received, up to the settle
    time ago."""
    reports_count_received()


@shared_task(name="rewards.reports.close_report_days")
def close_report_days() -> None:
    """Beat, every ``REPORTS_CLOSE_INTERVAL`` seconds: the days that closed are summed once."""
    reports_close_days()
