"""Storm benchmark: N CloudWatch alarm notifications over M alarms through the real Lambda entry.

Each event goes in as Lambda hands it to the SNS function (``app.app.handler_map["on_alarm_sns"]``),
through conversion, dedupe, classification, the store and the pager; pages go to an
in-process channel that stamps when it was called. Reported: events/s, CPU µs per event,
event-in → page-out p50/p99 (the first event of each alarm pages), handler latency
p50/p99 for every event, pages sent (must equal M), and peak traced memory.

    python bench/storm.py --store sqlite          # the embedded store
    python bench/storm.py --store dynamodb        # DynamoDB through a moto server on 127.0.0.1
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")

SAMPLE = ROOT / "examples" / "events" / "sns-cloudwatch-alarm-metric.json"
_SAMPLE_TEXT = SAMPLE.read_text()


class StampingChannel:
    def __init__(self) -> None:
        self.sent: list[tuple[str, float]] = []

    def send(self, page: Any) -> None:
        self.sent.append((page.incident_id, time.perf_counter()))


class Clock:
    """Business-hours fake time that moves 1 ms per call: repeatable whatever the real hour."""

    def __init__(self) -> None:
        self.now = datetime(2025, 3, 14, 14, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


def alarm_event(alarm: int, message_id: str, state: str = "ALARM", changed_at: datetime | None = None
                ) -> dict[str, Any]:
    """One SNS delivery of alarm ``storm-alarm-<alarm>`` (the sample's shape, the SEV2 storm alarm)."""
    event: dict[str, Any] = json.loads(_SAMPLE_TEXT)
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    body = dict(message, AlarmName=f"storm-alarm-{alarm:03d}", NewStateValue=state,
                AlarmArn=f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:storm-alarm-{alarm:03d}",
                AlarmDescription="Storm benchmark alarm.\nseverity: SEV2")
    if changed_at is not None:
        body["StateChangeTime"] = changed_at.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    event["Records"][0]["Sns"]["MessageId"] = message_id
    event["Records"][0]["Sns"]["Message"] = json.dumps(body)
    return event


def events(total: int, alarms: int) -> list[tuple[int, dict[str, Any]]]:
    return [(n % alarms, alarm_event(n % alarms, str(uuid.UUID(int=n)))) for n in range(total)]


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    """moto's server in a process of its own on 127.0.0.1, so the CPU measured is the responder's alone."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    return server, f"http://127.0.0.1:{port}"


def table_definition() -> dict[str, Any]:
    """The incidents table as the merge template deploys it."""
    template = json.loads((ROOT / ".chalice" / "merge-template.json").read_text())
    props: dict[str, Any] = template["Resources"]["IncidentsTable"]["Properties"]
    return props


def create_table(client: Any, name: str) -> None:
    props = table_definition()
    client.create_table(TableName=name, KeySchema=props["KeySchema"],
                        AttributeDefinitions=props["AttributeDefinitions"],
                        GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"], BillingMode="PAY_PER_REQUEST")


def build(store_kind: str, folder: Path, *, clock: Any = None, channel: Any = None, dynamodb: Any = None,
          ) -> tuple[Any, Any, Any]:
    """Deps on SQLite, or on DynamoDB: ``dynamodb`` (a client whose server the caller runs) or a moto server
    started here (returned, for the caller to stop)."""
    from chalicelib.aws import Aws
    from chalicelib.settings import Settings
    from chalicelib.wiring import build_deps, override_deps

    channel = channel or StampingChannel()
    server = None
    if store_kind == "sqlite":
        store_url = f"sqlite:///{folder}/storm.db"
        clients: dict[str, Any] = {}
    else:
        if dynamodb is None:
            import boto3

            server, endpoint = start_moto()
            dynamodb = boto3.client("dynamodb", endpoint_url=endpoint)
        create_table(dynamodb, "storm")
        store_url, clients = "dynamodb://storm", {"dynamodb": dynamodb}
    settings = Settings.from_env({"RESPONDER_STORE": store_url, "RESPONDER_AUDIT": f"file://{folder}/audit.jsonl"})
    deps = build_deps(settings, clock=clock or Clock(), channels={"console": lambda: channel}, aws_clients=clients,
                      aws=Aws(build_missing=False))
    override_deps(deps)
    return deps, channel, server


def warmup_event() -> dict[str, Any]:
    event = json.loads(SAMPLE.read_text())
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    event["Records"][0]["Sns"]["MessageId"] = "warm-up"
    event["Records"][0]["Sns"]["Message"] = json.dumps(dict(
        message, AlarmName="warm-up", AlarmArn="arn:aws:cloudwatch:us-east-1:123456789012:alarm:warm-up"))
    return event


def run(store_kind: str, total: int, alarms: int, trace_memory: bool = False, spacing: float = 0.0
        ) -> dict[str, Any]:
    """``spacing``: seconds of fake time between events (0: 1 ms per clock call, a burst)."""
    import logging

    import app

    logging.getLogger("responder").setLevel(logging.WARNING)  # measure the pipeline, not log formatting
    handler = app.app.handler_map["on_alarm_sns"]
    context = type("Context", (), {"function_name": "storm", "aws_request_id": "r"})()
    with tempfile.TemporaryDirectory() as tmp:
        clock = Clock()
        deps, channel, server = build(store_kind, Path(tmp), clock=clock)
        work = events(total, alarms)
        handler(warmup_event(), context)  # warm-up: imports and first-use costs (not counted)
        channel.sent.clear()
        started: dict[int, float] = {}
        latencies: list[float] = []
        if trace_memory:
            tracemalloc.start()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for alarm, event in work:
            if spacing:
                clock.now += timedelta(seconds=spacing)
            t0 = time.perf_counter()
            started.setdefault(alarm, t0)
            handler(event, context)
            if not trace_memory:  # the list of 10,000 latencies would be most of the traced memory
                latencies.append(time.perf_counter() - t0)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        peak = tracemalloc.get_traced_memory()[1] if trace_memory else 0
        tracemalloc.stop()
        pages = channel.sent
        first_event = {alarm: t for alarm, t in started.items()}
        by_incident = {}
        for incident in deps.store.list():
            if incident.title.startswith("storm-alarm-"):
                by_incident[incident.id] = int(incident.title.rsplit("-", 1)[1])
        page_latency = sorted(t - first_event[by_incident[i]] for i, t in pages if i in by_incident)
        # the embedded store's footprint on disk (database, write-ahead log, shared memory)
        db_bytes = sum(f.stat().st_size for f in Path(tmp).glob("storm.db*"))
        if server is not None:
            server.terminate()
            server.wait()
    ms = sorted(x * 1000 for x in latencies) or [0.0]
    return {
        "store": store_kind, "events": total, "alarms": alarms,
        **({"spacing_s": spacing, "sqlite_file_mb": round(db_bytes / 1e6, 2)} if store_kind == "sqlite" else {}),
        "pages": len([i for i, _ in pages if i in by_incident]),
        "events_per_s": round(total / wall, 1), "cpu_us_per_event": round(cpu / total * 1e6, 1),
        "page_latency_ms_p50": round(statistics.median(page_latency) * 1000, 2),
        "page_latency_ms_p99": round(page_latency[int(len(page_latency) * 0.99) - 1] * 1000, 2),
        "handler_ms_p50": round(statistics.median(ms), 3), "handler_ms_p99": round(ms[int(len(ms) * 0.99) - 1], 3),
        **({"peak_traced_mb": round(peak / 1e6, 3)} if trace_memory else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", choices=["sqlite", "dynamodb"], default="sqlite")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--alarms", type=int, default=100)
    parser.add_argument("--spacing", type=float, default=0.0,
                        help="seconds of fake time between events (26 spreads 100,000 events over 30 days)")
    parser.add_argument("--memory-check", action="store_true",
                        help="also run 100 events and compare peak memory (10,000 within 1.2 × the peak of 100)")
    args = parser.parse_args()
    result = run(args.store, args.events, args.alarms, spacing=args.spacing)
    if args.memory_check:  # separate runs: tracing allocations slows everything down
        big = run(args.store, args.events, args.alarms, trace_memory=True)["peak_traced_mb"]
        small = run(args.store, args.alarms, args.alarms, trace_memory=True)["peak_traced_mb"]
        result |= {"peak_traced_mb": big, f"peak_traced_mb_at_{args.alarms}_events": small,
                   "memory_ratio": round(big / small, 2)}
    print(json.dumps(result, indent=2))
    if result["pages"] != args.alarms:
        raise SystemExit(f"expected exactly {args.alarms} pages, got {result['pages']}")


if __name__ == "__main__":
    main()
