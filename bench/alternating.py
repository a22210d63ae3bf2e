"""The project's Celery app with the report aggregates kept in every other time slot, for the
evaluation benchmark's paired cost figure (``celery -A bench.alternating worker``).

This machine's speed drifts by 10-20% from one minute to the next, so two runs back to back
(one with the aggregates, one without) differ by more than the cost being measured. Here the
worker's processes keep the maintenance hooks in even slots of ``SLOT_SECONDS`` of the wall
clock and switch them off in odd ones (as ``bench.noaggregates`` does), all processes in step,
so that what a batch with aggregates makes the other process wait on the counters is counted
with it. A batch takes its kind from the slot it starts in, and each appends one line to
``BENCH_BATCH_LOG``: ``<1 with | 0 without> <events> <seconds> <CPU seconds>`` (CPU: the
process's and its PostgreSQL session's, during the batch). Slots of both kinds
alternate within seconds, so the drift cancels out; the cost is one minus the ratio of their
events per second.
"""

import importlib
import os
import time

from celery.signals import worker_process_init

from bench.hooks import aggregate_hooks_swap
from bench.stack import cpu_seconds
from config.celery import app

__all__ = ["app"]

PROCESSING = ("triggers.services.processing", "trigger_events_process_batch")
SLOT_SECONDS = 2.0  # ~10 batches of the 10-campaign mix; a few straddle two slots


def _kept_now() -> bool:
    return int(time.time() / SLOT_SECONDS) % 2 == 0


def _cpu_seconds() -> float:
    """This process's CPU time and its PostgreSQL session's (same machine)."""
    from django.db import connection

    seconds = time.process_time()
    if connection.connection is not None:
        seconds += cpu_seconds([connection.connection.info.backend_pid])
    return seconds


@worker_process_init.connect
def _alternate(**kwargs) -> None:
    processing = importlib.import_module(PROCESSING[0])
    process_batch = getattr(processing, PROCESSING[1])
    state = {"on": True}
    log = open(os.environ["BENCH_BATCH_LOG"], "a", buffering=1)  # noqa: SIM115 (process-long)

    def issued_hook(*args, **kwargs):
        if state["on"]:
            kept[0](*args, **kwargs)

    def recorded_hook(*args, **kwargs):
        if state["on"]:
            kept[1](*args, **kwargs)

    def batch(**kwargs) -> int:
        state["on"] = _kept_now()
        cpu = _cpu_seconds()
        start = time.perf_counter()
        count = process_batch(**kwargs)
        if count:
            elapsed, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
            log.write(f"{int(state['on'])} {count} {elapsed:.6f} {cpu:.4f}\n")
        return count

    kept = aggregate_hooks_swap(issued=issued_hook, recorded=recorded_hook)
    setattr(processing, PROCESSING[1], batch)
    print("bench: report aggregates kept in every other time slot in this process", flush=True)
