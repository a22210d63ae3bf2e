"""End-to-end benchmark (issue 13): events at fixed rates, open loop, through the web tier and
the workers to the reward row, ours against the naive design, in one run on this machine.

    python -m bench.e2e [--quick] [--step-seconds 10] [--level-seconds 20] [--steps 6]
                        [--wake-intervals 0.02,0.01] [--lingers 0,0.2] [--users 1000]

The stack: gunicorn as ``config/gunicorn.py`` runs it (gthread, 2 workers x 4 threads) and one
``celery worker -c 2`` (as ``make run`` starts them), on the bench database; one active campaign
rewards every event. The load: ``bench.openloop``, request k due at start + k / rate, latency
from that moment (coordinated omission avoided), every event numbered in its tags.

1. The highest sustainable rate, per design, by a short search: a closed-loop probe (wrk, the
   workers draining meanwhile) gives min(accepted/s, processed/s) as the first guess; then
   open-loop steps, x1.25 up from a bounded one and x0.75 down from one that is not, bisecting
   once both are known (``--steps`` of them, up to 4 more while no bounded or no unbounded
   rate has been seen: a maximum never exceeded would flatter the design). A step is
   *bounded* when the web tier kept up (>= 97% of the offered events accepted, no more than
   0.1% errors, ingest p99 <= 500 ms) and the pending queue (events queued, not yet claimed,
   counted every 0.25 s) did not grow: by its least-squares slope over the step's second half,
   by less than 5% of the events sent in it (or 20 events), and at most one second of events
   (or 20) pending in its last quarter.
2. Ours at 25%, 50% and 90% of its maximum: accepted events/s, ingest p50/p99, event -> reward
   visible p50/p99 (a sample of the events' reward rows polled every 10 ms: ``visible``) and
   event -> outcome written (every event's ``processed_at``, written just before its batch
   commits, minus its scheduled send: ``processed``). The naive design at 50% of its own.
3. The path from commit to worker, one setting at a time: the wake-up throttle
   (``EVENT_WAKE_INTERVAL``, 100 ms per web process; ``--wake-intervals``) and the draining
   task's linger (``EVENT_IDLE_LINGER_SECONDS``, 0.1 s; ``--lingers``). For each value,
   gunicorn and the worker restarted with it, the 50% level again and a step at our maximum
   (does the capacity hold?).

The naive design: bench/views.py's DRF view (jsonschema, ORM insert, ``.delay()`` per event) and
bench/tasks.py's ``naive_evaluate``, a Celery task per event that evaluates it with our own
evaluation in a transaction of its own (a batch of one) and writes its outcome with the ORM.

Written to var/bench/e2e.md and var/bench/e2e.json.
"""

import argparse
import math
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from decimal import Decimal

from . import load, openloop, stack

LEVELS = (0.25, 0.50, 0.90)
RATIO_GOAL = 5.0
P50_GOAL_MS, P99_GOAL_MS = 50.0, 250.0
INGEST_P99_BOUND_MS = 500.0
PENDING_NOISE = 20  # events
VISIBLE_SAMPLES_PER_SECOND = 200
DRAIN_TIMEOUT = 60.0
GUNICORN = ["-c", "python:config.gunicorn", *stack.GUNICORN]
DESIGNS = {
    "ours": "ours: `POST /partnerships/{id}/triggers`, batches claimed by the workers",
    "naive": "naive: DRF + ORM insert + a Celery task per event that evaluates it",
}


@dataclass(frozen=True)
class Step:
    """One open-loop run at a fixed rate, for the search (and the checks at our maximum)."""

    rate: float
    seconds: float
    accepted: float  # events/s answered 2xx and stored
    errors: int
    ingest_p50_ms: float
    ingest_p99_ms: float
    growth: float  # pending events/s over the second half (least squares)
    late_pending: int  # the most pending in the last quarter
    bounded: bool


@dataclass(frozen=True)
class Level:
    """One open-loop run with its latencies to the reward."""

    fraction: float
    rate: float
    seconds: float
    accepted: float
    errors: int
    events: int
    rewards: int
    ingest_p50_ms: float
    ingest_p99_ms: float
    visible_p50_ms: float
    visible_p99_ms: float
    visible_samples: int
    processed_p50_ms: float
    processed_p99_ms: float
    pending_at_end: int  # the last count of the pending queue before the load stopped
    drained: bool  # nothing pending within DRAIN_TIMEOUT after
    client_lag_p99_ms: float


def main(argv: list[str]) -> int:
    args = _parse(argv)
    busy = stack.machine_busy()
    if busy > 0.25:
        print(f"bench.e2e: WARNING the machine is {busy:.0%} busy before we start", file=sys.stderr)
    return stack.run_with_django(lambda env: _run(args, env, busy))


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e", description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--probe-seconds", type=float, default=5.0)
    parser.add_argument("--step-seconds", type=float, default=10.0, help="per search step")
    parser.add_argument("--steps", type=int, default=6, help="search steps per design")
    parser.add_argument("--level-seconds", type=float, default=20.0, help="per level run")
    parser.add_argument(
        "--wake-intervals",
        default="0.02,0.01",
        help="EVENT_WAKE_INTERVAL values to compare with the default (comma-separated; '' none)",
    )
    parser.add_argument(
        "--lingers",
        default="0,0.2",
        help="EVENT_IDLE_LINGER_SECONDS values to compare with the default (comma-separated)",
    )
    parser.add_argument("--no-naive", action="store_true", help="skip the naive design")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="under a minute: 2 s probe, 2 steps of 2 s, levels of 2 s, no variants",
    )
    parser.add_argument("--out", default="e2e", help="report name under var/bench/")
    if "--quick" in argv:  # its sizes, unless given
        parser.set_defaults(
            probe_seconds=2.0,
            step_seconds=2.0,
            steps=2,
            level_seconds=2.0,
            wake_intervals="",
            lingers="",
        )
    args = parser.parse_args(argv)
    return args


def _variants(args: argparse.Namespace) -> list[tuple[str, float]]:
    """(setting, value) for each run of the 50% level beside the defaults."""
    return [
        (name, float(value))
        for name, values in (
            ("EVENT_WAKE_INTERVAL", args.wake_intervals),
            ("EVENT_IDLE_LINGER_SECONDS", args.lingers),
        )
        for value in values.split(",")
        if value.strip()
    ]


def _run(args: argparse.Namespace, env: dict[str, str], busy: float) -> int:

    from config import devstack

    from .evaluation import Worker

    started = time.monotonic()
    fixture = stack.prepare(args.users)
    _campaign(fixture)
    out = devstack.VAR / "bench"
    script = load.wrk_script(out, fixture.api_key, args.users)
    dsn = env["DATABASE_URL"]
    results: dict = {"designs": {}, "variants": []}
    worker = Worker(env)
    try:
        port = _free_port()
        with stack.gunicorn(env, port, GUNICORN) as server:
            urls = {
                "ours": f"{server.base_url}/partnerships/{fixture.partnership_id}/triggers",
                "naive": f"{server.base_url}/bench/naive/{fixture.partnership_id}",
            }
            bench = _Bench(args, fixture, dsn, script)
            _warm_up(bench, urls)
            designs = ["ours"] if args.no_naive else ["ours", "naive"]
            for design in designs:
                url = urls[design]
                estimate, probe = bench.probe(url)
                best, steps = bench.search(url, estimate)
                fractions = LEVELS if design == "ours" else (0.50,)
                levels = [bench.level(url, best, f) for f in fractions] if best else []
                results["designs"][design] = {
                    "probe": probe,
                    "estimate": estimate,
                    "max_rate": best,
                    "search": [asdict(s) for s in steps],
                    "levels": [asdict(level) for level in levels],
                }
        ours = results["designs"]["ours"]
        results["variants"].append(
            {"setting": "defaults", "level": _at(ours["levels"], 0.50), "at_max": None}
        )
        for name, value in _variants(args):
            if not ours["max_rate"]:
                break
            run_env = {**env, name: str(value)}
            worker.stop()
            worker = Worker(run_env)
            with stack.gunicorn(run_env, _free_port(), GUNICORN) as server:
                url = f"{server.base_url}/partnerships/{fixture.partnership_id}/triggers"
                _warm_up(bench, {"ours": url})
                level = bench.level(url, ours["max_rate"], 0.50)
                at_max = bench.step(url, ours["max_rate"], args.step_seconds)
            results["variants"].append(
                {"setting": f"{name}={value:g}", "level": asdict(level), "at_max": asdict(at_max)}
            )
    finally:
        worker.stop()
        _reset()
    results["facts"] = _facts(busy, args, argv_command(args))
    results["wall_seconds"] = round(time.monotonic() - started, 1)
    report = _report(results, args)
    out.mkdir(parents=True, exist_ok=True)
    openloop.write_json(out / f"{args.out}.json", results)
    (out / f"{args.out}.md").write_text(report)
    print(report)
    print(f"bench.e2e: written to {out / args.out}.md and .json", file=sys.stderr)
    return 0


def argv_command(args: argparse.Namespace) -> str:
    return "python -m bench.e2e " + " ".join(sys.argv[1:])


def _at(levels: list[dict], fraction: float) -> dict | None:
    return next((level for level in levels if level["fraction"] == fraction), None)


class _Bench:
    def __init__(self, args, fixture, dsn: str, script) -> None:
        self.args, self.fixture, self.dsn, self.script = args, fixture, dsn, script

    def _open_loop(self, url: str, rate: float, seconds: float, visible_every: int = 0):
        _reset()
        return openloop.run(
            url,
            self.fixture.api_key,
            self.args.users,
            rate,
            seconds,
            dsn=self.dsn,
            visible_every=visible_every,
        )

    def probe(self, url: str) -> tuple[float, dict]:
        """Closed loop (wrk -t2 -c32) for a first guess: min(accepted/s, processed/s) while
        the workers drain alongside."""
        _reset()
        seconds = self.args.probe_seconds
        run = load.wrk(url, self.script, seconds, threads=2, connections=32)
        time.sleep(0.3)
        rows, pending = _events(), _pending()
        accepted = min(run.ok, rows) / run.seconds
        processed = max(0, rows - pending) / run.seconds
        estimate = max(10.0, min(accepted, processed))
        probe = {"seconds": run.seconds, "accepted": accepted, "processed": processed}
        print(
            f"bench.e2e: probe {url.rsplit('/', 2)[-2]}: accepted {accepted:,.0f}/s, "
            f"processed {processed:,.0f}/s -> first guess {estimate:,.0f}/s",
            file=sys.stderr,
        )
        return estimate, probe

    def search(self, url: str, estimate: float) -> tuple[float, list[Step]]:
        low, high, rate, steps = 0.0, math.inf, estimate, []
        # A few more steps if one side is still open: a maximum never exceeded would flatter
        # the design (the naive one's, the ratio); none found bounded would leave no levels.
        for number in range(self.args.steps + 4):
            if number >= self.args.steps and low and high < math.inf:
                break
            step = self.step(url, rate, self.args.step_seconds)
            steps.append(step)
            if step.bounded:
                low = max(low, rate)
            else:
                high = min(high, rate)
            if high == math.inf:
                rate *= 1.25
            elif not low:
                rate *= 0.75
            else:
                rate = (low + high) / 2
        return low, steps

    def step(self, url: str, rate: float, seconds: float) -> Step:
        run = self._open_loop(url, rate, seconds)
        time.sleep(0.3)  # requests answered at the end are committed
        rows = _events()
        step = _step(run, rows)
        print(
            f"bench.e2e: step {rate:7,.0f}/s: accepted {step.accepted:7,.0f}/s, ingest p99 "
            f"{step.ingest_p99_ms:6.1f} ms, pending growth {step.growth:+7.1f}/s, late pending "
            f"{step.late_pending:5d} -> {'bounded' if step.bounded else 'NOT bounded'}",
            file=sys.stderr,
        )
        return step

    def level(self, url: str, best: float, fraction: float) -> Level:
        rate = best * fraction
        every = max(1, math.ceil(rate / VISIBLE_SAMPLES_PER_SECOND))
        run = self._open_loop(url, rate, self.args.level_seconds, visible_every=every)
        drained = _drain(DRAIN_TIMEOUT)
        rows, rewards, processed = _outcomes(run)
        accepted = min(run.ok, rows) / run.span
        latencies = run.latencies
        level = Level(
            fraction=fraction,
            rate=rate,
            seconds=run.seconds,
            accepted=accepted,
            errors=run.errors,
            events=rows,
            rewards=rewards,
            ingest_p50_ms=openloop.percentile(latencies, 50) * 1000,
            ingest_p99_ms=openloop.percentile(latencies, 99) * 1000,
            visible_p50_ms=openloop.percentile(run.visible, 50) * 1000,
            visible_p99_ms=openloop.percentile(run.visible, 99) * 1000,
            visible_samples=len(run.visible),
            processed_p50_ms=openloop.percentile(processed, 50) * 1000,
            processed_p99_ms=openloop.percentile(processed, 99) * 1000,
            pending_at_end=run.pending[-1][1] if run.pending else 0,
            drained=drained,
            client_lag_p99_ms=openloop.percentile(run.lags, 99) * 1000,
        )
        print(
            f"bench.e2e: level {fraction:.0%} = {rate:,.0f}/s: accepted {accepted:,.0f}/s, "
            f"ingest p50/p99 {level.ingest_p50_ms:.1f}/{level.ingest_p99_ms:.1f} ms, visible "
            f"p50/p99 {level.visible_p50_ms:.1f}/{level.visible_p99_ms:.1f} ms "
            f"({level.visible_samples} sampled), processed p50/p99 "
            f"{level.processed_p50_ms:.1f}/{level.processed_p99_ms:.1f} ms, "
            f"{rewards}/{rows} rewarded",
            file=sys.stderr,
        )
        return level


def _step(run: openloop.Run, rows: int) -> Step:
    half = [(t, n) for t, n in run.pending if run.seconds / 2 <= t <= run.seconds]
    quarter = [n for t, n in run.pending if run.seconds * 0.75 <= t <= run.seconds]
    growth = _slope(half)
    late = max(quarter, default=0)
    accepted = min(run.ok, rows) / run.span
    ingest_p99 = openloop.percentile(run.latencies, 99) * 1000
    # Pending may grow over the second half by 5% of the events sent in it, or a few events
    # (short steps at low rates: a batch more or less is not a trend).
    tolerated = max(0.05 * run.rate * run.span / 2, PENDING_NOISE) / (run.span / 2)
    bounded = (
        accepted >= 0.97 * run.rate
        and run.errors <= 0.001 * run.requests
        and ingest_p99 <= INGEST_P99_BOUND_MS
        and growth <= tolerated
        and late <= max(run.rate * 1.0, PENDING_NOISE)
    )
    return Step(
        rate=run.rate,
        seconds=run.seconds,
        accepted=accepted,
        errors=run.errors,
        ingest_p50_ms=openloop.percentile(run.latencies, 50) * 1000,
        ingest_p99_ms=ingest_p99,
        growth=growth,
        late_pending=late,
        bounded=bounded,
    )


def _slope(points: list[tuple[float, int]]) -> float:
    if len(points) < 2:
        return 0.0
    mean_t = statistics.fmean(t for t, _ in points)
    mean_n = statistics.fmean(n for _, n in points)
    var = sum((t - mean_t) ** 2 for t, _ in points)
    return sum((t - mean_t) * (n - mean_n) for t, n in points) / var if var else 0.0


def _warm_up(bench: _Bench, urls: dict[str, str]) -> None:
    """Connections, per-process caches and code paths of both designs, before anything counts."""
    for url in urls.values():
        bench._open_loop(url, 100.0, 1.5)
        _drain(10.0)


def _campaign(fixture) -> None:
    """One active campaign on the bench trigger that rewards every event (1 point, no caps)."""
    from campaigns.models import Campaign
    from campaigns.services import campaign_save
    from triggers.models import Trigger

    _reset()
    trigger = Trigger.objects.get(partnership_id=fixture.partnership_id, name=stack.TRIGGER_NAME)
    Campaign.objects.filter(trigger=trigger).exclude(slug="e2e").update(status="ended")
    if not Campaign.objects.filter(trigger=trigger, slug="e2e").exists():
        campaign_save(
            campaign=Campaign(
                partnership=trigger.partnership,
                trigger=trigger,
                name="e2e",
                slug="e2e",
                status="active",
                budget=Decimal("1000000000"),
                condition="context.amount >= 10.0",
                reward_type="fixed",
                reward_value=Decimal("1"),
            )
        )
    Campaign.objects.filter(trigger=trigger, slug="e2e").update(status="active")


# Emptied before every run (the campaign and its counters stay: the web and worker processes
# keep what they compiled).
_TABLES = (
    "triggers_triggerevent, triggers_triggereventclaim, rewards_reward, rewards_usercounter, "
    "rewards_webhookdelivery, rewards_reversal, rewards_rewardadjustment"
)


def _reset() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {_TABLES} CASCADE")
    stack.broker_empty()


def _events() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM triggers_triggerevent")
        return cursor.fetchone()[0]


def _pending() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(openloop.PENDING_SQL)
        return cursor.fetchone()[0]


def _drain(timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _pending():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _outcomes(run: openloop.Run) -> tuple[int, int, list[float]]:
    """Events stored, rewards issued, and per event: its outcome's ``processed_at`` minus its
    scheduled send (inf if it has none)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (tags->>'seq')::int, extract(epoch FROM processed_at) "
            "FROM triggers_triggerevent"
        )
        rows = cursor.fetchall()
        cursor.execute("SELECT count(*) FROM rewards_reward")
        (rewards,) = cursor.fetchone()
    processed = [
        float(at) - run.due(seq) if at is not None else math.inf for seq, at in rows if seq >= 0
    ]
    return len(rows), rewards, processed


def _free_port() -> int:
    import socket

    from config import devstack

    with socket.socket() as sock:
        sock.bind((devstack.HOST, 0))
        return sock.getsockname()[1]


def _facts(busy: float, args, command: str) -> dict:
    return {
        "command": command,
        "cores": os.cpu_count(),
        "busy_before": busy,
        "database": stack.database_facts(),
        "gunicorn": " ".join(GUNICORN),
        "worker": "celery -A config worker -c 2 -Q celery",
        "wake_interval_default": _setting("EVENT_WAKE_INTERVAL"),
        "linger_default": _setting("EVENT_IDLE_LINGER_SECONDS"),
    }


def _setting(name: str) -> float:
    from django.conf import settings

    return getattr(settings, name)


def _ms(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return "lost" if value == math.inf else f"{value:,.1f}"


def _report(results: dict, args) -> str:
    facts = results["facts"]
    designs = results["designs"]
    ours, naive = designs["ours"], designs.get("naive")
    lines = [
        f"## End-to-end benchmark: `{facts['command'].strip()}`",
        "",
        f"Machine: {facts['cores']} cores, {facts['busy_before']:.0%} busy just before the run; "
        f"{facts['database']}. Web: `gunicorn {facts['gunicorn']}`; worker: `{facts['worker']}`; "
        f"EVENT_WAKE_INTERVAL {facts['wake_interval_default']:g} s, EVENT_IDLE_LINGER_SECONDS "
        f"{facts['linger_default']:g} s. Load: open loop, "
        f"{openloop.CONNECTIONS} connections, latency from each request's scheduled send. "
        f"Wall time {results['wall_seconds']:.0f} s.",
        "",
        "| design | first guess (closed loop) | highest bounded rate, events/s | search steps "
        "(events/s: bounded?) |",
        "|---|---:|---:|---|",
    ]
    for name, design in designs.items():
        steps = ", ".join(
            f"{s['rate']:,.0f}: {'yes' if s['bounded'] else 'no'}" for s in design["search"]
        )
        lines.append(
            f"| {DESIGNS[name]} | {design['estimate']:,.0f} | **{design['max_rate']:,.0f}** "
            f"| {steps} |"
        )
    ratio = results["ratio"] = (
        ours["max_rate"] / naive["max_rate"] if naive and naive["max_rate"] else math.nan
    )
    lines += [
        "",
        "| design | level | offered/s | accepted/s | ingest p50 / p99 ms | event -> reward "
        "visible p50 / p99 ms (sampled) | event -> outcome written p50 / p99 ms (all) "
        "| rewards / events | pending when the load stopped | client lag p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, design in designs.items():
        for level in design["levels"]:
            lines.append(
                f"| {name} | {level['fraction']:.0%} | {level['rate']:,.0f} "
                f"| {level['accepted']:,.0f} "
                f"| {_ms(level['ingest_p50_ms'])} / {_ms(level['ingest_p99_ms'])} "
                f"| {_ms(level['visible_p50_ms'])} / {_ms(level['visible_p99_ms'])} "
                f"({level['visible_samples']:,}) "
                f"| {_ms(level['processed_p50_ms'])} / {_ms(level['processed_p99_ms'])} "
                f"| {level['rewards']:,} / {level['events']:,} "
                f"| {level['pending_at_end']:,}{'' if level['drained'] else ' (not drained)'} "
                f"| {_ms(level['client_lag_p99_ms'])} |"
            )
    half = _at(ours["levels"], 0.50)
    goals = results["goals"] = {
        "ratio": ratio,
        "ratio_met": bool(ratio >= RATIO_GOAL),
        "p50_ms": half["visible_p50_ms"] if half else math.nan,
        "p99_ms": half["visible_p99_ms"] if half else math.nan,
    }
    goals["latency_met"] = bool(
        half and goals["p50_ms"] <= P50_GOAL_MS and goals["p99_ms"] <= P99_GOAL_MS
    )
    lines += [
        "",
        f"- Sustained end-to-end rate, ours / naive >= {RATIO_GOAL:g}x: **{ratio:.1f}x** -> "
        + ("**met**" if goals["ratio_met"] else "**not met**"),
        f"- At 50% of our maximum, event -> reward visible p50 <= {P50_GOAL_MS:g} ms and p99 <= "
        f"{P99_GOAL_MS:g} ms: {_ms(goals['p50_ms'])} / {_ms(goals['p99_ms'])} ms -> "
        + ("**met**" if goals["latency_met"] else "**not met**"),
    ]
    if len(results["variants"]) > 1:
        lines += [
            "",
            "The path from commit to worker, varied one setting at a time (gunicorn and the "
            "worker restarted with it): our 50% level again, and a step at our maximum. "
            "`EVENT_WAKE_INTERVAL`: a web process publishes at most one wake-up per interval; "
            "`EVENT_IDLE_LINGER_SECONDS`: a draining task polls the empty queue this long before "
            "it returns.",
            "",
            "| setting | visible p50 / p99 ms at 50% | outcome written p50 / p99 ms at 50% "
            "| at our maximum: accepted/s, pending growth/s, bounded |",
            "|---|---:|---:|---|",
        ]
        for row in results["variants"]:
            level, at_max = row["level"] or {}, row["at_max"]
            cell = "(the search above)"
            if at_max:
                cell = (
                    f"{at_max['accepted']:,.0f}, {at_max['growth']:+.1f}, "
                    f"{'yes' if at_max['bounded'] else 'no'}"
                )
            lines.append(
                f"| {row['setting']} "
                f"| {_ms(level.get('visible_p50_ms'))} / {_ms(level.get('visible_p99_ms'))} "
                f"| {_ms(level.get('processed_p50_ms'))} / {_ms(level.get('processed_p99_ms'))} "
                f"| {cell} |"
            )
    lines += [
        "",
        "Visible: a sample of the events (about 200/s), their reward row polled every 10 ms on "
        "a connection of its own; a poll's snapshot is taken as it is sent, so the figure errs "
        "late by up to one poll. Outcome written: every event's `processed_at` (the worker's "
        "clock as it writes the batch's outcomes, just before the commit) minus its scheduled "
        "send. Accepted: 2xx answers whose row is stored. Client lag: how late the client itself "
        "sent (its share of the latencies; it runs on the same 2 cores as the servers).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
