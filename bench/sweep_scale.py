"""Sweep at scale: N Sev1s due in the same minute, the sweep's hand-off and the consumer's batches.

On moto DynamoDB (in process, calls counted with botocore's before-call hook) and an in-process
queue in SQS's place (moto's SendMessage re-counts the whole queue for every message: 5,000
messages take it tens of minutes and gigabytes), as the deployed functions run them: the
scheduled sweep reads the ``due`` index and sends the ids to the sweep queue; the consumer
(``handlers.on_sweep_messages``) takes them ten at a time and pages.
Reported: the sweep's calls and wall time, and per consumer batch its wall time and calls per
incident (README, "Sweep at scale", turns them into Lambda concurrency and cost).

    python bench/sweep_scale.py --incidents 5000 --batches 30
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "tests" / "events"
sys.path.insert(0, str(ROOT))
os.environ.update({"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"})

OPENED = datetime(2025, 3, 14, 14, 0, tzinfo=UTC)  # a Friday, 10:00 in New York
DUE = OPENED + timedelta(minutes=5)  # a Sev1's second step


class LocalQueue:
    """SQS's SendMessageBatch and ReceiveMessage for one queue, in process, counted like the rest."""

    def __init__(self, calls: Counter[str]) -> None:
        self.calls, self.messages, self.sent = calls, [], 0

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.update(["SendMessageBatch"])
        assert 1 <= len(Entries) <= 10 and QueueUrl
        for entry in Entries:
            self.sent += 1
            self.messages.append({"MessageId": f"m-{self.sent}", "Body": entry["MessageBody"]})
        return {"Successful": [{"Id": e["Id"], "MessageId": f"m-{self.sent}"} for e in Entries], "Failed": []}

    def receive_message(self, QueueUrl: str, MaxNumberOfMessages: int) -> dict[str, Any]:
        self.calls.update(["ReceiveMessage"])
        taken, self.messages = self.messages[:MaxNumberOfMessages], self.messages[MaxNumberOfMessages:]
        return {"Messages": taken}


class Clock:
    def __init__(self) -> None:
        self.now = OPENED

    def __call__(self) -> datetime:
        return self.now


class Quiet:
    def __init__(self) -> None:
        self.sent = 0

    def send(self, page: Any) -> None:
        self.sent += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=5000)
    parser.add_argument("--batches", type=int, default=30, help="consumer batches to time (10 incidents each)")
    args = parser.parse_args()

    import boto3
    from moto import mock_aws

    from chalicelib.handlers import on_event, on_sweep_messages, sweep
    from chalicelib.settings import Settings
    from chalicelib.store.dynamodb import DynamoStore
    from chalicelib.wiring import build_deps

    calls: Counter[str] = Counter()
    with mock_aws(), tempfile.TemporaryDirectory() as folder:
        session = boto3.session.Session()
        session.events.register("before-call.*.*", lambda model, **_: calls.update([model.name]))
        dynamodb, sqs = session.client("dynamodb"), LocalQueue(calls)
        props = json.loads((ROOT / ".chalice" / "merge-template.json").read_text())["Resources"]
        table = props["IncidentsTable"]["Properties"]
        dynamodb.create_table(TableName="bench", KeySchema=table["KeySchema"],
                              AttributeDefinitions=table["AttributeDefinitions"],
                              GlobalSecondaryIndexes=table["GlobalSecondaryIndexes"], BillingMode="PAY_PER_REQUEST")
        queue = "https://sqs.us-east-1.amazonaws.com/123456789012/bench-sweep"
        store, clock, channel = DynamoStore("bench", client=dynamodb), Clock(), Quiet()
        deps = build_deps(Settings.from_env({"RESPONDER_AUDIT": f"file://{folder}/audit.jsonl",
                                             "RESPONDER_SWEEP_QUEUE_URL": queue}),
                          clock=clock, store=store, channels={"console": lambda: channel}, aws_clients={"sqs": sqs})
        event = json.loads((EVENTS / "eventbridge-cloudtrail-s3-putobjectretention.json").read_text())
        outcome = on_event(copy.deepcopy(event) | {"id": str(uuid.uuid4())}, "eventbridge", deps)["outcomes"][0]
        model = store.get(outcome["incident_id"])
        assert model is not None and model.next_action_at == DUE
        items = [store._incident_item(model.model_copy(update={"id": i, "key": f"{model.key}#{i}"}))
                 for i in (str(uuid.uuid4()) for _ in range(args.incidents - 1))]
        for start in range(0, len(items), 25):
            dynamodb.batch_write_item(RequestItems={"bench": [{"PutRequest": {"Item": item}}
                                                              for item in items[start:start + 25]]})

        clock.now = DUE
        calls.clear()
        started = time.perf_counter()
        report = sweep(deps)
        sweep_seconds = time.perf_counter() - started
        sweep_calls = dict(calls)

        durations, per_incident = [], []
        for _ in range(args.batches):
            messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
            records = [{"messageId": m["MessageId"], "body": m["Body"]} for m in messages]
            calls.clear()
            started = time.perf_counter()
            answer = on_sweep_messages({"Records": records}, deps)
            durations.append(time.perf_counter() - started)
            assert answer == {"batchItemFailures": []}
            per_incident.append(sum(v for k, v in calls.items() if k != "ReceiveMessage") / len(records))
            consumer_calls = dict(calls)

    print(json.dumps({
        "incidents_due": args.incidents, "sweep": {"report": report, "calls": sweep_calls,
                                                   "seconds": round(sweep_seconds, 3)},
        "consumer": {"batches_timed": len(durations), "pages": channel.sent,
                     "batch_seconds_p50": round(statistics.median(durations), 3),
                     "batch_seconds_max": round(max(durations), 3),
                     "dynamodb_calls_per_incident": round(statistics.mean(per_incident), 2),
                     "calls_last_batch": consumer_calls},
    }, indent=2))


if __name__ == "__main__":
    main()
