from celery import shared_task

from .maintain import reports_count_received


@shared_task(name="rewards.reports.count_received_events")
def count_received_events() -> None:
    """Beat, every ``REPORTS_RECEIVED_INTERVAL`` seconds: events received, up to the settle
    time ago."""
    reports_count_received()
