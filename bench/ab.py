"""A/B: this checkout against another commit, both benchmarks, interleaved in one run.

    python -m bench.ab --base REF [--rounds 3] [--duration 8] [--events 5000]

REF is checked out (detached) in var/bench/ab-base, sharing this checkout's .venv. Each round
runs the ingest bench (`python -m bench`) and the evaluation bench (`python -m bench.evaluation`)
once on each side, alternating which side goes first, each side on a database of its own.
A round's two runs are back to back, so the per-round ratio head/base is the steady figure
(the machine's speed drifts between minutes); the medians of those ratios are the verdict.
Written to var/bench/ab.md.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

from . import stack

ROOT = Path(__file__).resolve().parent.parent
BASE_DIR = ROOT / "var" / "bench" / "ab-base"
GOAL = 0.95  # head >= 0.95 x base on every figure
# The base side runs its own bench code with the default database name; drop both first so
# neither side meets the other's schema.
# BENCH_AB_DATABASE names another pair (e.g. beside another bench run on the same server).
_PREFIX = os.environ.get("BENCH_AB_DATABASE", "campaign_rewards_bench")
DATABASES = {"base": _PREFIX, "head": f"{_PREFIX}_head"}


def main(argv: list[str]) -> int:
    args = _parse(argv)
    exclusive()
    base_commit = _checkout(args.base)
    head_commit = head_label()
    _drop_databases()
    results: dict[str, list[dict[str, float]]] = {"base": [], "head": []}
    for number in range(args.rounds):
        sides = ["base", "head"] if number % 2 == 0 else ["head", "base"]
        for side in sides:
            print(f"bench.ab: round {number + 1}/{args.rounds}: {side}", file=sys.stderr)
            results[side].append(_measure(side, args))
    publish(_report(args, base_commit, head_commit, results), "ab")
    return 0


def publish(report: str, name: str) -> None:
    """Prints the report and writes it to var/bench/<name>.md."""
    print(report)
    out = ROOT / "var" / "bench" / f"{name}.md"
    out.write_text(report)
    print(f"bench.{name}: written to {out}", file=sys.stderr)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.split("\n")[0])
    parser.add_argument("--base", required=True, help="commit to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per ingest run")
    parser.add_argument("--events", type=int, default=5000, help="events per evaluation run")
    return parser.parse_args(argv)


def head_label() -> str:
    """This checkout's commit, ``-dirty`` when it has uncommitted changes (they are measured)."""
    return _git(ROOT, "describe", "--always", "--dirty", "--abbrev=7")


def exclusive() -> None:
    """One A/B at a time: the next steps check out the base and drop both databases."""
    stack.hold_lock(ROOT / "var" / "bench" / ".ab.lock", "A/B")


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def _checkout(ref: str, directory: Path = BASE_DIR) -> str:
    commit = _git(ROOT, "rev-parse", "--short", ref)
    if not (directory / ".git").exists():
        directory.parent.mkdir(parents=True, exist_ok=True)
        _git(ROOT, "worktree", "add", "--detach", "--force", str(directory), commit)
    else:
        _git(directory, "checkout", "--detach", "--force", commit)
    venv = directory / ".venv"
    if not venv.exists():
        venv.symlink_to(ROOT / ".venv")
    return commit


def _drop_databases() -> None:
    for database in DATABASES.values():
        subprocess.run(
            [sys.executable, "-c", _DROP, database], cwd=ROOT, check=True, env=_env("head")
        )


_DROP = """
import sys, psycopg
from config import devstack
url = devstack.resolve("test")["DATABASE_URL"]
with psycopg.connect(url, autocommit=True) as conn:
    conn.execute(f'DROP DATABASE IF EXISTS "{sys.argv[1]}" WITH (FORCE)')
"""


def _env(side: str, directory: Path | None = None) -> dict[str, str]:
    # Each side on its own database; the head's evaluation bench skips its own with/without
    # comparison of the report aggregates (the A/B is that comparison, against the base).
    env = {**os.environ, "BENCH_DATABASE": DATABASES[side], "BENCH_COST_ROUNDS": "0"}
    if directory is None and side == "base":
        directory = BASE_DIR
    if directory is not None:
        # The shared .venv's editable install maps the project's packages to this checkout:
        # a module the detached checkout lacks would be imported from here (gunicorn and
        # celery, started as scripts, would import all of it from here). It imports only its own.
        site = _base_site()
        env["PYTHONPATH"] = os.pathsep.join([str(site), str(directory)])
    return env


def _base_site() -> Path:
    site = BASE_DIR.parent / "ab-base-site"
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(
        "import sys\n"
        "sys.meta_path[:] = [finder for finder in sys.meta_path\n"
        "                    if not getattr(finder, '__module__', '').startswith('__editable__')]\n"
    )
    return site


def _measure(side: str, args: argparse.Namespace) -> dict[str, float]:
    cwd = BASE_DIR if side == "base" else ROOT
    python = str(ROOT / ".venv" / "bin" / "python")
    ingest = ["-m", "bench", "--rounds", "1", "--duration", str(args.duration)]
    evaluation = ["-m", "bench.evaluation", "--events", str(args.events)]
    evaluation += ["--noop-tasks", str(args.events)]
    figures = {}
    for command, report, parse in [
        (ingest, "ingest.md", _ingest_figures),
        (evaluation, "evaluation.md", _evaluation_figures),
    ]:
        subprocess.run([python, *command], cwd=cwd, env=_env(side), check=True)
        figures.update(parse((cwd / "var" / "bench" / report).read_text()))
    return figures


def _number(cell: str) -> float:
    return float(cell.strip().strip("*").replace(",", ""))


def _ingest_figures(text: str) -> dict[str, float]:
    rates = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        # The summary table's rows (the per-run table's first cells are the bare names).
        if len(cells) > 3 and cells[1].startswith("ours:"):
            rates["ours"] = _number(cells[2])
        elif len(cells) > 3 and cells[1] == "bare Django JSON view":
            rates["bare"] = _number(cells[2])
    return {"ingest req/s": rates["ours"], "ingest x bare": rates["ours"] / rates["bare"]}


_EVALUATION_ROW = re.compile(r"^\| (\d+) \| (all|~1 in 10) \| [\d,]+ \| ([\d,]+) \| ([\d.]+) \|")


def _evaluation_figures(text: str) -> dict[str, float]:
    figures = {}
    for line in text.splitlines():
        match = _EVALUATION_ROW.match(line)
        if match:
            count, matching, rate, per_noop = match.groups()
            label = f"evaluation {count} campaigns{' all rewarding' if matching == 'all' else ''}"
            figures[f"{label} events/s"] = _number(rate)
            figures[f"{label} x no-op"] = float(per_noop)
    return figures


def _report(args, base_commit: str, head_commit: str, results) -> str:
    names = list(results["head"][0])
    lines = [
        f"## A/B: {head_commit} (head) against {base_commit} (base), {args.rounds} rounds, "
        "interleaved",
        "",
        f"Command: `python -m bench.ab --base {args.base} --rounds {args.rounds} "
        f"--duration {args.duration:g} --events {args.events}`. Each round runs both benchmarks "
        "on both sides back to back (alternating which goes first); a ratio is head / base "
        "within one round.",
        "",
        "| figure | base (median) | head (median) | head / base per round | median ratio | |",
        "|---|---:|---:|---|---:|---|",
    ]
    worst = None
    for name in names:
        base = [r[name] for r in results["base"]]
        head = [r[name] for r in results["head"]]
        ratios = [h / b for h, b in zip(head, base, strict=True)]
        ratio = statistics.median(ratios)
        worst = ratio if worst is None else min(worst, ratio)
        lines.append(
            f"| {name} | {statistics.median(base):,.2f} | {statistics.median(head):,.2f} "
            f"| {', '.join(f'{r:.2f}' for r in ratios)} | {ratio:.2f} "
            f"| {'ok' if ratio >= GOAL else '**below ' + str(GOAL) + '**'} |"
        )
    lines += ["", f"Goal: every median ratio >= {GOAL}; the lowest is {worst:.2f}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
