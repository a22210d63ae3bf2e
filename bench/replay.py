"""CPU per event of the workers' batch evaluation, replayed in this process.

    python -m bench.replay [--campaigns 100] [--events 3000] [--profile] [--sql]

Seeds ``bench.evaluation``'s campaign mix and events, evaluates one batch to warm up (the
campaigns' compile, the candidate list), freezes the objects loaded (as a worker process does),
then runs ``trigger_events_process_batch(limit=500, **rewards.tasks.EVALUATION)`` until the
queue is empty. Reported per event: this process's CPU time (the worker's Python), the CPU its
PostgreSQL backend used (Linux /proc; the database must be local), their total, and the stored
decisions' size. CPU time, unlike wall time, barely moves with the machine's other load.

``--profile``: under cProfile, timed by process CPU time (the Python figure then includes the
profiler's own cost, several times the code's); ``--sql``: the backend's CPU ticks per statement
(10 ms ticks, attributed to the statement they fell in; "between" is the COPY and the commit,
where the rewards' deferred foreign-key checks run).
"""

import argparse
import contextlib
import cProfile
import gc
import pstats
import sys
import time
from collections import Counter
from pathlib import Path

from . import stack


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replay")
    parser.add_argument("--campaigns", type=int, default=100)
    parser.add_argument("--events", type=int, default=3000, help="measured, after 500 warm-up")
    parser.add_argument("--profile", action="store_true", help="cProfile, top functions printed")
    parser.add_argument("--sql", action="store_true", help="backend CPU ticks per statement")
    args = parser.parse_args(argv)
    return stack.run_with_django(lambda env: _run(args))


def _run(args: argparse.Namespace) -> int:
    from django.db import connection
    from django.utils import timezone

    from config.localcache import config_cache
    from rewards.tasks import EVALUATION
    from triggers.models import Trigger
    from triggers.services.processing import trigger_events_process_batch

    from .evaluation import _campaigns, _reset, seed_events

    fixture = stack.prepare(users=1000)
    _reset()
    config_cache.invalidate()
    trigger = Trigger.objects.get(partnership_id=fixture.partnership_id, name=stack.TRIGGER_NAME)
    _campaigns(trigger, args.campaigns, False)
    seed_events(fixture, trigger, args.events + 500, start=timezone.now())
    trigger_events_process_batch(limit=500, **EVALUATION)  # warm-up
    gc.collect()
    gc.freeze()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    statements = _Statements(backend)
    profile = cProfile.Profile(time.process_time)
    wrapped = connection.execute_wrapper(statements) if args.sql else contextlib.nullcontext()
    backend_before, python_before, events = stack.cpu_seconds([backend]), time.process_time(), 0
    with wrapped:
        if args.profile:
            profile.enable()
        while got := trigger_events_process_batch(limit=500, **EVALUATION):
            events += got
        profile.disable()
    python = time.process_time() - python_before
    backend_cpu = stack.cpu_seconds([backend]) - backend_before
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT avg(octet_length(decisions::text)), "
            "(SELECT count(*) FROM rewards_reward)::float / count(*) FROM triggers_triggerevent"
        )
        size, rewards = cursor.fetchone()
    print(
        f"{args.campaigns} campaigns, {events} events: worker Python {python / events * 1e6:,.0f} "
        f"us, PostgreSQL backend {backend_cpu / events * 1e6:,.0f} us, total "
        f"{(python + backend_cpu) / events * 1e6:,.0f} us CPU per event; {rewards:.2f} rewards "
        f"and {size:,.0f} B of decisions per event{' (under cProfile)' if args.profile else ''}"
    )
    if args.sql:
        statements.report()
    if args.profile:
        stats = pstats.Stats(profile, stream=sys.stdout)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(r"/(rewards|campaigns|triggers)/", 40)
    return 0


class _Statements:
    """An ``execute_wrapper`` that charges the backend's CPU ticks to the statement they fell
    in, and those between statements (the COPY, the commit) to "between"."""

    def __init__(self, backend: int) -> None:
        self._stat = Path(f"/proc/{backend}/stat")
        self.ticks: Counter = Counter()
        self.calls: Counter = Counter()
        self._last = self._now()

    def _now(self) -> int:
        fields = self._stat.read_text().rpartition(")")[2].split()
        return int(fields[11]) + int(fields[12])

    def __call__(self, execute, sql, params, many, context):
        start = self._now()
        self.ticks["(between: COPY, commit)"] += start - self._last
        try:
            return execute(sql, params, many, context)
        finally:
            self._last = self._now()
            key = " ".join(str(sql).split())[:100]
            self.ticks[key] += self._last - start
            self.calls[key] += 1

    def report(self) -> None:
        for key, ticks in self.ticks.most_common(15):
            print(f"{ticks:6d} ticks {self.calls[key]:6d} calls  {key}")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
