"""A/B of one evaluation scenario, paired in time: base and head runs in ABBA blocks.

    python -m bench.abba --base REF [--campaigns 1] [--events 60000] [--blocks 6]

`bench.ab` runs every benchmark once per side per round; on this VM, whose speed drifts by
10-20% from one minute to the next, a short scenario (1 campaign: 20,000 events in ~3 s) swings
from 0.6x to 1.6x between rounds. Here each side keeps one process with Django set up on its own
database (as `bench.ab` gives it), and the evaluation runs of one scenario alternate in blocks
base, head, head, base (the next block head, base, base, head): a drift that is linear over a
block cancels out of the block's ratio (head's two runs / base's two runs). Each run is the
evaluation bench's own run (`bench.evaluation._evaluation_rate` of that side's code: events
inserted as queued, one `celery worker -c 2` started, the clock from the wake-up to the last
event processed). The verdict is the median of the block ratios. Written to var/bench/abba.md.
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


class Side:
    def __init__(self, side: str, users: int) -> None:
        self.name = side
        self.process = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "python"), "-c", _DRIVER, str(users)],
            cwd=BASE_DIR if side == "base" else ROOT,
            env=_env(side),
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

    def run(self, campaigns: int, all_match: bool, events: int) -> float:
        self.process.stdin.write(f"{campaigns} {int(all_match)} {events}\n")
        self.process.stdin.flush()
        return self._answer()["rate"]

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=120)


def main(argv: list[str]) -> int:
    args = _parse(argv)
    exclusive()
    base_commit = _checkout(args.base)
    head_commit = head_label()
    _drop_databases()
    sides = {name: Side(name, args.users) for name in ("base", "head")}
    blocks = []
    try:
        for number in range(args.blocks):
            order = ["base", "head", "head", "base"]
            if number % 2:
                order = ["head", "base", "base", "head"]
            rates: dict[str, list[float]] = {"base": [], "head": []}
            for name in order:
                rate = sides[name].run(args.campaigns, args.all_match, args.events)
                rates[name].append(rate)
                print(f"bench.abba: block {number + 1}: {name} {rate:,.0f}", file=sys.stderr)
            blocks.append(rates)
    finally:
        for side in sides.values():
            side.close()
    publish(_report(args, base_commit, head_commit, blocks), "abba")
    return 0


def _parse(argv: list[str]) -> argparse.Namespace:
    description = __doc__.split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m bench.abba", description=description)
    parser.add_argument("--base", required=True, help="commit to compare against")
    parser.add_argument("--campaigns", type=int, default=1, help="active campaigns (1, 10, 100)")
    parser.add_argument("--all-match", action="store_true", help="every campaign rewards")
    parser.add_argument("--events", type=int, default=60000, help="events per run")
    parser.add_argument("--blocks", type=int, default=6, help="ABBA blocks (4 runs each)")
    parser.add_argument("--users", type=int, default=1000)
    return parser.parse_args(argv)


def _report(args, base_commit: str, head_commit: str, blocks) -> str:
    ratios = [sum(b["head"]) / sum(b["base"]) for b in blocks]
    ratio = statistics.median(ratios)
    scenario = f"{args.campaigns} campaign{'s' if args.campaigns > 1 else ''}"
    scenario += " all rewarding" if args.all_match else ""
    lines = [
        f"## A/B paired in time: {head_commit} (head) against {base_commit} (base), "
        f"evaluation, {scenario}",
        "",
        f"Command: `python -m bench.abba --base {args.base} --campaigns {args.campaigns}"
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
