"""Backtest throughput beside the workers' evaluation rate, for the same campaigns and events,
measured side by side in one run.

    python -m bench.backtest [--events N] [--rounds R] [--quick]
    python -m bench.backtest --replay-cpu R [--events N] [--campaigns C ...] [--all-match]

Per scenario (1 active campaign; the 10-campaign mix of ``bench.evaluation``, whose facts the
backtest computes too): the events are inserted queued, spread over the last 3 days; one worker
(``celery worker -c 2``, as ``make run`` starts it) evaluates them all (events/s from the wake-up
to the last processed); then the backtest of the first campaign replays the same events over a
4-day window in this process (one process, as one Celery task runs it: ``backtest_execute``,
progress writes included). Goal: backtest events/s >= 5x the workers'. With ``--rounds``,
each round measures both back to back; the ratio reported is the median of the rounds' ratios.

``--replay-cpu R`` measures the replay alone: the events seeded once per scenario, then the
backtest run R times, each reported as CPU time per event of this process (threads included)
and of its PostgreSQL session, read from /proc: less blurred by a busy machine than a rate.
``--all-match``: the campaigns without their category guard (``bench.evaluation``'s other mix).
"""

import argparse
import gc
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

from . import stack
from .evaluation import Worker, _campaigns, _draining, _reset, seed_events

ROOT = Path(__file__).resolve().parent.parent
GOAL = 5.0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.backtest")
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="5,000 events")
    parser.add_argument("--replay-cpu", type=int, default=0, metavar="R")
    parser.add_argument("--campaigns", type=int, nargs="*", default=[1, 10])
    parser.add_argument(
        "--all-match", action="store_true", help="with --replay-cpu: no guards, every rule met"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.events = 5000
    if args.replay_cpu:
        return stack.run_with_django(lambda env: _replay_cpu(args))
    return stack.run_with_django(lambda env: _run(args, env))


def _replay_cpu(args: argparse.Namespace) -> int:
    from django.conf import settings
    from django.db import connection

    from config.localcache import config_cache
    from triggers.models import Trigger

    settings.BACKTEST_MAX_SECONDS = 3600.0
    fixture = stack.prepare(users=args.users)
    print(f"replay CPU per event, {args.events:,} events, commit {_commit()}")
    for count in args.campaigns:
        _reset()
        config_cache.invalidate()
        trigger = Trigger.objects.get(
            partnership_id=fixture.partnership_id, name=stack.TRIGGER_NAME
        )
        _campaigns(trigger, count, all_match=args.all_match)
        _events(fixture, trigger, args.events)
        for _ in range(args.replay_cpu):
            connection.ensure_connection()
            backend = [connection.connection.info.backend_pid]
            task, database = time.process_time(), stack.cpu_seconds(backend)
            rate, _ = _backtest_rate(fixture, args.events)
            task = (time.process_time() - task) / args.events * 1e6
            database = (stack.cpu_seconds(backend) - database) / args.events * 1e6
            print(
                f"{count} campaigns: task {task:.1f} us, PostgreSQL {database:.1f} us per event;"
                f" {rate:,.0f} events/s"
            )
    return 0


def _commit() -> str:
    import subprocess

    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()


def _run(args: argparse.Namespace, env: dict[str, str]) -> int:
    from django.conf import settings

    settings.BACKTEST_MAX_SECONDS = 3600.0  # measured to the end
    fixture = stack.prepare(users=args.users)
    rows = []
    for count in (1, 10):
        rounds = []
        for _ in range(args.rounds):
            workers = _workers_rate(env, fixture, count, args.events)
            backtest, results = _backtest_rate(fixture, args.events)
            rounds.append((workers, backtest, backtest / workers))
        rows.append((count, rounds, results))
    report = _report(rows, args)
    print(report)
    out = ROOT / "var" / "bench" / "backtest.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    return 0


def _events(fixture, trigger, events: int) -> None:
    from django.db import connection
    from django.utils import timezone

    start = timezone.now() - timedelta(days=3)
    seed_events(fixture, trigger, events, start=start, span=timedelta(days=3) / events)
    with connection.cursor() as cursor:  # as autovacuum would soon: plans for the new rows
        cursor.execute("ANALYZE triggers_triggerevent")


def _workers_rate(env, fixture, count: int, events: int) -> float:
    from config.localcache import config_cache
    from triggers.models import Trigger, TriggerEvent
    from triggers.tasks import process_pending_events_send

    _reset()
    config_cache.invalidate()
    trigger = Trigger.objects.get(partnership_id=fixture.partnership_id, name=stack.TRIGGER_NAME)
    _campaigns(trigger, count, all_match=False)
    _events(fixture, trigger, events)
    worker = Worker(_draining(env))
    try:
        start = time.perf_counter()
        for _ in range(2):  # one per worker process; each drains and hands over
            process_pending_events_send()
        while TriggerEvent.objects.filter(status="queued").exists():
            time.sleep(0.02)
        elapsed = time.perf_counter() - start
    finally:
        worker.stop()
    processed = TriggerEvent.objects.filter(status="processed").count()
    if processed != events:
        raise SystemExit(f"bench: {processed} of {events} events processed, see the worker log")
    return events / elapsed


def _backtest_rate(fixture, events: int) -> tuple[float, dict]:
    from django.utils import timezone

    from campaigns.models import Campaign
    from campaigns.selectors import campaign_spec
    from config.celery import freeze_loaded_objects
    from config.localcache import config_cache
    from rewards.simulation.backtest import spec_to_json
    from rewards.simulation.backtests import backtest_execute
    from rewards.simulation.models import Backtest

    config_cache.invalidate()
    campaign = Campaign.objects.get(partnership_id=fixture.partnership_id, slug="bench-0")
    end = timezone.now()
    run = Backtest.objects.create(  # not through backtest_start: no task message, run here
        campaign=campaign,
        spec=spec_to_json(campaign_spec(campaign=campaign)),
        mode="live",
        days=4,
        window_start=end - timedelta(days=4),
        window_end=end,
    )
    freeze_loaded_objects()  # as a worker process does before its first task
    start = time.perf_counter()
    backtest_execute(backtest_id=run.pk)
    elapsed = time.perf_counter() - start
    gc.unfreeze()  # the next round freezes afresh, not this round's leftovers too
    run.refresh_from_db()
    if run.status != Backtest.Status.DONE or run.events_done != events:
        raise SystemExit(f"bench: backtest {run.status}, {run.events_done} events: {run.error}")
    return events / elapsed, run.results


def _report(rows, args) -> str:
    lines = [
        "## Backtest benchmark: events/s beside the workers' evaluation, same campaigns and events",
        "",
        f"Machine: {os.cpu_count()} cores; {stack.database_facts()}. "
        f"Command: `python -m bench.backtest --events {args.events} --rounds {args.rounds}` "
        f"({args.events:,} events over 3 days, {args.users:,} users; medians of the rounds).",
        "",
        "| active campaigns | workers, events/s (`celery worker -c 2`) "
        "| backtest, events/s (one process) | backtest / workers (per round) | goal (>= 5x) "
        "| projected rewards of the campaign |",
        "|---:|---:|---:|---:|---|---:|",
    ]
    for count, rounds, results in rows:
        workers = statistics.median(w for w, _, _ in rounds)
        backtest = statistics.median(b for _, b, _ in rounds)
        ratio = statistics.median(r for _, _, r in rounds)
        each = ", ".join(f"{r:.1f}" for _, _, r in rounds)
        lines.append(
            f"| {count} | {workers:,.0f} | {backtest:,.0f} | {ratio:.1f}x ({each}) "
            f"| {'met' if ratio >= GOAL else '**not met**'} "
            f"| {results['campaign']['rewards']:,} |"
        )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
