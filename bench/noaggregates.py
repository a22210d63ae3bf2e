"""The project's Celery app with the report aggregates' maintenance switched off, for the
evaluation benchmark's side-by-side cost figure (``celery -A bench.noaggregates worker``).

Each worker process replaces the maintenance hooks where the evaluation calls them with no-ops
(after Django is set up, before any task); nothing else differs from ``-A config``.
"""

import importlib

from celery.signals import worker_process_init

from config.celery import app

# Where the worker's transactions call the maintenance: a module attribute the evaluation looks
# up when it issues rewards, and the queue's ``on_recorded`` in the task's EVALUATION (named in
# bench.alternating too: importing this module switches them off).
ISSUED = ("rewards.services.evaluation", "reports_record_issued")
RECORDED = ("rewards.tasks", "EVALUATION", "on_recorded")

__all__ = ["app"]


def _off(*args, **kwargs) -> None:
    """Counts nothing."""


@worker_process_init.connect
def _switch_off(**kwargs) -> None:
    issued = importlib.import_module(ISSUED[0])
    evaluation = getattr(importlib.import_module(RECORDED[0]), RECORDED[1], {})
    if not hasattr(issued, ISSUED[1]) or RECORDED[2] not in evaluation:
        raise RuntimeError("bench: the aggregates' hooks moved; update bench/noaggregates.py")
    setattr(issued, ISSUED[1], _off)
    evaluation[RECORDED[2]] = _off
    print("bench: report aggregates switched off in this worker process", flush=True)
