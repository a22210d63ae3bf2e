"""Evaluation throughput: events/s per Celery worker with 1, 10 and 100 active campaigns,
beside the same worker's no-op task rate, measured in one run.

    python -m bench.evaluation [--events N] [--quick]

One worker = one ``celery worker -c 2`` (prefork, two processes), as ``make run`` starts it.
Events are inserted as queued while the worker idles; the clock runs from the wake-up messages
to the last event processed. Campaigns are a realistic mix (each matches about one event in
ten: fixed with a per-user cap, capped percentage, tier multiplier expression, a 30-day count
fact), plus a worst case where every one of 10 campaigns rewards every event.

What maintaining the report aggregates costs (issue 10; goal: under 5% of events/s): the
10-campaign runs again, in rounds that alternate the worker as configured (``-A config``) with
the same worker whose maintenance hooks are no-ops (``-A bench.noaggregates``); then the same
cost paired in time (``-A bench.alternating``: the aggregates kept in every other 2-second slot,
each batch timed), which the machine's drift between runs does not blur.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

from . import stack

ROOT = Path(__file__).resolve().parent.parent
MCCS = [f"54{n:02d}" for n in range(10)]


def main(argv: list[str]) -> int:
    args = _parse(argv)
    return stack.run_with_django(lambda env: _run(args, env))


def _run(args: argparse.Namespace, env: dict[str, str]) -> int:
    fixture = stack.prepare(users=args.users)
    if args.cost_only:
        report = _aggregates_cost(env, fixture, args)
        print(report)
        (ROOT / "var" / "bench" / "evaluation-aggregates.md").write_text(report)
        return 0
    noop_rate = _noop_rate(env, args.noop_tasks)
    # Celery's defaults (ack before running, prefetch 4): the faster, less safe baseline.
    default_rate = _noop_rate(
        {**env, "CELERY_WORKER_PREFETCH_MULTIPLIER": "4"}, args.noop_tasks, early_ack=True
    )
    rows = []
    for count, all_match in [(1, False), (10, False), (100, False), (10, True)]:
        events = args.events if count < 100 else max(1000, args.events // 4)
        rates = [
            _evaluation_rate(env, fixture, count, all_match, events) for _ in range(args.rounds)
        ]
        rows.append((count, all_match, events, statistics.median(rates)))
    report = _report(noop_rate, default_rate, rows, args)
    if args.cost_rounds:
        report += _aggregates_cost(env, fixture, args)
    print(report)
    out = ROOT / "var" / "bench" / "evaluation.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    return 0


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.evaluation")
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--noop-tasks", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--cost-rounds",
        type=int,
        # bench.ab sets it to 0: its A/B measures head against base, and the base's bench
        # does not know this option.
        default=int(os.environ.get("BENCH_COST_ROUNDS", "3")),
        help="rounds of the report aggregates' cost (with / without), 0 skips it",
    )
    parser.add_argument("--quick", action="store_true", help="5,000 events, 5,000 no-op tasks")
    parser.add_argument(
        "--cost-only",
        action="store_true",
        help="only the aggregates' cost (to var/bench/evaluation-aggregates.md)",
    )
    parser.add_argument(
        "--cost-paired-only",
        action="store_true",
        help="of the aggregates' cost, only the runs paired in time (bench.alternating)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.noop_tasks = 5000, 5000
    return args


def _draining(env: dict[str, str]) -> dict[str, str]:
    """The worker's env for a run that drains events inserted up front: its two tasks drain to
    the end without handing over. With no web process to wake them, a hand-over that finds
    the other's hand-over still pending publishes nothing (triggers/dispatch.py), and one
    process would drain the rest alone; in production the next wake-up restores the second."""
    return {**env, "EVENT_TASK_SECONDS": "3600"}


class Worker:
    """``celery -A config worker -c 2`` on the default queue, started and stopped around a run."""

    def __init__(self, env: dict[str, str], app: str = "config") -> None:
        self.log = ROOT / "var" / "bench" / "worker.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            app,
            "worker",
            "-c",
            "2",
            "-Q",
            "celery",
            "-l",
            "info",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            "bench@%h",
        ]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                args, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while b" ready." not in self.log.read_bytes():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit(f"bench: the worker did not start, see {self.log}")
            time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def _broker():
    from django.conf import settings
    from redis import Redis

    return Redis.from_url(settings.CELERY_BROKER_URL)


def _noop_rate(env: dict[str, str], tasks: int, early_ack: bool = False) -> float:
    from bench.tasks import noop, noop_early_ack

    task = noop_early_ack if early_ack else noop
    broker = _broker()
    broker.delete("celery")
    with task.app.producer_or_acquire() as producer:
        for _ in range(tasks):
            task.apply_async(args=["x"], producer=producer)
    worker = Worker(env)
    try:
        start = time.perf_counter()
        while broker.llen("celery") > 0:
            time.sleep(0.01)
        return tasks / (time.perf_counter() - start)
    finally:
        worker.stop()


def _campaigns(trigger, count: int, all_match: bool) -> None:
    from campaigns.models import Campaign
    from campaigns.services import campaign_save

    for index in range(count):
        mcc = MCCS[index % len(MCCS)]
        fields = {"condition": f'context.merchant_category == "{mcc}" && context.amount >= 10.0'}
        if all_match:
            fields = {"condition": "context.amount >= 10.0"}
        kind = index % 4
        if kind == 0:
            fields |= {
                "reward_type": "fixed",
                "reward_value": Decimal("5"),
                "max_rewards_per_user": 1000,
            }
        elif kind == 1:
            fields |= {
                "reward_type": "percentage",
                "reward_value": Decimal("5"),
                "reward_field": "amount",
                "reward_max": Decimal("10"),
            }
        elif kind == 2:
            fields |= {
                "reward_type": "expression",
                "reward_expression": 'context.amount * (user.tier == "gold" ? 0.10 : 0.02)',
            }
        else:
            fields |= {
                "reward_type": "fixed",
                "reward_value": Decimal("1"),
                "facts": [{"name": "n30", "aggregate": "count", "window_days": 30}],
            }
            fields["condition"] += " && facts.n30 >= 1"
        campaign_save(
            campaign=Campaign(
                partnership=trigger.partnership,
                trigger=trigger,
                name=f"bench {index}",
                slug=f"bench-{index}",
                status="active",
                budget=Decimal("1000000000"),
                **fields,
            )
        )


def _reset() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE triggers_triggerevent, triggers_triggereventclaim, rewards_reward, "
            "rewards_usercounter, rewards_webhookdelivery, rewards_reversal, "
            "rewards_rewardadjustment, rewards_backtest CASCADE"
        )
        cursor.execute("DELETE FROM rewards_campaigncounter")
        cursor.execute("DELETE FROM campaigns_campaignversion")
        cursor.execute("DELETE FROM campaigns_campaign")
        for table in _AGGREGATES:  # each run counts from empty, as the first one does
            cursor.execute("SELECT to_regclass(%s)", [table])
            if cursor.fetchone()[0]:
                cursor.execute(f"TRUNCATE {table}")
    stack.broker_empty()


_AGGREGATES = ("rewards_moneybucket", "rewards_activitybucket")


def seed_events(fixture, trigger, count: int, *, start, span=None) -> None:
    """``count`` queued events of ``trigger``, the n-th at ``start + n * span``, from the
    fixture's users (one in three gold), their amounts and categories drawn from a fixed seed:
    the same events every run."""
    import random
    from datetime import timedelta

    from partnerships.models import EndUser
    from triggers.models import TriggerEvent

    step = span or timedelta(0)
    users = list(EndUser.objects.filter(partnership_id=fixture.partnership_id))
    EndUser.objects.filter(pk__in=[u.pk for u in users[::3]]).update(attributes={"tier": "gold"})
    rng = random.Random(7)
    TriggerEvent.objects.bulk_create(
        (
            TriggerEvent(
                partnership_id=fixture.partnership_id,
                trigger=trigger,
                end_user=rng.choice(users),
                context={
                    "amount": round(rng.uniform(5, 300), 2),
                    "currency": "USD",
                    "merchant_category": rng.choice(MCCS),
                },
                occurred_at=start + step * n,
                received_at=start + step * n,
                deliver_at=start + step * n,
            )
            for n in range(count)
        ),
        batch_size=5000,
    )


def _evaluation_rate(
    env, fixture, count: int, all_match: bool, events: int, app: str = "config", cpu=None
) -> float:
    """Events/s of one run; with a list ``cpu``, appends the CPU seconds per event that the
    worker's processes and their PostgreSQL sessions used during it."""
    from django.utils import timezone

    from config.localcache import config_cache
    from triggers.models import Trigger, TriggerEvent
    from triggers.tasks import process_pending_events_send

    _reset()
    config_cache.invalidate()
    trigger = Trigger.objects.get(partnership_id=fixture.partnership_id, name=stack.TRIGGER_NAME)
    _campaigns(trigger, count, all_match)
    seed_events(fixture, trigger, events, start=timezone.now())
    worker = Worker(_draining(env), app)
    try:
        processes = [worker.process.pid, *stack.children(worker.process.pid)]
        cpu_before = stack.cpu_seconds(processes)
        start = time.perf_counter()
        for _ in range(2):  # one per worker process; each drains and hands over
            process_pending_events_send()
        while TriggerEvent.objects.filter(status="queued").exists():
            time.sleep(0.02)
        elapsed = time.perf_counter() - start
        if cpu is not None:  # the sessions were opened by this run's first tasks
            used = stack.cpu_seconds(processes) - cpu_before
            cpu.append((used + stack.cpu_seconds(_worker_sessions())) / events)
    finally:
        worker.stop()
    processed = TriggerEvent.objects.filter(status="processed").count()
    if processed != events:
        raise SystemExit(f"bench: {processed} of {events} events processed, see the worker log")
    return events / elapsed


def _report(noop_rate: float, default_rate: float, rows, args) -> str:
    from rewards.models import Reward

    lines = [
        "## Evaluation benchmark: events/s per worker (`celery worker -c 2`)",
        "",
        f"Machine: {os.cpu_count()} cores; {stack.database_facts()}. "
        f"Command: `python -m bench.evaluation{' --quick' if args.quick else ''}`.",
        "",
        f"Celery no-op task rate, same worker, same run ({args.noop_tasks:,} queued tasks): "
        f"**{noop_rate:,.0f} tasks/s** with our settings (`acks_late`, prefetch 1); "
        f"**{default_rate:,.0f} tasks/s** with Celery's defaults (early ack, prefetch 4).",
        "",
        "| active campaigns | campaigns rewarding an event | events | events/s "
        "| x no-op (our settings) | x no-op (Celery defaults) |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for count, all_match, events, rate in rows:
        matching = "all" if all_match else "~1 in 10"
        lines.append(
            f"| {count} | {matching} | {events:,} | {rate:,.0f} | {rate / noop_rate:.2f} "
            f"| {rate / default_rate:.2f} |"
        )
    lines += ["", f"Rewards in the last run: {Reward.objects.count():,}.", ""]
    return "\n".join(lines)


def _worker_sessions() -> list[int]:
    """The PostgreSQL backends of this database but ours: the worker's sessions."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        return [pid for (pid,) in cursor.fetchall()]


def _aggregates_cost(env, fixture, args) -> str:
    """Rounds of the 10-campaign runs with the aggregates kept and without (order alternating
    per round); the cost is 1 - with / without, per round, and its median. Then the same cost
    paired in time (``_paired_cost``)."""
    from django.db import connection

    if args.cost_paired_only:
        return "\n".join(_paired_cost(env, fixture, args))

    lines = [
        "",
        "### What maintaining the report aggregates costs",
        "",
        f"Same worker, {args.events:,} events per run, {args.cost_rounds} rounds; each round runs "
        "`-A config` (aggregates kept in the batch transaction) and `-A bench.noaggregates` "
        "(their hooks replaced by no-ops) back to back, alternating which goes first. "
        "Goal: under 5% of events/s.",
        "",
        "| campaigns (rewarding an event) | with aggregates, events/s | without, events/s "
        "| cost per round | median cost | goal | CPU µs/event with / without (worker and "
        "its PostgreSQL sessions) | CPU cost |",
        "|---|---:|---:|---|---:|---|---:|---:|",
    ]
    for count, all_match in [(10, False), (10, True)]:
        rates: dict[str, list[float]] = {"config": [], "bench.noaggregates": []}
        cpu: dict[str, list[float]] = {"config": [], "bench.noaggregates": []}
        for number in range(args.cost_rounds):
            order = ["config", "bench.noaggregates"]
            for app in order if number % 2 == 0 else order[::-1]:
                rate = _evaluation_rate(env, fixture, count, all_match, args.events, app, cpu[app])
                with connection.cursor() as cursor:
                    cursor.execute("SELECT count(*) FROM rewards_activitybucket")
                    (buckets,) = cursor.fetchone()
                if (buckets > 0) != (app == "config"):
                    raise SystemExit(f"bench: {buckets} activity buckets after a run of -A {app}")
                rates[app].append(rate)
        costs = [
            1 - on / off
            for on, off in zip(rates["config"], rates["bench.noaggregates"], strict=True)
        ]
        cost = statistics.median(costs)
        cpu_on, cpu_off = (statistics.median(cpu[app]) * 1e6 for app in cpu)
        lines.append(
            f"| {count} ({'all' if all_match else '~1 in 10'}) "
            f"| {statistics.median(rates['config']):,.0f} "
            f"| {statistics.median(rates['bench.noaggregates']):,.0f} "
            f"| {', '.join(f'{c:.1%}' for c in costs)} | {cost:.1%} "
            f"| {'met' if cost < 0.05 else '**not met**'} "
            f"| {cpu_on:,.0f} / {cpu_off:,.0f} | {cpu_on / cpu_off - 1:.1%} |"
        )
    lines += [
        "",
        "A negative cost is noise: the run without aggregates happened to be slower. CPU per "
        "event (medians) depends less on what else runs on the machine than events/s does.",
        "",
    ]
    lines += _paired_cost(env, fixture, args)
    return "\n".join(lines)


def _paired_cost(env, fixture, args) -> list[str]:
    """The same cost paired in time (``bench.alternating``): in each run, the worker keeps the
    aggregates in every other 2-second slot; the cost is 1 - (events/s of the batches with
    them) / (events/s of the batches without), per run, and its median."""
    log = ROOT / "var" / "bench" / "alternating-batches.log"
    lines = [
        "",
        "### The same cost, paired in time",
        "",
        f"{args.cost_rounds} runs of `-A bench.alternating`, {args.events:,} events each: the "
        "worker keeps the aggregates in every other 2-second slot (both processes in step, so "
        "the waits a batch with them causes on the counters count with them) and times its "
        "batches; slots with and without alternate within seconds, so the machine's drift "
        "cancels out. Cost = 1 - (events/s of the batches with) / (events/s of the batches "
        "without). Goal: under 5%.",
        "",
        "| campaigns (rewarding an event) | batches with / without | cost per run "
        "| median cost | goal | CPU per event (process and its PostgreSQL session): "
        "cost per run | median CPU cost |",
        "|---|---:|---|---:|---|---|---:|",
    ]
    for count, all_match in [(10, False), (10, True)]:
        costs, cpu_costs, batches = [], [], [0, 0]
        for _ in range(args.cost_rounds):
            log.unlink(missing_ok=True)
            run_env = {**env, "BENCH_BATCH_LOG": str(log)}
            _evaluation_rate(run_env, fixture, count, all_match, args.events, "bench.alternating")
            sums = {"1": [0, 0.0, 0, 0.0], "0": [0, 0.0, 0, 0.0]}  # events, s, batches, CPU s
            for line in log.read_text().splitlines():
                kind, events, seconds, cpu = line.split()
                sums[kind][0] += int(events)
                sums[kind][1] += float(seconds)
                sums[kind][2] += 1
                sums[kind][3] += float(cpu)
            if not sums["1"][0] or not sums["0"][0]:
                raise SystemExit(f"bench: a paired run lacks one kind of batch, see {log}")
            on, off = sums["1"], sums["0"]
            costs.append(1 - (on[0] / on[1]) / (off[0] / off[1]))
            cpu_costs.append((on[3] / on[0]) / (off[3] / off[0]) - 1)
            batches = [batches[0] + on[2], batches[1] + off[2]]
        cost = statistics.median(costs)
        lines.append(
            f"| {count} ({'all' if all_match else '~1 in 10'}) | {batches[0]} / {batches[1]} "
            f"| {', '.join(f'{c:.1%}' for c in costs)} | {cost:.1%} "
            f"| {'met' if cost < 0.05 else '**not met**'} "
            f"| {', '.join(f'{c:.1%}' for c in cpu_costs)} | {statistics.median(cpu_costs):.1%} |"
        )
    return [*lines, ""]


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
