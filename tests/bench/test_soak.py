"""The soak's quick mode (bench/soak.py) runs through: samples in its CSV, every event
rewarded once, RSS and table sizes summarised."""

import csv

import pytest

from bench.soak import GROUPS

from .support import bench_run

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def test_quick_soak_samples_memory_and_tables_and_loses_nothing():
    summary = bench_run(
        "bench.soak",
        "--quick",
        *["--events", "1500", "--rate", "300", "--sample-seconds", "1"],
        name="test-soak",
    )

    assert summary["accepted"] == summary["events"] == summary["rewards"] > 0
    assert summary["drained"] and summary["errors"] == 0
    with open(summary["csv"]) as samples:
        rows = list(csv.DictReader(samples))
    assert len(rows) == summary["samples"] >= 5
    assert all(int(row["broker_queue"]) >= 0 and int(row["pending"]) >= 0 for row in rows)
    accepted = [int(row["accepted"]) for row in rows]
    assert accepted == sorted(accepted) and accepted[-1] > 0
    for group in GROUPS:
        assert all(int(row[f"{group}_kb"]) > 0 for row in rows)
        assert summary["rss"][group]["end_mb"] > 0
    tables = summary["tables"]
    events, rewards = tables["triggers_triggerevent"], tables["rewards_reward"]
    assert events["end_bytes"] > events["start_bytes"] and events["bytes_per_event"] > 0
    assert rewards["end_bytes"] > rewards["start_bytes"] and rewards["bytes_per_event"] > 0
