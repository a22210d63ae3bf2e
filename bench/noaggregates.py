"""The project's Celery app with the report aggregates' maintenance switched off, for the
evaluation benchmark's side-by-side cost figure (``celery -A bench.noaggregates worker``).

Each worker process replaces the maintenance hooks where the evaluation calls them with no-ops
(after Django is set up, before any task); nothing else differs from ``-A config``.
"""

from celery.signals import worker_process_init

from bench.hooks import aggregate_hooks_swap
from config.celery import app

__all__ = ["app"]


def _off(*args, **kwargs) -> None:
    """Counts nothing."""


@worker_process_init.connect
def _switch_off(**kwargs) -> None:
    aggregate_hooks_swap(issued=_off, recorded=_off)
    print("bench: report aggregates switched off in this worker process", flush=True)
