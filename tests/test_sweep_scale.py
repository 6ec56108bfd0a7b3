"""The sweep scales out (issue 17 goal 3): it reads due ids from a keys-only, sharded index and
hands them to an SQS queue ten at a time; the queue's consumer advances each batch, answering
which messages failed. On moto DynamoDB and SQS, with calls counted."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from chalicelib.decisions.escalation import DueReason, due_reason
from chalicelib.errors import StoreError, TransientError
from chalicelib.handlers import on_sweep_messages, sweep
from chalicelib.models import Incident
from chalicelib.notify import delivery, sweep_queue
from chalicelib.notify.sweep_queue import SweepQueue
from chalicelib.settings import Settings
from chalicelib.store import DueIncident
from chalicelib.store.dynamodb import DUE_INDEX, DynamoStore, due_shard
from chalicelib.wiring import Deps, build_deps
from tests.conftest import ROOT, FakeClock, RecordingChannel, create_table, new_id
from tests.test_escalation import T
from tests.test_sweep_isolation import DynamoRefusesOne, Metrics, sev1_on

TEMPLATE = json.loads((ROOT / ".chalice" / "merge-template.json").read_text())
DUE = T + timedelta(minutes=5)  # a Sev1's second step (the backup) is due 5 minutes after it opened


class Counting:
    """A boto3 client that counts its calls by operation and keeps their arguments."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: Counter[str] = Counter()
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            self.requests.append((name, kwargs))
            return attr(*args, **kwargs)
        return call


@dataclass
class Stack:
    deps: Deps
    clock: FakeClock
    console: RecordingChannel
    store: DynamoStore
    dynamodb: Counting
    sqs: Counting
    queue_url: str
    dlq_url: str


def sweep_queue_like_the_template(sqs: Any) -> tuple[str, str]:
    """The sweep queue and its dead-letter queue as the merge template declares them."""
    props = TEMPLATE["Resources"]["SweepQueue"]["Properties"]
    dlq = sqs.create_queue(QueueName="alarm-responder-test-sweep-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": props["RedrivePolicy"]["maxReceiveCount"]}
    queue = sqs.create_queue(QueueName="alarm-responder-test-sweep", Attributes={
        "VisibilityTimeout": str(props["VisibilityTimeout"]), "RedrivePolicy": json.dumps(redrive)})["QueueUrl"]
    return queue, dlq


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with mock_aws():
        dynamodb = Counting(boto3.client("dynamodb", region_name="us-east-1"))
        sqs = Counting(boto3.client("sqs", region_name="us-east-1"))
        queue_url, dlq_url = sweep_queue_like_the_template(sqs)
        store = DynamoRefusesOne(create_table(dynamodb), client=dynamodb)
        clock, console = FakeClock(T), RecordingChannel()
        settings = Settings.from_env({"RESPONDER_AUDIT": f"file://{tmp_path}/audit.jsonl",
                                      "RESPONDER_SWEEP_QUEUE_URL": queue_url})
        deps = build_deps(settings, clock=clock, store=store, channels={"console": lambda: console},
                          aws_clients={"sqs": sqs})
        deps.pipeline.escalator.metrics = Metrics()
        yield Stack(deps, clock, console, store, dynamodb, sqs, queue_url, dlq_url)


def received(stack: Stack, url: str | None = None) -> list[list[dict[str, Any]]]:
    """Everything in the queue, as the SQS event source hands it to the consumer: batches of ten."""
    batches = []
    while True:
        messages = stack.sqs.receive_message(QueueUrl=url or stack.queue_url, MaxNumberOfMessages=10,
                                             AttributeNames=["ApproximateReceiveCount"]).get("Messages", [])
        if not messages:
            return batches
        batches.append([{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                         "eventSource": "aws:sqs"} for m in messages])


def received_once(stack: Stack) -> list[dict[str, Any]]:
    """One receive of up to ten (moto's ReceiveMessage is slow: ~1 s on a busy machine)."""
    messages = stack.sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10)["Messages"]
    return [{"messageId": m["MessageId"], "body": m["Body"]} for m in messages]


def consume(stack: Stack, batch: list[dict[str, Any]], **kwargs: Any) -> list[str]:
    """One consumer invocation: the message ids it returned to the queue."""
    answer = on_sweep_messages({"Records": batch}, stack.deps, **kwargs)
    return [failure["itemIdentifier"] for failure in answer["batchItemFailures"]]


def paged_at_due(stack: Stack) -> Counter[str]:
    """Pages the +5 minute step sent, by incident."""
    return Counter(p.incident_id for p in stack.console.sent if p.person == "christian")


# --- 5,000 incidents due in the same minute --------------------------------------------------


def due_incidents(stack: Stack, count: int) -> list[str]:
    """``count`` open Sev1s, all due at ``DUE``: one opened through the pipeline, the rest its
    copies under new ids, written as the store writes them (25 per BatchWriteItem)."""
    model = stack.store.get(sev1_on(stack.deps, "backup-vault-prod"))
    assert model is not None and model.next_action_at == DUE
    ids = [new_id() for _ in range(count - 1)]
    items = [stack.store._incident_item(model.model_copy(update={"id": i, "key": f"{model.key}#{i}"}))
             for i in ids]
    for start in range(0, len(items), 25):
        stack.dynamodb.batch_write_item(RequestItems={stack.store.table: [
            {"PutRequest": {"Item": item}} for item in items[start:start + 25]]})
    return [model.id, *ids]


def _document_call(request: dict[str, Any]) -> bool:
    key = json.dumps(request.get("Key") or request.get("Item") or {})
    return '"DOC#' in key or "heartbeat" in key


def stubbed_sqs(batches: int) -> tuple[Any, Stubber]:
    """An SQS client whose SendMessageBatch answers come from botocore's Stubber (requests and
    answers checked against the SQS model): moto's SendMessage re-counts the whole queue for
    every message, so 5,000 messages take it minutes. The small-queue tests below use moto."""
    client = boto3.client("sqs", region_name="us-east-1")
    stubber = Stubber(client)
    for _ in range(batches):
        stubber.add_response("send_message_batch", {"Successful": [
            {"Id": str(i), "MessageId": f"m-{i}", "MD5OfMessageBody": "0" * 32} for i in range(10)], "Failed": []})
    stubber.activate()
    return client, stubber


def test_5000_due_incidents_are_handed_off_in_500_sends_and_a_query_per_shard(stack: Stack) -> None:
    ids = due_incidents(stack, 5000)
    stack.dynamodb.calls.clear()
    stack.dynamodb.requests.clear()
    stack.sqs._client, stubber = stubbed_sqs(500)
    stack.clock.now = DUE
    report = sweep(stack.deps)
    assert report == {"incidents": 5000, "enqueued": 5000, "batches": 500, "errors": 0, "error_ids": []}
    stubber.assert_no_pending_responses()
    # the sweep Lambda's whole work: a keys-only Query per shard, one SendMessageBatch per ten;
    # no incident is read (README, "Sweep at scale"). moto pages a keys-only index by the size of
    # the whole items (DynamoDB by what the index holds: ~15,000 keys per 1 MB page), so up to two.
    # (the sweep also beats its own heartbeat, reads the others' and the on-call overrides:
    # documents, not incidents)
    escalation_calls = Counter(name for name, request in stack.dynamodb.requests
                               if not _document_call(request))
    assert set(escalation_calls) == {"query"} and escalation_calls["query"] <= 2 * 16
    sends = [request for name, request in stack.sqs.requests if name == "send_message_batch"]
    assert len(sends) == 500 and {request["QueueUrl"] for request in sends} == {stack.queue_url}
    # every incident is in the queue exactly once
    named = Counter(sweep_queue.incident_of(entry["MessageBody"]) for request in sends
                    for entry in request["Entries"])
    assert set(named) == set(ids) and set(named.values()) == {1}
    # the consumer pages from them (a sample: advancing all 5,000 on moto takes minutes)
    batches = [[{"messageId": f"{n}-{entry['Id']}", "body": entry["MessageBody"]} for entry in request["Entries"]]
               for n, request in enumerate(sends[:3])]
    for batch in batches:
        assert consume(stack, batch) == []
    sample = {sweep_queue.incident_of(r["body"]) for batch in batches for r in batch}
    assert paged_at_due(stack) == Counter({incident_id: 1 for incident_id in sample})


def test_the_due_index_spreads_over_its_shards_and_holds_keys_only(stack: Stack) -> None:
    index = TEMPLATE["Resources"]["IncidentsTable"]["Properties"]["GlobalSecondaryIndexes"]
    assert [(i["IndexName"], i["Projection"]["ProjectionType"]) for i in index] == [(DUE_INDEX, "KEYS_ONLY")]
    assert [k["AttributeName"] for k in index[0]["KeySchema"]] == ["due_shard", "due_at"]
    per_shard = Counter(due_shard(new_id(), 16) for _ in range(5000))
    assert set(per_shard) == set(range(16)) and max(per_shard.values()) < 2 * 5000 / 16
    ids = due_incidents(stack, 40)
    page = stack.dynamodb.query(TableName=stack.store.table, IndexName=DUE_INDEX,
                                KeyConditionExpression="due_shard = :s",
                                ExpressionAttributeValues={":s": {"N": str(due_shard(ids[0], 16))}})
    assert {frozenset(item) for item in page["Items"]} == {frozenset({"pk", "due_shard", "due_at"})}


def test_more_shards_still_find_what_fewer_shards_wrote(stack: Stack) -> None:
    store = DynamoStore(stack.store.table, client=stack.dynamodb, due_shards=4)
    stack.deps.pipeline.escalator.store = store
    ids = due_incidents(stack, 30)
    grown = DynamoStore(stack.store.table, client=stack.dynamodb, due_shards=16)
    assert {due.incident_id for due in grown.due(DUE)} == set(ids)
    assert grown.due(DUE - timedelta(minutes=1)) == []


# --- the consumer --------------------------------------------------------------------------


def handed_off(stack: Stack, count: int) -> tuple[list[str], list[list[dict[str, Any]]]]:
    ids = [sev1_on(stack.deps, f"backup-vault-{n}") for n in range(count)]
    stack.clock.now = DUE
    assert sweep(stack.deps)["enqueued"] == count
    return ids, received(stack)


def test_every_incident_is_paged_exactly_once_and_a_redelivery_pages_nobody(stack: Stack) -> None:
    ids, batches = handed_off(stack, 12)
    assert [len(b) for b in batches] == [10, 2]
    for batch in batches:
        assert consume(stack, batch) == []
    assert paged_at_due(stack) == Counter({incident_id: 1 for incident_id in ids})
    # SQS delivers at least once; the next minute's sweep finds nothing due
    for batch in batches:
        assert consume(stack, batch) == []
    stack.clock.now = DUE + timedelta(seconds=30)
    assert sweep(stack.deps)["enqueued"] == 0
    assert paged_at_due(stack) == Counter({incident_id: 1 for incident_id in ids})


def test_a_redelivered_message_is_a_no_op_with_its_reason(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    _, [batch] = handed_off(stack, 2)
    consume(stack, batch)
    with caplog.at_level("INFO", logger="responder"):
        assert consume(stack, batch) == []
    line = [r for r in caplog.records if r.getMessage() == "sweep batch done"][-1]  # this batch's own line
    assert line.outcome["not_due"] == 2 and line.outcome["sent"] == 0  # type: ignore[attr-defined]
    assert line.outcome["not_due_reasons"] == ["NOT_YET"]  # type: ignore[attr-defined]


def test_a_failing_incident_is_a_batch_item_failure_and_the_others_are_paged(
        stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivery, "_report_to_sentry", lambda exc: None)
    ids, [batch] = handed_off(stack, 3)
    broken = ids[1]
    stack.store.refuse, stack.store.error = broken, StoreError("ValidationException")
    stack.deps.pipeline.escalator.incidents.pause = lambda attempt: None
    [returned] = consume(stack, batch)
    assert sweep_queue.incident_of(next(r["body"] for r in batch if r["messageId"] == returned)) == broken
    assert paged_at_due(stack) == Counter({ids[0]: 1, ids[2]: 1})
    assert stack.deps.pipeline.escalator.metrics.added == [("SweepIncidentFailed", 1)]
    # redelivered once the store takes it again: paged then, once
    stack.store.refuse = None
    assert consume(stack, [r for r in batch if r["messageId"] == returned]) == []
    assert paged_at_due(stack) == Counter({i: 1 for i in ids})


def test_a_message_that_keeps_failing_ends_in_the_dead_letter_queue(stack: Stack,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The redrive the template declares: after maxReceiveCount receives, the DLQ the alarm watches."""
    monkeypatch.setattr(delivery, "_report_to_sentry", lambda exc: None)
    broken = sev1_on(stack.deps, "backup-vault-prod")
    stack.store.refuse = broken
    # a returned message comes back after the visibility timeout: here at once
    stack.sqs.set_queue_attributes(QueueUrl=stack.queue_url, Attributes={"VisibilityTimeout": "0"})
    stack.clock.now = DUE
    assert sweep(stack.deps)["enqueued"] == 1
    for _ in range(TEMPLATE["Resources"]["SweepQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"]):
        [message] = stack.sqs.receive_message(QueueUrl=stack.queue_url)["Messages"]
        record = {"messageId": message["MessageId"], "body": message["Body"]}
        assert consume(stack, [record]) == [message["MessageId"]]
    assert "Messages" not in stack.sqs.receive_message(QueueUrl=stack.queue_url)
    [[dead]] = received(stack, stack.dlq_url)
    assert sweep_queue.incident_of(dead["body"]) == broken
    alarm = TEMPLATE["Resources"]["SweepDeadLettersAlarm"]["Properties"]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible" and alarm["Threshold"] == 1
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["SweepDeadLetterQueue", "QueueName"]}


def test_unreadable_and_duplicate_messages(stack: Stack) -> None:
    ids, [batch] = handed_off(stack, 2)
    again = [{**batch[0], "messageId": "again"}]  # the next minute's sweep sent it once more
    junk = [{"messageId": "junk", "body": "{not json"}, {"messageId": "nobody", "body": "{}"}]
    assert sorted(consume(stack, batch + again + junk)) == ["junk", "nobody"]
    assert paged_at_due(stack) == Counter({i: 1 for i in ids})


def test_out_of_lambda_time_the_rest_go_back_unstarted(stack: Stack) -> None:
    ids, [batch] = handed_off(stack, 3)
    left = iter([60_000, 9_000])  # then under the margin
    returned = consume(stack, batch, time_left=lambda: next(left, 0))
    assert returned == [r["messageId"] for r in batch[1:]]
    assert paged_at_due(stack) == Counter({sweep_queue.incident_of(batch[0]["body"]): 1})
    assert consume(stack, [r for r in batch if r["messageId"] in returned]) == []
    assert paged_at_due(stack) == Counter({i: 1 for i in ids})


# --- the hand-off ------------------------------------------------------------------------------


class FlakySqs:
    """send_message_batch answers with SQS's own failures, as the real one can."""

    def __init__(self, answers: list[Any]) -> None:
        self.answers: list[Any] = answers
        self.sent: list[list[str]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.sent.append([e["Id"] for e in Entries])
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return {"Successful": [], "Failed": [{"Id": i, "SenderFault": fault, "Code": "x"} for i, fault in answer]}


def test_entries_sqs_failed_on_its_side_are_sent_again_and_refused_ones_stay_due() -> None:
    sqs = FlakySqs([[("0", False), ("1", True)], [("0", False)], []])
    batch = [DueIncident("a", 1), DueIncident("b", 1), DueIncident("c", 1)]
    assert SweepQueue(lambda: sqs, "https://q").send(batch) == ["b"]
    assert sqs.sent == [["0", "1", "2"], ["0"], ["0"]]
    gives_up = FlakySqs([[("0", False)]] * 3)
    assert SweepQueue(lambda: gives_up, "https://q").send(batch[:1]) == ["a"]


def test_a_throttled_send_leaves_its_batch_due_and_the_sweep_goes_on(stack: Stack) -> None:
    from botocore.exceptions import ClientError

    ids = [sev1_on(stack.deps, f"backup-vault-{n}") for n in range(11)]
    throttled = ClientError({"Error": {"Code": "RequestThrottled"}}, "SendMessageBatch")
    flaky = FlakySqs([throttled, []])
    stack.deps.pipeline.escalator.queue = SweepQueue(lambda: flaky, stack.queue_url)
    stack.clock.now = DUE
    report = sweep(stack.deps)
    assert report["enqueued"] == 1 and report["errors"] == 10 and set(report["error_ids"]) < set(ids)
    assert stack.deps.pipeline.escalator.metrics.added == [("SweepIncidentFailed", 10)]
    with pytest.raises(TransientError):
        SweepQueue(lambda: FlakySqs([throttled]), "https://q").send([DueIncident("a", 1)])


# --- the decision ------------------------------------------------------------------------------


def test_due_reason(stack: Stack) -> None:
    incident: Incident | None = stack.store.get(sev1_on(stack.deps, "backup-vault-x"))
    assert incident is not None and incident.next_action_at == DUE
    assert due_reason(None, DUE) is DueReason.MISSING
    assert due_reason(incident, DUE) is DueReason.DUE
    # the index keeps whole seconds: up to a second early still counts as due
    assert due_reason(incident, DUE - timedelta(milliseconds=999)) is DueReason.DUE
    assert due_reason(incident, DUE - timedelta(seconds=1)) is DueReason.NOT_YET
    assert due_reason(incident.model_copy(update={"next_action_at": None}), DUE) is DueReason.NOTHING_SCHEDULED


def test_without_a_queue_the_sweep_advances_in_process(tmp_path: Path) -> None:
    from chalicelib.store.sqlite import SqliteStore

    clock, console = FakeClock(T), RecordingChannel()
    deps = build_deps(Settings.from_env({"RESPONDER_AUDIT": f"file://{tmp_path}/audit.jsonl"}), clock=clock,
                      store=SqliteStore(tmp_path / "s.db"), channels={"console": lambda: console})
    assert deps.pipeline.escalator.queue is None
    ids = [sev1_on(deps, f"backup-vault-{n}") for n in range(12)]  # two batches
    clock.now = DUE
    report = sweep(deps)
    assert report["incidents"] == 12 and report["sent"] == 12 and report["not_due"] == 0
    assert Counter(p.incident_id for p in console.sent if p.person == "christian") == Counter(
        {i: 1 for i in ids})
