"""bench/memory.py's cost model, and the deployed memory size it chose (README: Deployed settings)."""

from __future__ import annotations

import json

from tests.conftest import ROOT, load_script

memory = load_script("memory", "bench")


def test_cpu_bound_time_scales_with_memory_up_to_one_vcpu() -> None:
    assert memory.cpu_slowdown(1769) == 1.0 and memory.cpu_slowdown(3538) == 1.0
    assert round(memory.cpu_slowdown(512), 3) == 3.455


def test_cost_bills_rounded_milliseconds_gb_seconds_and_requests() -> None:
    row = memory.at_size(1024, cpu_ms=0.9, io_ms=0.0, cold_cpu_ms=0.0, cold_per_million=0)
    assert row["billed_ms"] == 2  # 0.9 ms × 1769/1024 = 1.55 ms, billed as 2
    assert row["usd_compute"] == round(1_000_000 * 0.002 * 1.0 * 0.0000133334, 3)
    assert row["usd_requests"] == 0.2


def test_waiting_on_dynamodb_makes_bigger_sizes_dearer_and_cold_starts_pick_the_size() -> None:
    rows = [memory.at_size(m, cpu_ms=15.0, io_ms=20.0, cold_cpu_ms=870.0, cold_per_million=1000)
            for m in memory.SIZES_MB]
    assert [r["usd_per_million_events"] for r in rows] == sorted(r["usd_per_million_events"] for r in rows)
    assert memory.choose(rows)["memory_mb"] == 1024  # no size brings a cold first event under 1 s
    fast = [memory.at_size(m, cpu_ms=1.0, io_ms=20.0, cold_cpu_ms=100.0, cold_per_million=1000)
            for m in memory.SIZES_MB]
    assert memory.choose(fast)["memory_mb"] == 256


def test_deployed_functions_get_the_chosen_size() -> None:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    assert config["lambda_memory_size"] == 1024 and config["lambda_architecture"] == "arm64"
    assert not any("lambda_memory_size" in f for f in config.get("lambda_functions", {}).values())
