"""Acceptance (issue 10): a flapping alarm and long notes cannot brick an incident on DynamoDB (moto).

Before the bounded layout the incident was one item holding every timeline entry: about
1,200 flapping notifications or a hundred 4,000-character notes pushed it past DynamoDB's
400 KB item limit, and from then on no write to it (not even the recovery) succeeded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.handlers import on_event
from chalicelib.models import IncidentStatus
from chalicelib.store import full_timeline
from chalicelib.store.dynamodb import DynamoStore
from chalicelib.wiring import Deps
from tests.conftest import FakeClock, RecordingChannel, create_table, make_deps, new_id, sns_event
from tests.test_store_contract import largest_item

ALARM = "sns-cloudwatch-alarm-metric.json"
FLAPS = 1_500


class Dynamo:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.store = DynamoStore(create_table(client), client=client)
        self.clock, self.channel = FakeClock(), RecordingChannel()
        self.deps: Deps = make_deps(self.store, self.clock, self.channel)
        self.calls: Counter[str] = Counter()
        client.meta.events.register("before-call.dynamodb.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def deliver(self, state: str) -> dict[str, Any]:
        self.clock.advance(seconds=30)
        [outcome] = on_event(sns_event(ALARM, message_id=new_id(), NewStateValue=state), "sns", self.deps)["outcomes"]
        return dict(outcome)


@pytest.fixture
def dynamo() -> Iterator[Dynamo]:
    with mock_aws():
        yield Dynamo(boto3.client("dynamodb", region_name="us-east-1"))


def test_acknowledged_incident_survives_1500_flaps_then_resolves(dynamo: Dynamo) -> None:
    opened = dynamo.deliver("ALARM")
    assert opened["reason"] == "OPENED"
    incident_id = opened["incident_id"]
    dynamo.deps.pipeline.acknowledge(incident_id, "alice")
    reasons: Counter[str] = Counter()
    for n in range(FLAPS):
        reasons[dynamo.deliver("INSUFFICIENT_DATA" if n % 2 == 0 else "ALARM")["reason"]] += 1
    assert reasons == {"ANNOTATED": FLAPS // 2, "ALREADY_OPEN": FLAPS // 2}
    assert dynamo.deliver("OK")["reason"] == "RESOLVED"
    incident = dynamo.store.get(incident_id)
    assert incident is not None and incident.status is IncidentStatus.RESOLVED
    assert dynamo.store.get_open(incident.key) is None
    assert incident.count == 1 + FLAPS // 2 and incident.annotation_count == FLAPS // 2
    size, what = largest_item(dynamo.store)
    print(f"\nlargest item after {FLAPS} flaps and OK: {size} bytes ({what})")
    assert size < 64 * 1024
    assert len(full_timeline(dynamo.store, incident)) == incident.timeline_count + 1  # and the repeats line


def test_a_hundred_and_fifty_long_notes_do_not_brick_the_incident(dynamo: Dynamo) -> None:
    incident_id = dynamo.deliver("ALARM")["incident_id"]
    for n in range(150):  # 600,000 characters of notes: one item on the old layout, refused at ~100
        dynamo.deps.pipeline.add_note(incident_id, "alice", f"{n}: " + "n" * 3_990)
    resolved = dynamo.deps.pipeline.resolve(incident_id, "alice")
    assert resolved.status is IncidentStatus.RESOLVED and resolved.note_count == 150
    size, what = largest_item(dynamo.store)
    print(f"\nlargest item after 150 notes of 4,000 characters: {size} bytes ({what})")
    assert size < 64 * 1024
    notes = [e.what for e in full_timeline(dynamo.store, resolved) if e.what.startswith("note: ")]
    assert len(notes) == 150 and all(len(n) == len("note: ") + 3_990 + len(f"{i}: ") for i, n in enumerate(notes))


def test_calls_per_event(dynamo: Dynamo) -> None:
    """Round trips for a new trigger (with its page), a counted repeat and a resolve (issue 17's budget)."""
    measured = {}
    for label, state in (("trigger", "ALARM"), *[("repeat", "ALARM")] * 11, ("resolve", "OK")):
        dynamo.calls.clear()
        dynamo.deliver(state)
        measured[label] = dict(dynamo.calls)
    print("\ncalls per event:", measured)
    # a repeat: the counter item's guarded update, then the delivery's put (store.record_repeat);
    # tests/test_dynamodb_calls.py has the rest
    assert measured["repeat"] == {"UpdateItem": 1, "PutItem": 1}
