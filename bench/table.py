"""Issue 17's goals, their targets and the figures measured now: one table from bench/results/*.json.

``bash bench/run`` writes the results and calls this; a piece not built (or whose run failed)
shows as "n/a (not built)" / "n/a (failed)" rather than stopping the table.

    python bench/table.py [bench/results]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

NOT_BUILT = "n/a (not built)"
FAILED = "n/a (failed)"


def _load(folder: Path, name: str) -> Any:
    """The JSON a benchmark printed last (its report), NOT_BUILT or FAILED."""
    path = folder / f"{name}.json"
    if not path.exists():
        return NOT_BUILT
    text = path.read_text().strip()
    if text in (NOT_BUILT, FAILED):
        return text
    start = text.rfind("\n{")  # a benchmark may print lines before its report
    try:
        return json.loads(text[start + 1:] if start >= 0 else text)
    except json.JSONDecodeError:
        return FAILED


def _ratio(am: Any) -> str:
    if isinstance(am, str):
        return am
    ratios = ", ".join(f"{r:.2f}" for r in am["ratios"])
    runs = am["runs"]
    ours = "/".join(f"{r['responder']['cpu_us_per_event']:.0f}" for r in runs)
    theirs = "/".join(f"{r['alertmanager']['cpu_us_per_alert']:.0f}" for r in runs)
    return f"{am['median_ratio']:.2f}× median ({ratios}; responder {ours} µs/event, Alertmanager {theirs} µs/alert)"


def _cost(cost: Any, mix: str) -> str:
    if isinstance(cost, str):
        return cost
    m = cost[mix]
    return (f"${m['usd_per_million_events']:.2f} ({m['write_units_per_event']:.1f} WRU + "
            f"{m['read_units_per_event']:.1f} RRU per event, {m['index_write_units_per_event']:.1f} WRU of them index)")


def _round_trips(cost: Any) -> str:
    if isinstance(cost, str):
        return cost
    spread = cost["storm"]["first_page_round_trips"] or cost["lifecycle"]["first_page_round_trips"]
    return "n/a (no page)" if not spread else f"{spread['median']:g} (min {spread['min']}, max {spread['max']})"


def _cancelled(cost: Any) -> str:
    if isinstance(cost, str):
        return cost
    storm, life = cost["storm"]["transactions_cancelled"], cost["lifecycle"]["transactions_cancelled"]
    return f"{storm + life} (storm {storm}, lifecycle {life})"


def _summary(report: Any, preferred: tuple[str, ...]) -> str:
    """A benchmark written by someone else: its preferred keys if present, else its first scalars."""
    if isinstance(report, str):
        return report
    flat = _flatten(report)
    chosen = [k for k in flat if k.rsplit(".", 1)[-1] in preferred] or list(flat)[:4]
    return "; ".join(f"{k} {flat[k]}" for k in chosen[:6])


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out |= _flatten(inner, f"{prefix}{key}.")
        return out
    return {prefix.rstrip("."): value} if not isinstance(value, list) else {}


def _cold_start(report: Any) -> str:
    if isinstance(report, str):
        return report
    side, handled = report.get("side_by_side"), report.get("first_event_handled")
    if side:  # the measurement the goal asks for: floor and first event interleaved in one run
        figure = (f"{side['ratio_cpu']:.2f}× CPU, {side['ratio_wall']:.2f}× wall side by side "
                  f"({side['first_event_cpu_ms']:.0f} ms CPU against the floor {side['floor_cpu_ms']:.0f} ms)")
        if "ratio_cpu_to_floor_as_shipped" in side:  # the same client-building measures applied to the floor
            figure += (f" ({side['ratio_cpu_to_floor_as_shipped']:.2f}× a floor built the app's way, "
                       f"{side['floor_as_shipped_cpu_ms']:.0f} ms)")
        if handled:
            figure += (f"; import + first event handled {handled['ratio_cpu']:.2f}× CPU "
                       f"({handled['first_event_handled_cpu_ms']:.0f} ms against {handled['floor_cpu_ms']:.0f} ms)")
        return figure
    shipped = report.get("zip_with_unchecked_hash_pyc") or report.get("zip_without_pyc")
    if not shipped:
        return _summary(report, ("ratio",))
    given = [v for k, v in shipped.items() if "ratio" in k]
    ratio = given[0] if given else shipped["first_event_imports_ms"] / shipped["boto3_client_floor_ms"]
    return (f"{ratio:.2f}× ({shipped['first_event_imports_ms']:.0f} ms against the floor "
            f"{shipped['boto3_client_floor_ms']:.0f} ms)")


def _sweep(report: Any) -> str:
    if isinstance(report, str):
        return report
    sweep, consumer = report["sweep"], report["consumer"]
    calls = ", ".join(f"{n} {op}" for op, n in sorted(sweep["calls"].items(), key=lambda kv: -kv[1]))
    return (f"{sweep['report']['enqueued']:,} of {report['incidents_due']:,} queued in {sweep['seconds']:.1f} s "
            f"({calls}; errors {sweep['report']['errors']}); consumer batch of 10: p50 "
            f"{consumer['batch_seconds_p50']:.2f} s, max {consumer['batch_seconds_max']:.2f} s, "
            f"{consumer['dynamodb_calls_per_incident']:g} DynamoDB calls per incident")


def _memory(report: Any) -> str:
    if isinstance(report, str):
        return report
    sizes = {size["memory_mb"]: size for size in report["sizes"]}
    chosen = sizes[report["chosen_mb"]]
    each = ", ".join(f"{mb} MB: cold first event {s['cold_first_event_ms']:.0f} ms, "
                     f"${s['usd_per_million_events']:.2f}/M" for mb, s in sorted(sizes.items()))
    return (f"{report['chosen_mb']:,} MB (cold first event {chosen['cold_first_event_ms']:.0f} ms; "
            f"{report['rule']}); {each}")


def _sqlite_size(storm: Any) -> str:
    if isinstance(storm, str):
        return storm
    return (f"{storm['sqlite_file_mb']:.1f} MB after {storm['events']:,} events "
            f"({storm['spacing_s']:g} s apart: {storm['events'] * storm['spacing_s'] / 86400:.0f} days)")


def rows(folder: Path) -> list[tuple[str, str, str]]:
    am, cost = _load(folder, "alertmanager"), _load(folder, "dynamo-cost")
    sweep, memory = _load(folder, "sweep-scale"), _load(folder, "memory")
    return [
        ("1 CPU per event vs Alertmanager (side by side)", "≤ 1.0×", _ratio(am)),
        ("2 DynamoDB $ per million events, storm mix", "≤ $2", _cost(cost, "storm")),
        ("2 DynamoDB $ per million events, lifecycle mix", "≤ $4", _cost(cost, "lifecycle")),
        ("2 round trips before a new trigger's first page", "≤ 4", _round_trips(cost)),
        ("2 transactions cancelled on the normal path", "0", _cancelled(cost)),
        ("3 sweep: 5,000 incidents due in one minute", "all paged in the minute",
         _sweep(sweep)),
        ("4 first event's imports from the shipped zip", "≤ 1.2× boto3 floor", _cold_start(_load(folder, "coldstart"))),
        ("4 memory sweep 256/512/1024 MB", "chosen from measurement",
         _memory(memory)),
        ("5 SQLite file size", "expired deliveries purged", _sqlite_size(_load(folder, "storm-sqlite-100k"))),
    ]


def render(table: list[tuple[str, str, str]]) -> str:
    lines = ["| goal | target | measured now |", "|---|---|---|"]
    lines += [f"| {goal} | {target} | {figure} |" for goal, target, figure in table]
    return "\n".join(lines)


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "results"
    print(render(rows(folder)))


if __name__ == "__main__":
    main()
