"""A/B of one scenario, paired in time: base and head runs in ABBA blocks.

    python -m bench.abba --base REF [--head REF] [--campaigns 1] [--events 60000] [--blocks 6]
    python -m bench.abba --base REF [--head REF] --ingest [--duration 8] [--blocks 6]

`bench.ab` runs every benchmark once per side per round; on this VM, whose speed drifts by
10-20% from one minute to the next, a short scenario (1 campaign: 20,000 events in ~3 s) swings
from 0.6x to 1.6x between rounds. Here each side keeps one process with Django set up on its own
database (as `bench.ab` gives it), and the evaluation runs of one scenario alternate in blocks
base, head, head, base (the next block head, base, base, head): a drift that is linear over a
block cancels out of the block's ratio (head's two runs / base's two runs). Each run is the
evaluation bench's own run (`bench.evaluation._evaluation_rate` of that side's code: events
inserted as queued, one `celery worker -c 2` started, the clock from the wake-up to the last
event processed). The verdict is the median of the block ratios. Written to var/bench/abba.md.

With ``--ingest`` the scenario is the ingest endpoint instead: each side starts its gunicorn
once (as `python -m bench` does) and a run is wrk against our endpoint for ``--duration``
seconds, counting the 200s whose event is stored; beside the rate, the gunicorn workers' CPU
per request (read from /proc), which other load on the machine disturbs far less than the rate.
"""

import argparse
import json
import statistics
import subprocess
import sys

from .ab import (
    BASE_DIR,
    GOAL,
    ROOT,
    _checkout,
    _drop_databases,
    _env,
    exclusive,
    head_label,
    publish,
)

# Runs in each side's checkout, with that side's code: set up once, then one evaluation run per
# line read ("<campaigns> <all_match 0|1> <events>"), answering one line of JSON.
_DRIVER = """
import json, os, sys
from bench import stack
from bench import evaluation
from config import devstack

env = stack.resolve()
os.environ.update(env)
import django

django.setup()
try:
    fixture = stack.prepare(users=int(sys.argv[1]))
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        count, all_match, events = (int(word) for word in line.split())
        rate = evaluation._evaluation_rate(env, fixture, count, bool(all_match), events)
        print(json.dumps({"rate": rate}), flush=True)
finally:
    devstack.stop_started()
"""


# The same for the ingest endpoint: gunicorn started once; a line "<seconds>" runs wrk that long
# (events emptied first) and answers the rate of stored 200s and the web tier's CPU per request.
_INGEST_DRIVER = """
import json, os, sys
from bench import load, stack
from bench.__main__ import _free_port, _rows_after_run
from config import devstack

env = stack.resolve()
os.environ.update(env)
import django

django.setup()
try:
    users = int(sys.argv[1])
    fixture = stack.prepare(users=users)
    out = devstack.VAR / "bench"
    out.mkdir(parents=True, exist_ok=True)
    script = load.wrk_script(out, fixture.api_key, users)
    with stack.gunicorn(env, _free_port()) as server:
        url = f"{server.base_url}/partnerships/{fixture.partnership_id}/triggers"

        def run(seconds):
            stack.events_reset()
            cpu = server.cpu_seconds()
            measured = load.wrk(url, script, seconds, threads=2, connections=32)
            cpu = server.cpu_seconds() - cpu
            stored = min(measured.ok, _rows_after_run())
            return stored / measured.seconds, cpu * 1000 / max(1, measured.requests)

        run(3.0)  # warm-up: connections, per-process caches
        print(json.dumps({"ready": True}), flush=True)
        for line in sys.stdin:
            rate, cpu_ms = run(float(line))
            print(json.dumps({"rate": rate, "cpu_ms": cpu_ms}), flush=True)
finally:
    stack.events_reset()
    devstack.stop_started()
"""


# Both sides run from detached checkouts of their commits, imported the same way (PYTHONPATH, the
# editable install hidden): an A/A of one commit then reads ~1.0, where head-from-this-checkout
# against base-from-a-detached-one read 1.09 (stop 19's A/A on the same code).
HEAD_DIR = ROOT / "var" / "bench" / "ab-head"


class Side:
    def __init__(self, side: str, users: int, driver: str = _DRIVER) -> None:
        self.name = side
        directory = BASE_DIR if side == "base" else HEAD_DIR
        self.process = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "python"), "-c", driver, str(users)],
            cwd=directory,
            env=_env(side, directory),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._answer()

    def _answer(self) -> dict:
        while True:  # the side's own output may share its stdout: the answer is a JSON line
            line = self.process.stdout.readline()
            if not line:
                raise SystemExit(f"bench.abba: the {self.name} side stopped, see its output above")
            if line.startswith("{"):
                return json.loads(line)
            print(line, end="", file=sys.stderr)

    def run(self, line: str) -> dict:
        self.process.stdin.write(f"{line}\n")
        self.process.stdin.flush()
        return self._answer()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=120)


def main(argv: list[str]) -> int:
    args = _parse(argv)
    exclusive()
    base_commit = _checkout(args.base)
    head_commit = _checkout(args.head, HEAD_DIR)
    if args.head == "HEAD" and head_label().endswith("-dirty"):
        print(
            f"bench.abba: uncommitted changes are not measured (head is {head_commit})",
            file=sys.stderr,
        )
    _drop_databases()
    driver = _INGEST_DRIVER if args.ingest else _DRIVER
    line = f"{args.duration}" if args.ingest else f"{args.campaigns} {int(args.all_match)} "
    line += "" if args.ingest else f"{args.events}"
    sides = {name: Side(name, args.users, driver) for name in ("base", "head")}
    blocks = []
    try:
        for number in range(args.blocks):
            order = ["base", "head", "head", "base"]
            if number % 2:
                order = ["head", "base", "base", "head"]
            runs: dict[str, list[dict]] = {"base": [], "head": []}
            for name in order:
                answer = sides[name].run(line)
                runs[name].append(answer)
                cpu = f" cpu {answer['cpu_ms']:.3f} ms/req" if "cpu_ms" in answer else ""
                print(
                    f"bench.abba: block {number + 1}: {name} {answer['rate']:,.0f}/s{cpu}",
                    file=sys.stderr,
                )
            blocks.append(runs)
    finally:
        for side in sides.values():
            side.close()
    report = _ingest_report if args.ingest else _report
    publish(report(args, base_commit, head_commit, blocks), "abba")
    return 0


def _parse(argv: list[str]) -> argparse.Namespace:
    description = __doc__.split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m bench.abba", description=description)
    parser.add_argument("--base", required=True, help="commit to compare against")
    parser.add_argument("--head", default="HEAD", help="commit measured as head (HEAD)")
    parser.add_argument("--campaigns", type=int, default=1, help="active campaigns (1, 10, 100)")
    parser.add_argument("--all-match", action="store_true", help="every campaign rewards")
    parser.add_argument("--events", type=int, default=60000, help="events per run")
    parser.add_argument("--blocks", type=int, default=6, help="ABBA blocks (4 runs each)")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--ingest", action="store_true", help="the ingest endpoint instead")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per ingest run")
    return parser.parse_args(argv)


def _report(args, base_commit: str, head_commit: str, blocks) -> str:
    blocks = [{name: [run["rate"] for run in b[name]] for name in b} for b in blocks]
    ratios = [sum(b["head"]) / sum(b["base"]) for b in blocks]
    ratio = statistics.median(ratios)
    scenario = f"{args.campaigns} campaign{'s' if args.campaigns > 1 else ''}"
    scenario += " all rewarding" if args.all_match else ""
    lines = [
        f"## A/B paired in time: {head_commit} (head) against {base_commit} (base), "
        f"evaluation, {scenario}",
        "",
        f"Command: `python -m bench.abba --base {args.base} --head {args.head} "
        f"--campaigns {args.campaigns}"
        f"{' --all-match' if args.all_match else ''} --events {args.events} "
        f"--blocks {args.blocks}`. Runs in blocks ABBA / BAAB; a block's ratio is head's two "
        "runs over base's two.",
        "",
        "| block | base events/s | head events/s | head / base |",
        "|---:|---|---|---:|",
    ]
    for number, (block, block_ratio) in enumerate(zip(blocks, ratios, strict=True), 1):
        base = ", ".join(f"{rate:,.0f}" for rate in block["base"])
        head = ", ".join(f"{rate:,.0f}" for rate in block["head"])
        lines.append(f"| {number} | {base} | {head} | {block_ratio:.3f} |")
    every = {name: [rate for b in blocks for rate in b[name]] for name in ("base", "head")}
    lines += [
        "",
        f"Median of the block ratios: **{ratio:.3f}** (goal >= {GOAL}: "
        f"{'met' if ratio >= GOAL else 'not met'}); median events/s base "
        f"{statistics.median(every['base']):,.0f}, head {statistics.median(every['head']):,.0f}.",
        "",
    ]
    return "\n".join(lines)


def _ingest_report(args, base_commit: str, head_commit: str, blocks) -> str:
    def block_ratio(block: dict, figure: str) -> float:
        head = sum(run[figure] for run in block["head"])
        return head / sum(run[figure] for run in block["base"])

    rate_ratios = [block_ratio(b, "rate") for b in blocks]
    # CPU per request: less is better, so base / head reads like the rate's head / base.
    cpu_ratios = [1 / block_ratio(b, "cpu_ms") for b in blocks]
    lines = [
        f"## A/B paired in time: {head_commit} (head) against {base_commit} (base), ingest",
        "",
        f"Command: `python -m bench.abba --base {args.base} --head {args.head} --ingest "
        f"--duration {args.duration:g}"
        f" --blocks {args.blocks}`. wrk against our endpoint (2 threads, 32 connections), runs "
        "in blocks ABBA / BAAB; a block's rate ratio is head's two runs over base's two; its CPU "
        "ratio is base's CPU per request over head's (above 1: head costs less).",
        "",
        "| block | base req/s | head req/s | head / base | base CPU ms/req | head CPU ms/req "
        "| base / head CPU |",
        "|---:|---|---|---:|---|---|---:|",
    ]
    for number, block in enumerate(blocks, 1):
        cells = []
        for figure, spec in (("rate", ",.0f"), ("cpu_ms", ".3f")):
            for name in ("base", "head"):
                cells.append(", ".join(format(run[figure], spec) for run in block[name]))
        lines.append(
            f"| {number} | {cells[0]} | {cells[1]} | {rate_ratios[number - 1]:.3f} "
            f"| {cells[2]} | {cells[3]} | {cpu_ratios[number - 1]:.3f} |"
        )
    rate, cpu = statistics.median(rate_ratios), statistics.median(cpu_ratios)
    lines += [
        "",
        f"Median of the block ratios: rate **{rate:.3f}**, CPU per request **{cpu:.3f}** "
        f"(goal >= {GOAL}: {'met' if min(rate, cpu) >= GOAL else 'not met'}).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
