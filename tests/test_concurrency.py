"""Duplicate deliveries racing each other give one incident and one page.

- 8 threads delivering one SNS message at once against DynamoDB (moto);
- 8 processes replaying one SNS message at once against one SQLite file;
- 8 threads delivering *different* messages for one alarm (SNS and EventBridge both fire).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from chalicelib.errors import DeliveryInProgress
from chalicelib.handlers import on_event
from chalicelib.models import PageKind
from chalicelib.store.dynamodb import DynamoStore
from tests.conftest import (
    ROOT,
    AtomicRequests,
    FakeClock,
    RecordingChannel,
    create_table,
    make_deps,
    new_id,
    sns_event,
)


def race(n: int, work: Any) -> list[Any]:
    """Run ``work(i)`` on n threads released together. A delivery that met another worker's
    lease raised ``DeliveryInProgress``; like Lambda, it is retried once the race is over."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []
    in_progress: list[int] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except DeliveryInProgress:
            in_progress.append(i)
        except BaseException as exc:  # noqa: BLE001 - collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for i in in_progress:
        results[i] = work(i)
    return results


def test_eight_threads_one_message_dynamodb() -> None:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        store = DynamoStore(create_table(client), client=AtomicRequests(client))
        channel = RecordingChannel()
        deps = make_deps(store, FakeClock(), channel)
        event = sns_event("sns-cloudwatch-alarm-metric.json", message_id=new_id())
        results = race(8, lambda _: on_event(event, "sns", deps)["outcomes"][0]["reason"])
        assert sorted(results) == ["DUPLICATE"] * 7 + ["OPENED"]
        assert len(store.list()) == 1
        assert [p.kind for p in channel.sent] == [PageKind.TRIGGER]
        assert len(store.list()[0].pages) == 1


def test_eight_threads_different_deliveries_of_one_alarm_dynamodb() -> None:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        store = DynamoStore(create_table(client), client=AtomicRequests(client))
        channel = RecordingChannel()
        deps = make_deps(store, FakeClock(), channel)
        events = [sns_event("sns-cloudwatch-alarm-metric.json", message_id=new_id()) for _ in range(8)]
        results = race(8, lambda i: on_event(events[i], "sns", deps)["outcomes"][0]["reason"])
        assert sorted(results) == ["ALREADY_OPEN"] * 7 + ["OPENED"]
        [incident] = store.list()
        assert incident.count == 8 and len(channel.sent) == 1


def test_eight_processes_one_message_sqlite(tmp_path: Path) -> None:
    event_file = tmp_path / "event.json"
    import json

    event_file.write_text(json.dumps(sns_event("sns-cloudwatch-alarm-metric.json", message_id=new_id())))
    env = {**os.environ, "RESPONDER_STORE": f"sqlite:///{tmp_path}/state.db",
           "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-m", "chalicelib", "replay", str(event_file), "--now", "2025-03-14T14:43:00Z"], cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(8)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    reasons = sorted(json.loads(out)["reason"] for out, _ in outputs)
    assert reasons == ["DUPLICATE"] * 7 + ["OPENED"], outputs
    pages = sum(err.count("PAGE trigger") for _, err in outputs)
    assert pages == 1, outputs
    listing = subprocess.run([sys.executable, "-m", "chalicelib", "incidents", "--json"], cwd=ROOT, env=env,
                             capture_output=True, text=True, check=True)
    [incident] = json.loads(listing.stdout)
    assert len(incident["pages"]) == 1
