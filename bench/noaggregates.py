"""The project's Celery app with the report aggregates' maintenance switched off, for the
evaluation benchmark's side-by-side cost figure (``celery -A bench.noaggregates worker``).

Each worker process replaces the maintenance hooks where the evaluation calls them with no-ops
(after Django is set up, before any task); nothing else differs from ``-A config``.
"""

import importlib

from celery.signals import worker_process_init

from config.celery import app

# Where the worker's transactions call the maintenance (module, name it is looked up by).
HOOKS = [
    ("rewards.services.evaluation", "reports_record_issued"),
    ("rewards.tasks", "reports_record_outcomes"),
]

__all__ = ["app"]


def _off(*args, **kwargs) -> None:
    """Counts nothing."""


@worker_process_init.connect
def _switch_off(**kwargs) -> None:
    for module_name, name in HOOKS:
        module = importlib.import_module(module_name)
        if not hasattr(module, name):
            raise RuntimeError(f"bench: {module_name}.{name} is gone; update bench/noaggregates.py")
        setattr(module, name, _off)
    print("bench: report aggregates switched off in this worker process", flush=True)
