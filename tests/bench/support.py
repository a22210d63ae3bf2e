"""Running a benchmark's quick mode as its own process, on a database of its own."""

import json
import subprocess
import sys
import urllib.parse
from pathlib import Path

from django.conf import settings
from django.db import connection

from tests.support import ROOT, process_env


def bench_run(module: str, *args: str, name: str, timeout: float = 120) -> dict:
    """``python -m <module> --out <name> *args`` against this run's servers; its JSON summary
    (var/bench/<name>.json). Its database is this test database's name + ``_bench``: the bench
    migrates and empties it, never the test database or the developer's bench."""
    broker_db = urllib.parse.urlsplit(settings.CELERY_BROKER_URL).path.strip("/") or "0"
    env = process_env(
        BENCH_DATABASE=f"{connection.settings_dict['NAME']}_bench",
        BENCH_REDIS_DB=broker_db,
    )
    out = Path(ROOT) / "var" / "bench" / f"{name}.json"
    out.unlink(missing_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", module, "--out", name, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{module} failed:\n{done.stderr[-4000:]}"
    return json.loads(out.read_text())
