import uuid

from celery import shared_task
from django.conf import settings

from .backtests import backtest_execute


@shared_task(
    name="rewards.simulation.run_backtest",
    acks_late=True,
    reject_on_worker_lost=True,
    # Its own bound (BACKTEST_MAX_SECONDS) stops it first, with partial results.
    soft_time_limit=settings.BACKTEST_MAX_SECONDS + 60,
    time_limit=settings.BACKTEST_MAX_SECONDS + 120,
)
def run_backtest(backtest_id: str) -> None:
    backtest_execute(backtest_id=uuid.UUID(backtest_id))
