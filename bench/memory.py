"""Memory size from the measured CPU: duration and cost per million events at 256/512/1024 MB, arm64.

Lambda gives a function CPU in proportion to its memory: one full vCPU at 1,769 MB, so at M MB
single-threaded Python gets M/1769 of a core and CPU-bound work takes 1769/M times as long
(never less than at a full core: the handler is one thread). Waiting on DynamoDB does not speed
up with memory, but it is billed at the size. Since August 2025 the INIT phase (the cold start's
imports) is billed too.

Inputs, measured on this machine (x86-64; Graviton is taken as equally fast per core, which is
an assumption, not a measurement):
- CPU per event: ``bench/storm.py --store dynamodb`` (the responder process only), plus one INFO
  log line per event (``bench/logline.py``; storm turns INFO off);
- cold start: the first event's import CPU from the shipped zip (``bench/coldstart.py``);
- not measured here, so given as parameters: DynamoDB round trips per event and their latency,
  and how many cold starts a million events bring.

Prices (arm64, us-east-1, on-demand, first pricing tier): $0.0000133334 per GB-second,
$0.20 per million requests. Duration is billed per 1 ms, rounded up.

    python bench/memory.py [--results bench/results] [--cpu-us N] [--cold-cpu-ms N] ...
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GB_SECOND_USD = 0.0000133334   # arm64
REQUEST_USD = 0.20 / 1_000_000
FULL_VCPU_MB = 1769
SIZES_MB = (256, 512, 1024)
# The pick: the cheapest size whose cold first event (imports + the event) stays under this,
# because a page waits behind a cold start; when none does, the largest size swept.
COLD_FIRST_EVENT_LIMIT_MS = 1000.0


def cpu_slowdown(memory_mb: int) -> float:
    return max(1.0, FULL_VCPU_MB / memory_mb)


def at_size(memory_mb: int, cpu_ms: float, io_ms: float, cold_cpu_ms: float, cold_per_million: float) -> dict[str, Any]:
    slowdown = cpu_slowdown(memory_mb)
    warm_ms = cpu_ms * slowdown + io_ms
    init_ms = cold_cpu_ms * slowdown
    gb = memory_mb / 1024
    billed_s = math.ceil(warm_ms) / 1000
    compute = 1_000_000 * billed_s * gb * GB_SECOND_USD
    cold = cold_per_million * math.ceil(init_ms) / 1000 * gb * GB_SECOND_USD
    requests = 1_000_000 * REQUEST_USD
    return {"memory_mb": memory_mb, "cpu_share": round(min(1.0, memory_mb / FULL_VCPU_MB), 3),
            "warm_event_ms": round(warm_ms, 2), "billed_ms": math.ceil(warm_ms),
            "cold_init_ms": round(init_ms), "cold_first_event_ms": round(init_ms + warm_ms),
            "usd_per_million_events": round(compute + cold + requests, 3),
            "usd_compute": round(compute, 3), "usd_cold_starts": round(cold, 3), "usd_requests": round(requests, 3)}


def choose(rows: list[dict[str, Any]]) -> dict[str, Any]:
    fitting = [r for r in rows if r["cold_first_event_ms"] <= COLD_FIRST_EVENT_LIMIT_MS] or rows[-1:]
    return min(fitting, key=lambda r: (r["usd_per_million_events"], -r["memory_mb"]))


def _read(results: Path, name: str) -> dict[str, Any]:
    path = results / name
    return json.loads(path.read_text()) if path.exists() else {}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results",
                        help="folder with storm-dynamodb.json, logline.json, coldstart.json (bench/run)")
    parser.add_argument("--cpu-us", type=float, help="CPU µs per event (default: storm-dynamodb.json)")
    parser.add_argument("--log-us", type=float, help="CPU µs of the event's log line (default: logline.json)")
    parser.add_argument("--cold-cpu-ms", type=float, help="first event's import CPU ms (default: coldstart.json)")
    parser.add_argument("--dynamodb-calls", type=float, default=5.07,
                        help="round trips per event (storm mix: 1%% new × 12, 99%% repeat × 5)")
    parser.add_argument("--ms-per-call", type=float, default=4.0, help="DynamoDB round trip inside the region")
    parser.add_argument("--cold-starts-per-million", type=float, default=1000.0)
    args = parser.parse_args()
    cpu_us = args.cpu_us if args.cpu_us is not None else _read(args.results, "storm-dynamodb.json")["cpu_us_per_event"]
    log_us = args.log_us if args.log_us is not None else _read(args.results, "logline.json")["log_call_us_per_line"]
    cold_ms = args.cold_cpu_ms if args.cold_cpu_ms is not None else \
        _read(args.results, "coldstart.json")["side_by_side"]["first_event_cpu_ms"]
    cpu_ms = (cpu_us + log_us) / 1000
    io_ms = args.dynamodb_calls * args.ms_per_call
    rows = [at_size(m, cpu_ms, io_ms, cold_ms, args.cold_starts_per_million) for m in SIZES_MB]
    pick = choose(rows)
    print(json.dumps({
        "inputs": {"cpu_us_per_event": cpu_us, "log_line_us": log_us, "cold_start_import_cpu_ms": cold_ms,
                   "dynamodb_wait_ms_per_event": round(io_ms, 2),
                   "cold_starts_per_million_events": args.cold_starts_per_million,
                   "usd_per_gb_second_arm64": GB_SECOND_USD, "usd_per_million_requests": REQUEST_USD * 1e6},
        "sizes": rows, "chosen_mb": pick["memory_mb"],
        "rule": f"cheapest size whose cold first event is <= {COLD_FIRST_EVENT_LIMIT_MS:.0f} ms, else the largest",
    }, indent=2))


if __name__ == "__main__":
    main()
