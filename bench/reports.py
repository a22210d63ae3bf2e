"""Reports at scale (issue 10): 10^6 rewards over 90 days, 20 campaigns, 10^5 users.

    python -m bench.reports [--requests N] [--reseed] [--quick]

Seeds its own database (``BENCH_DATABASE``, default ``campaign_rewards_bench_reports``; see
bench/reports_seed.py: SQL in batches, aggregates built from the raw rows), reused by later runs
of the same shape. Then measures, against one gunicorn as bench/stack.py starts it (DEBUG off):
the rewards report API for random 30-day ranges (goal: p99 under 100 ms), the liability as of
random moments, unique users over 30 days (the ``report_totals`` selector, in process), and the
CSV export's rows/s and peak memory, from ``manage.py export_rewards`` and from the API. Checks
one range's totals against the raw rows. Written to var/bench/reports.md.
"""

import argparse
import http.client
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("BENCH_DATABASE", "campaign_rewards_bench_reports")

from config import devstack

from . import stack
from .reports_seed import Seeded, Shape, seed

ROOT = Path(__file__).resolve().parent.parent
GOAL_P99_MS = 100.0
RANGE_DAYS = 30


def main(argv: list[str]) -> int:
    args = _parse(argv)
    return stack.run_with_django(lambda env: _run(args, env))


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.reports")
    parser.add_argument("--rewards", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300, help="per API figure")
    parser.add_argument("--reseed", action="store_true", help="seed again even if present")
    parser.add_argument(
        "--quick", action="store_true", help="10^5 rewards, 10^4 users, 100 requests"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rewards, args.users, args.requests = 100_000, 10_000, 100
    return args


def _run(args: argparse.Namespace, env: dict[str, str]) -> int:
    stack._exclusive()
    shape = Shape(rewards=args.rewards, users=args.users)
    busy_before = stack.machine_busy()
    data = seed(shape, reseed=args.reseed)
    closing = _close_days(data)
    rng = random.Random(10)
    with stack.gunicorn(env, port=devstack._free_port(0)) as server:
        api = _Client(server.base_url, data)
        latencies = {
            "day": api.latencies(rng, args.requests, "rewards", group_by="day"),
            "campaign": api.latencies(rng, args.requests, "rewards", group_by="campaign"),
            "liability": api.latencies(rng, args.requests, "liability"),
        }
        api_export = _api_export(server, data)
    selector = _selector_latencies(data, rng, max(20, args.requests // 6))
    command_export = _command_export(env, data)
    report = _report(
        args,
        shape,
        data,
        busy_before,
        latencies,
        selector,
        api_export,
        command_export,
        _exactness(data),
    )
    report += (
        f"\nDays closed before the run, as beat closes them one by one: "
        f"{(data.last_day - data.first_day).days + 1} days summed in {closing:.1f} s "
        "(rewards.reports.days.reports_close_days).\n"
    )
    print(report)
    out = ROOT / "var" / "bench" / "reports.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    return 0


def _close_days(data: Seeded) -> float:
    """What beat's ``close_report_days`` would have done day after day: every seeded day's
    figures summed once (reports of closed days read those; today's, the buckets)."""
    from rewards.reports.days import reports_close_days

    start = time.perf_counter()
    reports_close_days(days=(data.last_day - data.first_day).days + 2)
    return time.perf_counter() - start


# --- The API, through gunicorn ------------------------------------------------------------------


def _window(data: Seeded, rng: random.Random) -> tuple:
    span = (data.last_day - data.first_day).days + 1 - RANGE_DAYS
    first = data.first_day + timedelta(days=rng.randrange(max(1, span + 1)))
    return first, first + timedelta(days=RANGE_DAYS - 1)


class _Client:
    """One keep-alive connection, requests one after another: each latency is one request's."""

    def __init__(self, base_url: str, data: Seeded) -> None:
        parts = urllib.parse.urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port
        self.data = data
        self.headers = {"x-api-key": data.api_key}

    def path(self, rng: random.Random, report: str, **query: str) -> str:
        if report == "liability":
            start = datetime.combine(self.data.first_day, datetime.min.time(), UTC)
            days = (self.data.last_day - self.data.first_day).days + 1
            at = start + timedelta(seconds=rng.uniform(0, days * 86400))
            query = {"at": at.isoformat().replace("+00:00", "Z"), **query}
        else:
            first, last = _window(self.data, rng)
            query = {"from": first.isoformat(), "to": last.isoformat(), **query}
        base = f"/partnerships/{self.data.partnership_id}/reports/{report}"
        return f"{base}?{urllib.parse.urlencode(query)}"

    def latencies(self, rng: random.Random, count: int, report: str, **query: str) -> list:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        times = []
        try:
            for number in range(count + 5):  # the first 5 warm up the workers
                path = self.path(rng, report, **query)
                began = time.perf_counter()
                connection.request("GET", path, headers=self.headers)
                response = connection.getresponse()
                body = response.read()
                elapsed = time.perf_counter() - began
                if response.status != 200:
                    raise SystemExit(f"bench: GET {path} -> {response.status}: {body[:500]!r}")
                if number >= 5:
                    times.append(elapsed * 1000)
        finally:
            connection.close()
        return times


@dataclass(frozen=True)
class Export:
    what: str
    rows: int
    seconds: float
    first_byte_ms: float
    peak_rss_mb: float
    rss_note: str


def _api_export(server: stack.Server, data: Seeded) -> Export:
    """The whole window's rewards through the API, counted as they stream; the gunicorn
    workers' resident memory sampled meanwhile (peak over baseline)."""
    query = urllib.parse.urlencode(
        {"from": data.first_day.isoformat(), "to": data.last_day.isoformat()}
    )
    path = f"/partnerships/{data.partnership_id}/reports/rewards/export?{query}"
    parts = urllib.parse.urlsplit(server.base_url)
    workers = stack.children(server.pid)
    baseline = {pid: _rss_mb(pid) for pid in workers}
    peak = dict(baseline)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for pid in workers:
                peak[pid] = max(peak[pid], _rss_mb(pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    began = time.perf_counter()
    connection.request("GET", path, headers={"x-api-key": data.api_key})
    response = connection.getresponse()
    if response.status != 200:
        raise SystemExit(f"bench: GET {path} -> {response.status}: {response.read(500)!r}")
    first_byte, rows = None, 0
    while chunk := response.read1(1 << 16):
        first_byte = first_byte or time.perf_counter()
        rows += chunk.count(b"\n")
    seconds = time.perf_counter() - began
    stop.set()
    sampler.join()
    connection.close()
    growth = max(peak[pid] - baseline[pid] for pid in workers)
    return Export(
        "`GET .../reports/rewards/export` (whole window, live)",
        rows - 1,  # the header line
        seconds,
        ((first_byte or began) - began) * 1000,
        max(peak.values()),
        f"gunicorn worker, grew {growth:,.0f} MB over its {max(baseline.values()):,.0f} MB",
    )


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _command_export(env: dict[str, str], data: Seeded) -> Export:
    """``manage.py export_rewards`` for the whole window to a pipe we count; its peak RSS from
    the kernel's accounting of that one process (wait4)."""
    command = [
        sys.executable,
        "manage.py",
        "export_rewards",
        "--partnership",
        str(data.partnership_id),
        "--from",
        data.first_day.isoformat(),
        "--to",
        data.last_day.isoformat(),
    ]
    began = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE)
    first_byte, rows = None, 0
    while chunk := proc.stdout.read1(1 << 16):
        first_byte = first_byte or time.perf_counter()
        rows += chunk.count(b"\n")
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - began
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(command[1:])} exited with {proc.returncode}")
    return Export(
        "`manage.py export_rewards` (whole window, live)",
        rows - 1,
        seconds,
        ((first_byte or began) - began) * 1000,
        usage.ru_maxrss / 1024,  # KiB on Linux
        "the exporting process (ru_maxrss, from its start)",
    )


# --- Selectors, in process ----------------------------------------------------------------------


def _selector_latencies(data: Seeded, rng: random.Random, count: int) -> dict[str, list]:
    """The report's selectors, one at a time, on the same random ranges."""
    from partnerships.models import Partnership
    from rewards.reports import selectors

    partnership = Partnership.objects.get(pk=data.partnership_id)
    names = ("report_unique_users", "report_totals", "report_days", "report_campaigns")
    times: dict[str, list] = {name: [] for name in names}
    for number in range(count + 2):
        first, last = _window(data, rng)
        scope = selectors.report_scope(
            partnership=partnership, mode="live", first_day=first, last_day=last
        )
        for name in names:
            began = time.perf_counter()
            getattr(selectors, name)(scope=scope)
            if number >= 2:
                times[name].append((time.perf_counter() - began) * 1000)
    return times


def _exactness(data: Seeded) -> str:
    """The first 30 days' live totals from the selectors against sums over the raw rows."""
    from django.db import connection

    from partnerships.models import Partnership
    from rewards.reports.selectors import report_scope, report_totals

    partnership = Partnership.objects.get(pk=data.partnership_id)
    last = data.first_day + timedelta(days=RANGE_DAYS - 1)
    scope = report_scope(
        partnership=partnership, mode="live", first_day=data.first_day, last_day=last
    )
    totals = report_totals(scope=scope)
    (money,) = [m for m in totals.money if m.unit == partnership.reward_unit]
    window = {"p": partnership.id, "start": scope.start, "end": scope.end}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), coalesce(sum(amount), 0), count(DISTINCT end_user_id) "
            "FROM rewards_reward WHERE partnership_id = %(p)s AND mode = 'live' "
            "AND issued_at >= %(start)s AND issued_at < %(end)s",
            window,
        )
        issued = cursor.fetchone()
        cursor.execute(
            "SELECT count(*), coalesce(sum(a.amount), 0) FROM rewards_rewardadjustment a "
            "JOIN rewards_reward r ON r.id = a.reward_id WHERE r.partnership_id = %(p)s "
            "AND r.mode = 'live' AND a.created_at >= %(start)s AND a.created_at < %(end)s",
            window,
        )
        reversed_ = cursor.fetchone()
    shown = (money.issued_count, money.issued_amount, totals.unique_users)
    shown_reversed = (money.reversed_count, money.reversed_amount)
    if shown == tuple(issued) and shown_reversed == tuple(reversed_):
        return (
            f"{data.first_day} to {last} (live): {issued[0]:,} rewards issued, {issued[1]} "
            f"{money.unit}, {reversed_[0]:,} reversals of {reversed_[1]}, {issued[2]:,} unique "
            "users: the selectors equal the sums over the raw rows"
        )
    return (
        f"**MISMATCH** {data.first_day} to {last}: selectors issued/unique {shown}, reversed "
        f"{shown_reversed}; raw rows {tuple(issued)}, {tuple(reversed_)}"
    )


# --- Report -------------------------------------------------------------------------------------


def _pct(values: list, q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _latency_row(what: str, values: list, goal: bool) -> str:
    p99 = _pct(values, 0.99)
    verdict = ""
    if goal:
        verdict = "met" if p99 < GOAL_P99_MS else "**not met**"
        verdict = f"p99 < {GOAL_P99_MS:.0f} ms: {verdict}"
    return (
        f"| {what} | {len(values)} | {statistics.median(values):.1f} | {_pct(values, 0.9):.1f} "
        f"| {p99:.1f} | {max(values):.1f} | {verdict} |"
    )


def _facts() -> dict[str, int]:
    from django.db import connection

    counts = {}
    with connection.cursor() as cursor:
        for table in (
            "rewards_reward",
            "triggers_triggerevent",
            "rewards_rewardadjustment",
            "partnerships_enduser",
            "rewards_moneybucket",
            "rewards_activitybucket",
        ):
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
            counts[table] = cursor.fetchone()[0]
        cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        counts["size"] = cursor.fetchone()[0]
    return counts


def _report(args, shape, data, busy, latencies, selector, api_export, command_export, exact):
    facts = _facts()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    seeded = f"seeded in {data.seconds:,.0f} s" if data.seconds else "reused from an earlier run"
    lines = [
        f"## Reports benchmark: {shape.rewards:,} rewards over {shape.days} days, "
        f"{shape.campaigns} campaigns, {shape.users:,} users",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {commit}. Machine: {os.cpu_count()} "
        f"cores, {busy:.0%} busy just before the run (load average "
        f"{os.getloadavg()[0]:.1f}); {stack.database_facts()}. Command: "
        f"`python -m bench.reports{' --quick' if args.quick else ''}`.",
        "",
        f"Data ({seeded}; database {facts['size']}): {facts['rewards_rewardadjustment']:,} "
        f"reversals of {facts['rewards_reward']:,} rewards (one in ten test mode), "
        f"{facts['triggers_triggerevent']:,} events, {facts['partnerships_enduser']:,} users; "
        f"aggregates: {facts['rewards_moneybucket']:,} money and "
        f"{facts['rewards_activitybucket']:,} activity rows (15-minute buckets). Partnership "
        f"zone Asia/Kolkata (UTC+05:30), days {data.first_day} to {data.last_day}.",
        "",
        f"Latency, one client, one request at a time, random {RANGE_DAYS}-day ranges (and "
        "random moments for the liability), live mode; gunicorn "
        f"`{' '.join(stack.GUNICORN)}`, DEBUG off:",
        "",
        "| what | requests | p50 ms | p90 ms | p99 ms | max ms | goal |",
        "|---|---:|---:|---:|---:|---:|---|",
        _latency_row(
            f"`GET .../reports/rewards?from&to&group_by=day` ({RANGE_DAYS} days)",
            latencies["day"],
            goal=True,
        ),
        _latency_row(
            f"`GET .../reports/rewards?group_by=campaign` ({RANGE_DAYS} days)",
            latencies["campaign"],
            goal=True,
        ),
        _latency_row("`GET .../reports/liability?at=`", latencies["liability"], goal=True),
        *(
            _latency_row(f"`{name}` in process ({RANGE_DAYS} days)", values, goal=False)
            for name, values in selector.items()
        ),
        "",
        "CSV export of the whole window (streamed; rows counted as they arrive):",
        "",
        "| path | rows | seconds | rows/s | first byte ms | peak RSS MB | memory measured |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for export in (command_export, api_export):
        lines.append(
            f"| {export.what} | {export.rows:,} | {export.seconds:.1f} "
            f"| {export.rows / export.seconds:,.0f} | {export.first_byte_ms:,.0f} "
            f"| {export.peak_rss_mb:,.0f} | {export.rss_note} |"
        )
    lines += ["", f"Exactness at scale: {exact}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
