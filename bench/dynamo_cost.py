"""What the DynamoDB store costs per million events, counted call by call through the real handlers.

The responder runs on DynamoDB behind a moto server on 127.0.0.1 (the table exactly as
``.chalice/merge-template.json`` defines it, indexes included). botocore event hooks on the
store's client see every call: ``before-parameter-build`` keeps its parameters, ``before-call``
reads the items it will write (through a second client, not counted), ``after-call`` reads
them again and bills the call the way DynamoDB does (moto's ConsumedCapacity is a placeholder):

- writes (PutItem, UpdateItem, DeleteItem, BatchWriteItem): per item, 1 write unit per 1 KB of
  the larger of the item before and after, rounded up; in TransactWriteItems (ConditionCheck
  included) twice that. A write whose condition fails, and every item of a cancelled
  transaction, is billed at its size too, with no index writes;
- each global secondary index: an item entering or leaving the index is one standard write of
  its projected size (index keys + table keys + projected attributes + 100 bytes), a changed
  index key is two (delete + put), a changed projected attribute one, nothing projected
  changed none (so a KEYS_ONLY index costs nothing while its keys stay put);
- reads: GetItem 1 unit per 4 KB rounded up (½ if eventually consistent); BatchGetItem the same
  per item; Query and Scan the sum of the returned items' sizes per call, rounded up to 4 KB
  (index queries are eventually consistent); a read that finds nothing still costs its minimum.

Two mixes, each reported per event:

- storm: N alarm notifications over N/100 alarms (1% open an incident, 99% repeat on it),
  round-robin, one per SNS delivery through ``app``'s ``on_alarm_sns`` handler;
- incident lifecycle (per incident, SEV2 storm alarm, 10 incidents side by side): the trigger at
  minute 0, a repeat each minute 1–9, the escalation sweep every minute 1–61 (it pages
  founder-primary at +60), an acknowledgement through the API handler at +61, the alarm's
  OK notification (resolve) at +62. Events are the 12 deliveries per incident (trigger, 9
  repeats, ack, resolve); the sweep runs are not events, but every call they make is in the bill.

Also reported: round trips from a new trigger's delivery to its first page, transactions
cancelled, and the calls per path (new trigger, repeat, ack, resolve, sweep).

    python bench/dynamo_cost.py                    # storm of 1,000 events (10 incidents) and the lifecycle
    python bench/dynamo_cost.py --events 10000
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import storm  # the sibling benchmark: moto server, table, alarm events, deps

KB = 1024
READ_BLOCK = 4 * KB
INDEX_ENTRY_OVERHEAD = 100  # bytes DynamoDB adds to each index entry
WRITE_USD_PER_MILLION = 0.625  # on-demand, us-east-1, per million write request units
READ_USD_PER_MILLION = 0.125  # per million read request units
PRICES = {
    "region": "us-east-1",
    "write_request_unit_per_million_usd": WRITE_USD_PER_MILLION,
    "read_request_unit_per_million_usd": READ_USD_PER_MILLION,
    "source": "aws.amazon.com/dynamodb/pricing/on-demand (on-demand throughput halved November 2024); "
              "checked 2026-11-30",
}
WRITE_OPS = {"PutItem", "UpdateItem", "DeleteItem"}


# --- billing: pure functions of item sizes ---------------------------------------------------------

def value_size(value: Mapping[str, Any]) -> int:
    """Bytes of one attribute value in DynamoDB's own accounting (low-level ``{"S": ...}`` form)."""
    (kind, inner), = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return _number_size(inner)
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in inner)
    if kind == "NS":
        return sum(_number_size(n) for n in inner)
    if kind == "BS":
        return sum(len(b) for b in inner)
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in inner.items())
    raise ValueError(f"unknown DynamoDB type {kind}")


def _number_size(text: str) -> int:
    digits = str(Decimal(text).normalize()).lstrip("-").replace(".", "").lstrip("0").split("E")[0] or "0"
    return math.ceil(len(digits) / 2) + 1


def item_size(item: Mapping[str, Any] | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(before: int, after: int, transactional: bool = False) -> int:
    """One write of one item: the larger of its sizes before and after, 1 KB blocks, at least one."""
    units = max(1, math.ceil(max(before, after) / KB))
    return units * 2 if transactional else units


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / READ_BLOCK))
    return units if consistent else units / 2


@dataclass(frozen=True)
class Index:
    name: str
    keys: tuple[str, ...]
    projection: str  # ALL, KEYS_ONLY or INCLUDE
    include: tuple[str, ...] = ()


def indexes(table: Mapping[str, Any]) -> list[Index]:
    """The global secondary indexes of a table definition (CloudFormation's properties)."""
    found = []
    for gsi in table.get("GlobalSecondaryIndexes", []):
        projection = gsi.get("Projection", {})
        found.append(Index(gsi["IndexName"], tuple(k["AttributeName"] for k in gsi["KeySchema"]),
                           projection.get("ProjectionType", "ALL"), tuple(projection.get("NonKeyAttributes", ()))))
    return found


def projected(item: Mapping[str, Any] | None, index: Index, table_keys: Iterable[str]) -> dict[str, Any] | None:
    """The entry ``item`` has in ``index``, or None when it lacks one of the index's keys (sparse index)."""
    if not item or any(k not in item for k in index.keys):
        return None
    if index.projection == "ALL":
        return dict(item)
    names = {*index.keys, *table_keys, *(index.include if index.projection == "INCLUDE" else ())}
    return {k: v for k, v in item.items() if k in names}


def index_write_units(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, index: Index,
                      table_keys: Iterable[str]) -> int:
    """Standard writes one table write causes in ``index``."""
    keys = tuple(table_keys)
    old, new = projected(before, index, keys), projected(after, index, keys)

    def cost(entry: Mapping[str, Any]) -> int:
        return write_units(item_size(entry) + INDEX_ENTRY_OVERHEAD, 0)

    if old == new:  # both absent, or nothing projected changed
        return 0
    if old is None:
        return cost(new or {})
    if new is None:
        return cost(old)
    if any(old[k] != new[k] for k in index.keys):
        return cost(old) + cost(new)  # moved within the index: a delete and a put
    return cost(new)


# --- counting: hooks on the store's client --------------------------------------------------------

@dataclass
class Call:
    op: str
    error: str | None = None
    read_units: float = 0.0
    table_write_units: int = 0
    index_write_units: int = 0
    items: int = 0

    @property
    def write_units(self) -> int:
        return self.table_write_units + self.index_write_units


@dataclass
class Meter:
    """Bills every call the hooked client makes; ``shadow`` (another client, not hooked) reads items."""

    shadow: Any
    table_keys: tuple[str, ...]
    indexes: list[Index]
    calls: list[Call] = field(default_factory=list)

    def install(self, client: Any) -> None:
        events = client.meta.events
        events.register("before-parameter-build.dynamodb", self._keep_params)
        events.register("before-call.dynamodb", self._before)
        events.register("after-call.dynamodb", self._after)

    # botocore passes the same request context dict to all three hooks of one call
    def _keep_params(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        context["bench_params"] = json.loads(json.dumps(params, default=_raw_bytes))

    def _before(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        params = context.get("bench_params", {})
        context["bench_before"] = {key: self._read(table, dict(key))
                                   for table, key, _ in self._targets(model.name, params)}

    def _after(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        op, params = model.name, context.get("bench_params", {})
        error = parsed.get("Error", {}).get("Code")
        call = Call(op, error)
        if op in WRITE_OPS or op in ("TransactWriteItems", "BatchWriteItem"):
            self._bill_writes(call, params, context.get("bench_before", {}))
        elif op == "GetItem":
            call.items = 1
            call.read_units = read_units(item_size(parsed.get("Item")), params.get("ConsistentRead", False))
        elif op == "BatchGetItem":
            for table, request in params.get("RequestItems", {}).items():
                found = parsed.get("Responses", {}).get(table, [])
                call.items += len(request["Keys"])
                call.read_units += sum(read_units(item_size(i), request.get("ConsistentRead", False)) for i in found)
                call.read_units += read_units(0, request.get("ConsistentRead", False)) * (
                    len(request["Keys"]) - len(found))
        elif op in ("Query", "Scan"):
            found = parsed.get("Items", [])
            call.items = len(found)
            consistent = params.get("ConsistentRead", False) and "IndexName" not in params
            call.read_units = read_units(sum(item_size(i) for i in found), consistent)
        elif op == "TransactGetItems":
            call.items = len(params.get("TransactItems", []))
            call.read_units = sum(2 * read_units(item_size(r.get("Item")), True) for r in parsed.get("Responses", []))
        self.calls.append(call)

    def _bill_writes(self, call: Call, params: dict[str, Any], before: dict[Any, Any]) -> None:
        transactional = call.op == "TransactWriteItems"
        wrote = call.error is None
        for table, key, proposed in self._targets(call.op, params):
            old = before.get(key)
            new = self._read(table, dict(key)) if wrote else old
            size_after = item_size(new) if wrote else item_size(proposed)
            call.items += 1
            call.table_write_units += write_units(item_size(old), size_after, transactional)
            if wrote:
                call.index_write_units += sum(index_write_units(old, new, ix, self.table_keys) for ix in self.indexes)

    def _targets(self, op: str, params: dict[str, Any]) -> list[tuple[str, Any, dict[str, Any] | None]]:
        """(table, key as a hashable tuple, the item a Put proposes) for each item a write touches."""
        def key_of(item: Mapping[str, Any]) -> Any:
            return tuple((k, json.dumps(item[k], sort_keys=True)) for k in self.table_keys)

        out: list[tuple[str, Any, dict[str, Any] | None]] = []
        if op in WRITE_OPS:
            item = params.get("Item")
            out.append((params["TableName"], key_of(item or params["Key"]), item))
        elif op == "TransactWriteItems":
            for entry in params.get("TransactItems", []):
                (kind, body), = entry.items()
                item = body.get("Item") if kind == "Put" else None
                out.append((body["TableName"], key_of(item or body["Key"]), item))
        elif op == "BatchWriteItem":
            for table, requests in params.get("RequestItems", {}).items():
                for request in requests:
                    if "PutRequest" in request:
                        item = request["PutRequest"]["Item"]
                        out.append((table, key_of(item), item))
                    else:
                        out.append((table, key_of(request["DeleteRequest"]["Key"]), None))
        return out

    def _read(self, table: str, key: dict[str, str]) -> dict[str, Any] | None:
        wire_key = {name: json.loads(value) for name, value in key.items()}
        item: dict[str, Any] | None = self.shadow.get_item(TableName=table, Key=wire_key,
                                                           ConsistentRead=True).get("Item")
        return item

    def mark(self) -> int:
        return len(self.calls)

    def since(self, mark: int) -> list[Call]:
        return self.calls[mark:]


def _raw_bytes(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return value.decode("latin-1")
    raise TypeError(type(value).__name__)


def _resolved(event: dict[str, Any], now: datetime) -> dict[str, Any]:
    record = event["Records"][0]["Sns"]
    message = dict(json.loads(record["Message"]), NewStateValue="OK",
                   StateChangeTime=now.strftime("%Y-%m-%dT%H:%M:%S.000+0000"))
    record |= {"MessageId": f"{record['MessageId']}-ok", "Message": json.dumps(message)}
    return event


class _NoMetrics:
    """The canary's metrics sink, kept off stdout (the report is JSON there)."""

    def add_metric(self, **_: Any) -> None:
        pass

    def flush_metrics(self) -> None:
        pass


class CountingChannel:
    """The page channel: notes how many store calls had been made when each page went out."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self.sent: list[tuple[str, int]] = []

    def send(self, page: Any) -> None:
        self.sent.append((page.incident_id, self.meter.mark()))


# --- the mixes -----------------------------------------------------------------------------------

@dataclass
class Ledger:
    """Calls grouped by the path that made them."""

    paths: dict[str, list[list[Call]]] = field(default_factory=lambda: defaultdict(list))
    first_page_round_trips: list[int] = field(default_factory=list)

    def add(self, path: str, calls: list[Call]) -> None:
        self.paths[path].append(calls)

    def all_calls(self) -> list[Call]:
        return [c for runs in self.paths.values() for run in runs for c in run]

    def cost(self, events: int) -> dict[str, Any]:
        calls = self.all_calls()
        reads = sum(c.read_units for c in calls)
        table_writes = sum(c.table_write_units for c in calls)
        index_writes = sum(c.index_write_units for c in calls)
        usd = (reads * READ_USD_PER_MILLION
               + (table_writes + index_writes) * WRITE_USD_PER_MILLION) / 1e6
        return {
            "events": events, "calls": len(calls),
            "read_units_per_event": round(reads / events, 3),
            "write_units_per_event": round((table_writes + index_writes) / events, 3),
            "index_write_units_per_event": round(index_writes / events, 3),
            "usd_per_million_events": round(usd / events * 1e6, 3),
            "transactions_cancelled": sum(1 for c in calls if c.error == "TransactionCanceledException"),
            "conditions_failed": sum(1 for c in calls if c.error == "ConditionalCheckFailedException"),
            "first_page_round_trips": _spread(self.first_page_round_trips),
            "paths": {path: _path_summary(runs) for path, runs in sorted(self.paths.items())},
        }


def _spread(values: list[int]) -> dict[str, float] | None:
    if not values:
        return None
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def _path_summary(runs: list[list[Call]]) -> dict[str, Any]:
    n = len(runs)
    ops: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for run in runs:
        ops.update(c.op for c in run)
        errors.update(f"{c.op}:{c.error}" for c in run if c.error)
    calls = [c for run in runs for c in run]
    return {
        "runs": n, "calls_per_run": round(len(calls) / n, 2),
        "ops_per_run": {op: round(k / n, 2) for op, k in sorted(ops.items())},
        "errors": dict(errors),
        "read_units_per_run": round(sum(c.read_units for c in calls) / n, 2),
        "write_units_per_run": round(sum(c.write_units for c in calls) / n, 2),
        "index_write_units_per_run": round(sum(c.index_write_units for c in calls) / n, 2),
    }


class Harness:
    """The responder on DynamoDB (moto server) with a metered client, a settable clock and a counting channel."""

    def __init__(self, folder: Path) -> None:
        import boto3

        self.server, endpoint = storm.start_moto()
        client = boto3.client("dynamodb", endpoint_url=endpoint)
        table = storm.table_definition()
        self.meter = Meter(shadow=boto3.session.Session().client("dynamodb", endpoint_url=endpoint),
                           table_keys=tuple(k["AttributeName"] for k in table["KeySchema"]), indexes=indexes(table))
        self.clock = storm.Clock()
        self.channel = CountingChannel(self.meter)
        self.deps, _, _ = storm.build("dynamodb", folder, clock=self.clock, channel=self.channel, dynamodb=client)
        self.meter.install(client)  # after the table exists: creating it is not the responder's cost
        import logging

        import app

        logging.getLogger("responder").setLevel(logging.WARNING)  # the outcome lines would swamp the report
        self.handler = app.app.handler_map["on_alarm_sns"]
        self.context = type("Context", (), {"function_name": "cost", "aws_request_id": "r"})()
        # warm-up: imports and first-use costs, not counted; resolved, so no sweep ever pages it
        self.handler(storm.warmup_event(), self.context)
        self.handler(_resolved(storm.warmup_event(), self.clock.now), self.context)

    def close(self) -> None:
        self.server.terminate()
        self.server.wait()

    def deliver(self, event: dict[str, Any], ledger: Ledger) -> dict[str, Any]:
        mark, pages = self.meter.mark(), len(self.channel.sent)
        outcome: dict[str, Any] = self.handler(event, self.context)["outcomes"][0]
        reason = outcome["reason"]
        path = {"OPENED": "new trigger", "ALREADY_OPEN": "repeat", "RESOLVED": "resolve"}.get(reason, reason.lower())
        ledger.add(path, self.meter.since(mark))
        if reason == "OPENED" and len(self.channel.sent) > pages:
            ledger.first_page_round_trips.append(self.channel.sent[pages][1] - mark)
        return outcome

    def sweep(self, ledger: Ledger) -> None:
        from chalicelib import handlers

        mark, pages = self.meter.mark(), len(self.channel.sent)
        handlers.sweep(self.deps)
        ledger.add("sweep with pages" if len(self.channel.sent) > pages else "sweep, no page", self.meter.since(mark))

    def canary(self, ledger: Ledger) -> None:
        from chalicelib.canary import run_canary

        mark = self.meter.mark()
        run_canary(self.deps, self.clock.now, metrics=_NoMetrics())
        ledger.add("canary", self.meter.since(mark))

    def acknowledge(self, incident_id: str, ledger: Ledger) -> None:
        from chalicelib.web import api
        from chalicelib.web.tokens import Principal, Role

        mark = self.meter.mark()
        who = Principal(user="giles", role=Role.RESPONDER, token_id="tok-bench")  # noqa: S106 (an id, not a secret)
        answer = api.acknowledge(self.deps, who, incident_id, b"")
        if answer.status != 200:
            raise SystemExit(f"acknowledge {incident_id}: {answer.status} {answer.body}")
        ledger.add("ack (API)", self.meter.since(mark))


def storm_mix(harness: Harness, total: int) -> dict[str, Any]:
    alarms = max(1, total // 100)
    ledger = Ledger()
    reasons: Counter[str] = Counter()
    for _, event in storm.events(total, alarms):
        reasons[harness.deliver(event, ledger)["reason"]] += 1
    return {"mix": f"storm: {total} events over {alarms} alarms (1% new, 99% repeat)",
            "reasons": dict(reasons), **ledger.cost(total)}


LIFECYCLE_INCIDENTS = 10
LIFECYCLE_REPEATS = 9
SWEEP_MINUTES = 61
ACK_MINUTE, RESOLVE_MINUTE = 61, 62


def lifecycle_mix(harness: Harness, incidents: int = LIFECYCLE_INCIDENTS) -> dict[str, Any]:
    ledger = Ledger()
    alarms = [1000 + n for n in range(incidents)]  # not the storm's alarms
    start = harness.clock.now.replace(second=0, microsecond=0) + timedelta(hours=1)
    ids: dict[int, str] = {}
    reasons: Counter[str] = Counter()
    for minute in range(0, RESOLVE_MINUTE + 1):
        harness.clock.now = start + timedelta(minutes=minute)
        if 1 <= minute <= SWEEP_MINUTES:
            harness.sweep(ledger)
        for alarm in alarms:
            if minute <= LIFECYCLE_REPEATS:
                event = storm.alarm_event(alarm, f"life-{alarm}-{minute}", changed_at=start)
                outcome = harness.deliver(event, ledger)
                reasons[outcome["reason"]] += 1
                ids.setdefault(alarm, outcome["incident_id"])
            elif minute == ACK_MINUTE:
                harness.acknowledge(ids[alarm], ledger)
                reasons["ACKNOWLEDGED"] += 1
            elif minute == RESOLVE_MINUTE:
                event = storm.alarm_event(alarm, f"life-{alarm}-ok", state="OK", changed_at=harness.clock.now)
                reasons[harness.deliver(event, ledger)["reason"]] += 1
    events = incidents * (1 + LIFECYCLE_REPEATS + 2)
    return {"mix": f"lifecycle: {incidents} incidents × (trigger, {LIFECYCLE_REPEATS} repeats, ack at "
                   f"+{ACK_MINUTE} min, resolve at +{RESOLVE_MINUTE} min) with the sweep every minute "
                   f"1–{SWEEP_MINUTES}", "reasons": dict(reasons), **ledger.cost(events)}


SWEEPS_PER_MONTH = 30 * 24 * 60  # every minute (app.py: Rate(1, MINUTES))
CANARIES_PER_MONTH = 30 * 24 * 12  # every five minutes (app.py: Rate(5, MINUTES))


def fixed_costs(harness: Harness, runs: int = 5) -> dict[str, Any]:
    """The sweep with nothing due and the canary, per run and per 30-day month (on a table with nothing open)."""
    ledger = Ledger()
    for _ in range(runs):
        harness.clock.now += timedelta(minutes=1)
        harness.sweep(ledger)
        harness.canary(ledger)
    out: dict[str, Any] = {}
    for path, per_month in (("sweep, no page", SWEEPS_PER_MONTH), ("canary", CANARIES_PER_MONTH)):
        summary = _path_summary(ledger.paths[path])
        usd = per_month * (summary["read_units_per_run"] * READ_USD_PER_MILLION
                           + summary["write_units_per_run"] * WRITE_USD_PER_MILLION) / 1e6
        out["sweep" if path.startswith("sweep") else "canary"] = {
            **summary, "runs_per_month": per_month, "usd_per_month": round(usd, 4)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1000, help="storm mix size (1%% of them new incidents)")
    parser.add_argument("--incidents", type=int, default=LIFECYCLE_INCIDENTS, help="lifecycle mix incidents")
    args = parser.parse_args()
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    result: dict[str, Any] = {"prices": PRICES}
    # each on a table of its own: no incident of one mix falls due in another's sweeps
    for name, measure in (("storm", lambda h: storm_mix(h, args.events)),
                          ("lifecycle", lambda h: lifecycle_mix(h, args.incidents)), ("fixed", fixed_costs)):
        with tempfile.TemporaryDirectory() as tmp:
            harness = Harness(Path(tmp))
            try:
                result["indexes"] = [ix.__dict__ for ix in harness.meter.indexes]
                result[name] = measure(harness)
            finally:
                harness.close()
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
