import logging

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from triggers.dispatch import wake_up_pending_clear, wake_up_send
from triggers.services.processing import trigger_events_process_pending
from triggers.tasks import PROCESS_PENDING_EVENTS

from .reports.maintain import reports_record_outcomes

# Celery autodiscovers this module: the webhook sender, the reports' counting and the
# backtests are registered from here.
from .reports.tasks import close_report_days, count_received_events  # noqa: F401
from .services.evaluation import trigger_events_evaluate, trigger_events_failed_notify
from .services.notices import campaign_budgets_low_warn
from .services.retention import retention_run
from .simulation.tasks import run_backtest  # noqa: F401
from .webhooks.tasks import send_due_webhooks  # noqa: F401

logger = logging.getLogger(__name__)

# What the queue is handed to evaluate events: the task below, and tests and benchmarks that
# run the pipeline in their own process, pass exactly these.
EVALUATION = {
    "processor": trigger_events_evaluate,
    "on_failed": trigger_events_failed_notify,
    "on_recorded": reports_record_outcomes,
}


@shared_task(
    name=PROCESS_PENDING_EVENTS,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=10,
)
def process_pending_events() -> None:
    """Evaluates queued events batch by batch; hands over to a fresh message after a few
    seconds (unless a wake-up is pending: its task goes on). Here, not in triggers: the queue is
    handed the evaluation as an argument."""
    wake_up_pending_clear()  # before the first claim: events committed from now on wake another
    if trigger_events_process_pending(**EVALUATION):
        wake_up_send(retry=True)


@shared_task(
    name="rewards.tasks.retire_old_records",
    soft_time_limit=settings.RETENTION_RUN_SECONDS + 120,
    time_limit=settings.RETENTION_RUN_SECONDS + 180,
)
def retire_old_records() -> None:
    """Beat, every ``RETENTION_INTERVAL`` seconds: old events and webhook deliveries retired,
    for at most ``RETENTION_RUN_SECONDS`` (a run cut short is taken up by the next)."""
    report = retention_run()
    logger.info(
        "retention: %d events retired (%d reversals), %d kept with rewards, %d not finished, "
        "%d in use; %d webhook deliveries retired%s",
        report.events_retired,
        report.reversals_retired,
        report.events_kept_rewarded,
        report.events_kept_unfinished,
        report.events_skipped_locked,
        report.deliveries_retired,
        "" if report.complete else "; stopped at RETENTION_RUN_SECONDS",
    )


@shared_task(name="rewards.tasks.warn_low_budgets")
def warn_low_budgets() -> None:
    """Celery beat, every minute: campaign.budget_low for budgets about to run out."""
    campaign_budgets_low_warn()
