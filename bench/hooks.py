"""Where the worker's transactions call the report aggregates' maintenance, for the benchmark
apps that replace it (``bench.noaggregates``, ``bench.alternating``): a module attribute the
evaluation looks up when it issues rewards, and the queue's ``on_recorded`` in the task's
EVALUATION."""

import importlib
from collections.abc import Callable

ISSUED = ("rewards.services.evaluation", "reports_record_issued")
RECORDED = ("rewards.tasks", "EVALUATION", "on_recorded")


def aggregate_hooks_swap(*, issued: Callable, recorded: Callable) -> tuple[Callable, Callable]:
    """Puts ``issued`` and ``recorded`` where the maintenance is called, in this process;
    returns the hooks they replace (issued, recorded)."""
    module = importlib.import_module(ISSUED[0])
    evaluation = getattr(importlib.import_module(RECORDED[0]), RECORDED[1], {})
    if not hasattr(module, ISSUED[1]) or RECORDED[2] not in evaluation:
        raise RuntimeError("bench: the aggregates' hooks moved; update bench/hooks.py")
    replaced = getattr(module, ISSUED[1]), evaluation[RECORDED[2]]
    setattr(module, ISSUED[1], issued)
    # The task passes EVALUATION's hooks by keyword to the batch function.
    evaluation[RECORDED[2]] = recorded
    return replaced
