"""The benchmarks' own arithmetic: DynamoDB billing from item sizes, and Alertmanager's CPU and pages.

The benchmarks are scripts in bench/ (not part of the package); their figures are only as good
as these pieces, so the pieces are tested like the rest.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _load(name: str) -> ModuleType:
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


cost = _load("dynamo_cost")
peer = _load("alertmanager_peer")

DUE_ALL = cost.Index("due", ("due_pk", "due_at"), "ALL")
DUE_KEYS = cost.Index("due", ("due_pk", "due_at"), "KEYS_ONLY")


def _item(doc_bytes: int, due_at: int | None = 100) -> dict[str, Any]:
    item = {"pk": {"S": "INCIDENT#1"}, "doc": {"S": "x" * doc_bytes}}
    if due_at is not None:
        item |= {"due_pk": {"S": "DUE"}, "due_at": {"N": str(due_at)}}
    return item


def test_item_size_counts_names_and_values_the_way_dynamodb_does() -> None:
    assert cost.item_size({"pk": {"S": "abc"}}) == 2 + 3
    assert cost.item_size({"n": {"N": "12345"}}) == 1 + 3 + 1  # 5 digits: 3 bytes, plus 1
    assert cost.item_size({"n": {"N": "-1.500"}}) == 1 + 1 + 1  # trailing zeros and sign do not count
    assert cost.item_size({"é": {"S": "é"}}) == 2 + 2  # UTF-8 bytes, not characters
    assert cost.item_size({"b": {"BOOL": True}, "l": {"L": [{"S": "ab"}]}}) == 1 + 1 + 1 + (3 + 2 + 1)
    assert cost.item_size(None) == 0


def test_writes_are_billed_per_started_kilobyte_of_the_larger_side_and_doubled_in_transactions() -> None:
    assert cost.write_units(0, 0) == 1  # deleting nothing still costs a unit
    assert cost.write_units(1024, 10) == 1
    assert cost.write_units(10, 1025) == 2
    assert cost.write_units(3000, 0, transactional=True) == 6


def test_reads_are_billed_per_started_4_kb_and_halved_when_eventually_consistent() -> None:
    assert cost.read_units(0, consistent=True) == 1
    assert cost.read_units(4096, consistent=True) == 1
    assert cost.read_units(4097, consistent=True) == 2
    assert cost.read_units(4097, consistent=False) == 1


def test_an_index_that_projects_everything_is_written_whenever_the_item_changes() -> None:
    keys = ("pk",)
    assert cost.index_write_units(None, _item(800), DUE_ALL, keys) == 1  # enters: ~0.9 KB + 100 B overhead
    assert cost.index_write_units(None, _item(1000), DUE_ALL, keys) == 2  # 1 KB + overhead: two units
    assert cost.index_write_units(_item(800), _item(801), DUE_ALL, keys) == 1  # a projected attribute changed
    assert cost.index_write_units(_item(800), _item(800, due_at=200), DUE_ALL, keys) == 2  # moved: delete + put
    assert cost.index_write_units(_item(800), _item(800, due_at=None), DUE_ALL, keys) == 1  # left the index
    assert cost.index_write_units(_item(800, None), _item(900, None), DUE_ALL, keys) == 0  # never in it


def test_a_keys_only_index_costs_nothing_while_its_keys_stay_put() -> None:
    keys = ("pk",)
    assert cost.index_write_units(_item(800), _item(3000), DUE_KEYS, keys) == 0
    assert cost.index_write_units(_item(800), _item(3000, due_at=200), DUE_KEYS, keys) == 2
    assert cost.projected(_item(3000), DUE_KEYS, keys) == {
        "pk": {"S": "INCIDENT#1"}, "due_pk": {"S": "DUE"}, "due_at": {"N": "100"}}


def test_indexes_are_read_from_a_table_definition() -> None:
    table = {"GlobalSecondaryIndexes": [
        {"IndexName": "due", "KeySchema": [{"AttributeName": "due_pk", "KeyType": "HASH"}],
         "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["status"]}}]}
    assert cost.indexes(table) == [cost.Index("due", ("due_pk",), "INCLUDE", ("status",))]


TABLE = {
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                             {"AttributeName": "due_pk", "AttributeType": "S"},
                             {"AttributeName": "due_at", "AttributeType": "N"}],
    "GlobalSecondaryIndexes": [{"IndexName": "due", "KeySchema": [
        {"AttributeName": "due_pk", "KeyType": "HASH"}, {"AttributeName": "due_at", "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "ALL"}}],
}


def test_the_meter_bills_each_call_of_a_hooked_client_from_the_items_it_touches() -> None:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName="t", BillingMode="PAY_PER_REQUEST", **TABLE)
        meter = cost.Meter(shadow=boto3.session.Session().client("dynamodb", region_name="us-east-1"),
                           table_keys=("pk",), indexes=cost.indexes(TABLE))
        meter.install(client)

        client.put_item(TableName="t", Item=_item(1500))  # 1.5 KB: 2 units, and 2 in the index
        with pytest.raises(client.exceptions.ConditionalCheckFailedException):
            client.put_item(TableName="t", Item=_item(10), ConditionExpression="attribute_not_exists(pk)")
        with pytest.raises(client.exceptions.TransactionCanceledException):
            client.transact_write_items(TransactItems=[
                {"Put": {"TableName": "t", "Item": _item(10), "ConditionExpression": "attribute_not_exists(pk)"}}])
        client.get_item(TableName="t", Key={"pk": {"S": "INCIDENT#1"}}, ConsistentRead=True)
        client.query(TableName="t", IndexName="due", KeyConditionExpression="due_pk = :d",
                     ExpressionAttributeValues={":d": {"S": "DUE"}})

    put, failed, cancelled, get, query = meter.calls
    assert (put.op, put.table_write_units, put.index_write_units) == ("PutItem", 2, 2)
    assert (failed.error, failed.table_write_units, failed.index_write_units) == (
        "ConditionalCheckFailedException", 2, 0)  # billed at the stored item's size, the index untouched
    assert (cancelled.error, cancelled.table_write_units) == ("TransactionCanceledException", 4)
    assert (get.op, get.read_units) == ("GetItem", 1)
    assert (query.op, query.read_units, query.items) == ("Query", 0.5, 1)  # index reads: eventually consistent

    ledger = cost.Ledger()
    ledger.add("all", meter.calls)
    summary = ledger.cost(events=1)
    assert summary["transactions_cancelled"] == 1 and summary["conditions_failed"] == 1
    assert summary["write_units_per_event"] == 2 + 2 + 2 + 4
    assert summary["usd_per_million_events"] == pytest.approx(10 * 0.625 + 1.5 * 0.125, abs=0.001)  # rounded to 3 places


def test_process_cpu_is_user_plus_system_time_even_when_the_name_has_spaces() -> None:
    line = "4242 (prometheus alert) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 1 2 3"
    assert peer.process_cpu_seconds(line, ticks_per_second=100) == pytest.approx(3.0)


def test_the_receiver_counts_firing_and_resolved_pages_and_stamps_each_incidents_first() -> None:
    receiver = peer.Receiver()
    try:
        for status, incident in [("firing", "a"), ("firing", "a"), ("firing", "b"), ("resolved", "a")]:
            body = json.dumps({"status": status, "groupLabels": {"incident": incident}}).encode()
            connection = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=5)
            connection.request("POST", "/page", body=body, headers={"Content-Type": "application/json"})
            assert connection.getresponse().status == 200
            connection.close()
    finally:
        receiver.close()
    assert (receiver.firing_pages, receiver.resolved_pages) == (3, 1)
    assert sorted(receiver.firing) == ["a", "b"]


def test_the_alertmanager_config_pages_once_per_incident_on_loopback() -> None:
    config = peer.CONFIG.format(port=5001)
    assert "group_by: ['incident']" in config and "group_wait: 1s" in config and "group_interval: 1s" in config
    assert "url: 'http://127.0.0.1:5001/page'" in config and "send_resolved: true" in config


table = _load("table")


def test_the_goal_table_shows_pieces_not_built_instead_of_failing(tmp_path: Path) -> None:
    rendered = table.render(table.rows(tmp_path))
    lines = rendered.splitlines()
    assert lines[0] == "| goal | target | measured now |"
    assert len(lines) == 2 + 9
    assert all(line.endswith("| n/a (not built) |") for line in lines[2:])


def test_the_goal_table_reads_each_report_and_marks_a_failed_run(tmp_path: Path) -> None:
    mix = {"usd_per_million_events": 7.5, "write_units_per_event": 11.6, "read_units_per_event": 2.9,
           "index_write_units_per_event": 4.9, "transactions_cancelled": 0,
           "first_page_round_trips": {"min": 8, "median": 8, "max": 9}}
    (tmp_path / "dynamo-cost.json").write_text(json.dumps({"storm": mix, "lifecycle": dict(mix, transactions_cancelled=2)}))
    (tmp_path / "alertmanager.json").write_text("round 1: ...\n" + json.dumps({
        "median_ratio": 4.2, "ratios": [4.2],
        "runs": [{"responder": {"cpu_us_per_event": 420.0}, "alertmanager": {"cpu_us_per_alert": 100.0}}]}))
    (tmp_path / "coldstart.json").write_text(json.dumps({"zip_with_unchecked_hash_pyc": {
        "first_event_imports_ms": 500.0, "boto3_client_floor_ms": 400.0, "import_app_ms": 30.0}}))
    (tmp_path / "sweep-scale.json").write_text("n/a (failed)")
    figures = {goal: figure for goal, _, figure in table.rows(tmp_path)}
    assert figures["1 CPU per event vs Alertmanager (side by side)"].startswith("4.20× median")
    assert figures["2 DynamoDB $ per million events, storm mix"].startswith("$7.50")
    assert figures["2 round trips before a new trigger's first page"] == "8 (min 8, max 9)"
    assert figures["2 transactions cancelled on the normal path"] == "2 (storm 0, lifecycle 2)"
    assert figures["4 first event's imports from the shipped zip"].startswith("1.25×")
    assert figures["3 sweep: 5,000 incidents due in one minute"] == "n/a (failed)"


def test_the_goal_table_gives_the_side_by_side_cold_start_and_the_first_event_handled(tmp_path: Path) -> None:
    """The cold-start goal is read from the interleaved run (not two separate medians), with the
    honest end-to-end figure (import + the first event handled) beside it."""
    (tmp_path / "coldstart.json").write_text(json.dumps({
        "zip_with_unchecked_hash_pyc": {"first_event_imports_ms": 500.0, "boto3_client_floor_ms": 400.0},
        "side_by_side": {"ratio_cpu": 1.5, "ratio_wall": 1.4, "first_event_cpu_ms": 450.0, "floor_cpu_ms": 300.0},
        "first_event_handled": {"ratio_cpu": 1.75, "first_event_handled_cpu_ms": 525.0, "floor_cpu_ms": 300.0}}))
    figures = {goal: figure for goal, _, figure in table.rows(tmp_path)}
    assert figures["4 first event's imports from the shipped zip"] == (
        "1.50× CPU, 1.40× wall side by side (450 ms CPU against the floor 300 ms); "
        "import + first event handled 1.75× CPU (525 ms against 300 ms)")



def test_the_goal_table_says_what_the_first_event_is_against_a_floor_built_the_apps_way(tmp_path: Path) -> None:
    """The floor is stock boto3; the app builds its clients from trimmed data with the collector
    paused, so the table also gives the ratio to a bare client built that way."""
    (tmp_path / "coldstart.json").write_text(json.dumps({"side_by_side": {
        "ratio_cpu": 1.1, "ratio_wall": 1.2, "first_event_cpu_ms": 440.0, "floor_cpu_ms": 400.0,
        "floor_as_shipped_cpu_ms": 220.0, "ratio_cpu_to_floor_as_shipped": 2.0}}))
    figures = {goal: figure for goal, _, figure in table.rows(tmp_path)}
    assert figures["4 first event's imports from the shipped zip"] == (
        "1.10× CPU, 1.20× wall side by side (440 ms CPU against the floor 400 ms) "
        "(2.00× a floor built the app's way, 220 ms)")



coldstart = _load("coldstart")


def test_the_cold_first_event_runs_on_the_prod_stage_settings_with_aws_on_loopback(tmp_path: Path) -> None:
    """What the end-to-end cold-start figure runs: the prod stage as .chalice/config.json sets it
    (DynamoDB store, ack-link key from Secrets Manager, audit on S3), every AWS call to the local moto."""
    deployed = json.loads((Path(__file__).resolve().parent.parent / ".chalice" / "config.json").read_text())
    prod = deployed["stages"]["prod"]["environment_variables"]
    env = coldstart.handled_env("http://127.0.0.1:5999", tmp_path / "event.json")
    assert env["RESPONDER_STAGE"] == prod["RESPONDER_STAGE"] == "prod"
    assert env["RESPONDER_STORE"].startswith("dynamodb://")
    assert env["RESPONDER_LINK_SECRET_ARN"] == prod["RESPONDER_LINK_SECRET_ARN"]
    assert env["RESPONDER_AUDIT"].startswith("s3://") and env["RESPONDER_PUBLIC_URL"].startswith("https://")
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5999" and "AWS_LAMBDA_FUNCTION_NAME" in env
    compile(coldstart.FIRST_EVENT_HANDLED, "first-event", "exec")
    compile(coldstart.FLOOR_ONE_CALL, "floor", "exec")


def test_the_goal_table_names_the_chosen_memory_and_what_the_sweep_queued(tmp_path: Path) -> None:
    sizes = [{"memory_mb": mb, "cold_first_event_ms": cold, "usd_per_million_events": usd}
             for mb, cold, usd in ((256, 2871.0, 0.363), (512, 1446.0, 0.436), (1024, 733.0, 0.569))]
    (tmp_path / "memory.json").write_text(json.dumps({"sizes": sizes, "chosen_mb": 1024, "rule": "the rule"}))
    (tmp_path / "sweep-scale.json").write_text(json.dumps({
        "incidents_due": 5000, "sweep": {"report": {"enqueued": 4990, "errors": 10}, "seconds": 3.49,
                                         "calls": {"Query": 16, "SendMessageBatch": 499}},
        "consumer": {"batch_seconds_p50": 0.123, "batch_seconds_max": 0.141, "dynamodb_calls_per_incident": 4.0}}))
    figures = {goal: figure for goal, _, figure in table.rows(tmp_path)}
    memory = figures["4 memory sweep 256/512/1024 MB"]
    assert memory.startswith("1,024 MB (cold first event 733 ms; the rule); 256 MB: cold first event 2871 ms, $0.36/M")
    assert figures["3 sweep: 5,000 incidents due in one minute"] == (
        "4,990 of 5,000 queued in 3.5 s (499 SendMessageBatch, 16 Query; errors 10); consumer batch of 10: "
        "p50 0.12 s, max 0.14 s, 4 DynamoDB calls per incident")
