"""The end-to-end benchmark's quick mode (bench/e2e.py) runs through and reports figures that
make sense: a search per design, levels at 25/50/90% of ours, every accepted event rewarded."""

import math

import pytest

from .support import bench_run

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

SHORT = ["--probe-seconds", "1", "--step-seconds", "1", "--steps", "1", "--level-seconds", "1"]


def test_quick_run_reports_sustained_rates_and_latencies_to_the_reward():
    report = bench_run("bench.e2e", "--quick", *SHORT, name="test-e2e")

    ours, naive = report["designs"]["ours"], report["designs"]["naive"]
    assert ours["max_rate"] > 0 and naive["max_rate"] > 0
    for design in (ours, naive):
        assert design["search"] and design["max_rate"] in [s["rate"] for s in design["search"]]
        assert any(s["bounded"] for s in design["search"])
    assert [level["fraction"] for level in ours["levels"]] == [0.25, 0.5, 0.9]
    assert [level["fraction"] for level in naive["levels"]] == [0.5]
    offered = [level["rate"] for level in ours["levels"]]
    assert offered == sorted(offered)
    for level in ours["levels"] + naive["levels"]:
        assert level["events"] > 0 and level["accepted"] > 0
        assert level["rewards"] == level["events"]  # one campaign rewards every event, once
        assert level["drained"]
        assert level["visible_samples"] > 0
        for figure in ("ingest", "visible", "processed"):
            p50, p99 = level[f"{figure}_p50_ms"], level[f"{figure}_p99_ms"]
            assert p50 is not None and p99 is not None  # null in the JSON: lost
            assert 0 < p50 <= p99 and math.isfinite(p99)
    assert report["ratio"] == pytest.approx(ours["max_rate"] / naive["max_rate"])
    assert set(report["goals"]) >= {"ratio_met", "latency_met", "p50_ms", "p99_ms"}
