"""Soak (issue 13): a bounded run of N events through ingest and evaluation, watching whether
anything grows without bound.

    python -m bench.soak [--events 200000] [--rate 400] [--sample-seconds 5] [--quick]

The stack of the end-to-end benchmark (gunicorn as ``config/gunicorn.py`` runs it, one
``celery worker -c 2``, one campaign rewarding every event), its open-loop client at a fixed
rate (``bench.openloop``). Every ``--sample-seconds`` a thread records, into
var/bench/soak-<UTC time>.csv: events accepted so far (the client's 2xx), pending (queued, not
yet claimed), the resident memory (RSS) of gunicorn's master and workers and of the Celery
worker's parent and children, the broker's queue and unacknowledged messages, the Redis
server's memory, and per table its size with indexes and TOAST
(``pg_total_relation_size``) and its indexes alone.

The summary (printed, and var/bench/soak.md / soak.json): per process group, the RSS slope over
the second half of the run (MB per 100,000 events; ~0 when nothing leaks), per table the bytes
per event from a least-squares line through (events, size) and how well a line fits (R^2; the
tables should grow linearly in events, the counters' and buckets' not at all), the pending
queue at the end, and rewards == events once drained (nothing lost, nothing twice).
"""

import argparse
import csv
import datetime
import math
import statistics
import sys
import threading
import time
from pathlib import Path

from . import e2e, openloop, stack

TABLES = (
    "triggers_triggerevent",
    "rewards_reward",
    "triggers_triggereventclaim",
    "rewards_campaigncounter",
    "rewards_usercounter",
    "rewards_webhookdelivery",
    "rewards_moneybucket",
    "rewards_activitybucket",
)
# A server run with autovacuum off (this machine's CI configuration does) never reclaims the
# rows that are rewritten or deleted in place: the sampler then vacuums those tables every
# autovacuum_naptime (1 min), as autovacuum would (their dead rows pass its threshold of 50
# within seconds). The events and rewards tables, which grow with the events, are left alone.
CHURNED = (
    "triggers_triggereventclaim",
    "rewards_campaigncounter",
    "rewards_usercounter",
    "rewards_moneybucket",
    "rewards_activitybucket",
)
VACUUM_EVERY = 60.0
GROUPS = ("web_master", "web_workers", "worker_parent", "worker_children")
# RSS over the run's second half may move by this much per 100,000 events and count as flat.
RSS_FLAT_MB_PER_100K = 2.0
# A table that grew by less than this over the run is flat (counters, buckets); one that grew
# more should follow a line in events this closely.
FLAT_TABLE_BYTES = 2**20
LINEAR_R2 = 0.98


def main(argv: list[str]) -> int:
    args = _parse(argv)
    return stack.run_with_django(lambda env: _run(args, env))


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--events", type=int, default=200_000, help="events to send (target 10^6)")
    parser.add_argument("--rate", type=float, default=400.0, help="events/s, open loop")
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="9,000 events at 450/s, 1 s samples")
    parser.add_argument("--out", default="soak", help="report name under var/bench/")
    if "--quick" in argv:  # its sizes, unless given
        parser.set_defaults(events=9000, rate=450.0, sample_seconds=1.0, users=1000)
    return parser.parse_args(argv)


def _run(args: argparse.Namespace, env: dict[str, str]) -> int:
    from config import devstack

    from .evaluation import Worker

    started = time.monotonic()
    busy = stack.machine_busy()
    fixture = stack.prepare(args.users)
    e2e._campaign(fixture)
    out = devstack.VAR / "bench"
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    csv_path = out / f"soak-{stamp}.csv"
    seconds = args.events / args.rate
    worker = Worker(env)
    try:
        with stack.gunicorn(env, e2e._free_port(), e2e.GUNICORN) as server:
            url = f"{server.base_url}/partnerships/{fixture.partnership_id}/triggers"
            e2e._reset()
            run = openloop.Run(args.rate, seconds)
            sampler = _Sampler(
                csv_path,
                env["DATABASE_URL"],
                run,
                server.pid,
                worker.process.pid,
                args.sample_seconds,
            )
            sampler.start()
            try:
                openloop.run(
                    url,
                    fixture.api_key,
                    args.users,
                    args.rate,
                    seconds,
                    dsn=env["DATABASE_URL"],
                    pending_every=1.0,
                    result=run,
                )
                pending_at_end = e2e._pending()
                drained = e2e._drain(max(60.0, seconds))
            finally:
                sampler.stop()
        events, rewards = e2e._events(), _rewards()
    finally:
        worker.stop()
    summary = _summary(args, busy, sampler.rows, run, events, rewards, pending_at_end, drained)
    summary["csv"] = str(csv_path)
    summary["vacuumed_by_bench"] = sampler.vacuuming
    summary["wall_seconds"] = round(time.monotonic() - started, 1)
    report = _report(summary)
    openloop.write_json(out / f"{args.out}.json", summary)
    (out / f"{args.out}.md").write_text(report)
    print(report)
    print(f"bench.soak: samples in {csv_path}; summary in {out / args.out}.md", file=sys.stderr)
    e2e._reset()
    return 0


def _rewards() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM rewards_reward")
        return cursor.fetchone()[0]


class _Sampler(threading.Thread):
    """Samples every ``every`` seconds into ``path`` (CSV) and ``rows`` (dicts), on its own
    database connection."""

    def __init__(self, path: Path, dsn: str, run: openloop.Run, web: int, worker: int, every):
        super().__init__(name="soak-sampler", daemon=True)
        self.path, self.dsn, self.run_, self.every = path, dsn, run, every
        self.web, self.worker = web, worker
        self.rows: list[dict] = []
        self.vacuuming = False
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()
        self.join()

    def run(self) -> None:
        import psycopg
        from django.conf import settings
        from redis import Redis

        redis = Redis.from_url(settings.CELERY_BROKER_URL)
        began = time.monotonic()
        with psycopg.connect(self.dsn, autocommit=True) as conn, self.path.open("w") as out:
            self.vacuuming = conn.execute("SHOW autovacuum").fetchone()[0] != "on"
            vacuumed = began
            writer = None
            while True:
                if self.vacuuming and time.monotonic() - vacuumed >= VACUUM_EVERY:
                    conn.execute(f"VACUUM {', '.join(CHURNED)}")
                    vacuumed = time.monotonic()
                row = self._sample(conn, redis, time.monotonic() - began)
                self.rows.append(row)
                if writer is None:
                    writer = csv.DictWriter(out, fieldnames=list(row))
                    writer.writeheader()
                writer.writerow(row)
                out.flush()
                if self._stopping.wait(self.every):
                    break

    def _sample(self, conn, redis, elapsed: float) -> dict:
        (pending,) = conn.execute(openloop.PENDING_SQL).fetchone()
        sizes = conn.execute(
            "SELECT relname, pg_total_relation_size(oid), pg_indexes_size(oid) FROM pg_class "
            "WHERE relname = ANY(%s) AND relkind = 'r'",
            [list(TABLES)],
        ).fetchall()
        web_children = _children(self.web)
        worker_children = _children(self.worker)
        row = {
            "seconds": round(elapsed, 2),
            "accepted": self.run_.ok,
            "pending": pending,
            "web_master_kb": _rss_kb([self.web]),
            "web_workers_kb": _rss_kb(web_children),
            "web_workers": len(web_children),
            "worker_parent_kb": _rss_kb([self.worker]),
            "worker_children_kb": _rss_kb(worker_children),
            "worker_children": len(worker_children),
            # The broker's queue and Celery's unacknowledged messages, in our Redis db; and the
            # whole Redis server's memory (every db: meaningful only with nothing else on it).
            "broker_queue": redis.llen("celery"),
            "broker_unacked": redis.hlen("unacked"),
            "redis_used_kb": int(redis.info("memory")["used_memory"]) // 1024,
        }
        for name, total, indexes in sorted(sizes):
            row[f"{name}_bytes"] = total
            row[f"{name}_index_bytes"] = indexes
        return row


def _children(pid: int) -> list[int]:
    try:
        return stack.children(pid)
    except OSError:
        return []


def _rss_kb(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass  # exited between listing and reading
    return total


def _fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares slope and R^2 of ``points`` (x, y); (0, nan) when x does not vary."""
    if len(points) < 2:
        return 0.0, math.nan
    mx = statistics.fmean(x for x, _ in points)
    my = statistics.fmean(y for _, y in points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    syy = sum((y - my) ** 2 for _, y in points)
    sxy = sum((x - mx) * (y - my) for x, y in points)
    if not sxx:
        return 0.0, math.nan
    slope = sxy / sxx
    r2 = sxy * sxy / (sxx * syy) if syy else 1.0  # a flat line is fitted exactly
    return slope, r2


def _summary(args, busy, rows, run, events, rewards, pending_at_end, drained) -> dict:
    # Events evaluated so far, per sample: accepted less pending (the x of the fits).
    second_half = rows[len(rows) // 2 :]
    rss = {}
    for group in GROUPS:
        column = f"{group}_kb"
        slope, _ = _fit([(r["accepted"] - r["pending"], r[column]) for r in second_half])
        rss[group] = {
            "start_mb": rows[0][column] / 1024 if rows else math.nan,
            "half_mb": second_half[0][column] / 1024 if second_half else math.nan,
            "end_mb": rows[-1][column] / 1024 if rows else math.nan,
            "mb_per_100k_events_second_half": slope * 100_000 / 1024,
        }
        rss[group]["flat"] = abs(rss[group]["mb_per_100k_events_second_half"]) <= (
            RSS_FLAT_MB_PER_100K
        )
    tables = {}
    for name in TABLES:
        column = f"{name}_bytes"
        if not rows or column not in rows[-1]:
            continue
        slope, r2 = _fit([(r["accepted"] - r["pending"], r[column]) for r in rows])
        start, end = rows[0][column], rows[-1][column]
        if end - start < FLAT_TABLE_BYTES:
            verdict = "flat"
        else:
            verdict = "linear" if r2 >= LINEAR_R2 else "not linear"
        tables[name] = {
            "start_bytes": start,
            "end_bytes": end,
            "end_index_bytes": rows[-1][f"{name}_index_bytes"],
            "bytes_per_event": slope,
            "r2": r2,
            "verdict": verdict,
        }
    pending = [(r["seconds"], r["pending"]) for r in second_half]
    growth, _ = _fit(pending)
    return {
        "command": "python -m bench.soak " + " ".join(sys.argv[1:]),
        "busy_before": busy,
        "events_asked": args.events,
        "rate": args.rate,
        "seconds": run.seconds,
        "samples": len(rows),
        "accepted": min(run.ok, events),
        "errors": run.errors,
        "events": events,
        "rewards": rewards,
        "ingest_p50_ms": openloop.percentile(run.latencies, 50) * 1000,
        "ingest_p99_ms": openloop.percentile(run.latencies, 99) * 1000,
        "pending_at_end": pending_at_end,
        "pending_growth_per_s_second_half": growth,
        "drained": drained,
        "rss": rss,
        "tables": tables,
        "redis_used_mb": {
            "start": rows[0]["redis_used_kb"] / 1024 if rows else math.nan,
            "end": rows[-1]["redis_used_kb"] / 1024 if rows else math.nan,
        },
        "broker_queue_max": max((r["broker_queue"] for r in rows), default=0),
        "broker_unacked_max": max((r["broker_unacked"] for r in rows), default=0),
    }


def _bold_if(text: str, condition: bool) -> str:
    return f"**{text}**" if condition else text


def _report(s: dict) -> str:
    lines = [
        f"## Soak: `{s['command'].strip()}`",
        "",
        f"{s['events_asked']:,} events asked at {s['rate']:,.0f}/s open loop ({s['seconds']:,.0f} "
        f"s), {s['busy_before']:.0%} busy before; {s['accepted']:,} accepted, {s['errors']:,} "
        f"errors, ingest p50/p99 {s['ingest_p50_ms']:.1f}/{s['ingest_p99_ms']:.1f} ms; "
        f"{s['pending_at_end']:,} pending when the load stopped, "
        + ("drained" if s["drained"] else "**not drained**")
        + f"; {s['rewards']:,} rewards for {s['events']:,} events ("
        + ("one each" if s["rewards"] == s["events"] else "**not one each**")
        + f"). {s['samples']} samples, in `{s['csv']}`. Wall time {s['wall_seconds']:.0f} s.",
        "",
        "| process group | RSS start MB | at half | end | MB per 100k events, 2nd half | flat |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for group, r in s["rss"].items():
        lines.append(
            f"| {group} | {r['start_mb']:.1f} | {r['half_mb']:.1f} | {r['end_mb']:.1f} "
            f"| {r['mb_per_100k_events_second_half']:+.2f} | {'yes' if r['flat'] else '**no**'} |"
        )
    lines += [
        "",
        "| table | size start | size end (indexes) | bytes per event (fit) | R^2 | growth |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, t in s["tables"].items():
        lines.append(
            f"| {name} | {t['start_bytes'] / 2**20:,.1f} MB | {t['end_bytes'] / 2**20:,.1f} MB "
            f"({t['end_index_bytes'] / 2**20:,.1f}) | {t['bytes_per_event']:,.0f} "
            f"| {t['r2']:.3f} | {_bold_if(t['verdict'], t['verdict'] == 'not linear')} |"
        )
    lines += [
        "",
        f"Pending queue over the second half: {s['pending_growth_per_s_second_half']:+.2f} "
        f"events/s. Broker: at most {s['broker_queue_max']} messages queued and "
        f"{s['broker_unacked_max']} unacknowledged; the Redis server's memory (all its dbs) "
        f"{s['redis_used_mb']['start']:.1f} -> {s['redis_used_mb']['end']:.1f} MB. "
        f"RSS flat: within +-{RSS_FLAT_MB_PER_100K:g} MB "
        "per 100,000 events over the second half (x: events evaluated, accepted less pending); "
        f"a table is flat if it grew by under {FLAT_TABLE_BYTES // 2**20} MB, linear if a line in "
        f"events fits its size with R^2 >= {LINEAR_R2}. A short run (`--quick`) cannot tell a "
        "slow leak from noise: the slopes are extrapolated from a few thousand events.",
        "",
    ]
    if s.get("vacuumed_by_bench"):
        lines[-1:-1] = [
            "",
            "The server runs with autovacuum off: the bench vacuumed "
            f"{', '.join(CHURNED)} every {VACUUM_EVERY:g} s, as autovacuum would.",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
