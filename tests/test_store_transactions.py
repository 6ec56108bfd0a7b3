"""DynamoDB transactions read CancellationReasons item by item (botocore Stubber: no moto, no network).

Only a failed condition on the guarded item is a conflict; the resolving write's open-key
delete failing its condition means the key is not ours (the write goes on without it);
anything else wrote nothing and is retried, then raised as ``TransientError``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from chalicelib.errors import ConflictError, TransientError
from chalicelib.handlers import on_event
from chalicelib.models import Incident, IncidentStatus, Severity, SignalKind, TimelineEntry
from chalicelib.store.dynamodb import TRANSACTION_ATTEMPTS, DynamoStore
from tests.conftest import T0, FakeClock, RecordingChannel, create_table, make_deps, new_id, sns_event

TABLE = "responder-test"
CCF, NONE = "ConditionalCheckFailed", "None"


def incident(**changes: Any) -> Incident:
    base = Incident(id="inc-1", key="alarm:a", kind=SignalKind.ALARM, title="a", severity=Severity.SEV2,
                    owner="engineering-oncall", playbook=None, rule="default", opened_at=T0, last_seen=T0,
                    timeline=(TimelineEntry(at=T0, what="opened"),))
    return base.model_copy(update=changes)


class Stubbed:
    """A DynamoStore on a stubbed client that records every request and every pause."""

    def __init__(self) -> None:
        client = boto3.client("dynamodb", region_name="us-east-1")
        self.stub = Stubber(client)
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.pauses: list[int] = []
        client.meta.events.register("provide-client-params.dynamodb.*", self._record)
        self.store = DynamoStore(TABLE, client=client, pause=self.pauses.append)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.requests.append((model.name, copy.deepcopy(params)))

    def cancel(self, *reasons: str) -> None:
        self.stub.add_client_error(
            "transact_write_items", service_error_code="TransactionCanceledException",
            service_message="Transaction cancelled", http_status_code=400,
            modeled_fields={"CancellationReasons": [{"Code": r} for r in reasons]})

    def ok(self, method: str, response: dict[str, Any] | None = None) -> None:
        self.stub.add_response(method, response or {})

    def transactions(self) -> list[list[str]]:
        """Each transaction sent, as the kinds and keys of its items."""
        return [[f"{kind}:{(body.get('Item') or body.get('Key'))['pk']['S']}" for item in p["TransactItems"]
                 for kind, body in item.items()]
                for name, p in self.requests if name == "TransactWriteItems"]


@pytest.fixture
def stubbed() -> Iterator[Stubbed]:
    s = Stubbed()
    with s.stub:
        yield s
        s.stub.assert_no_pending_responses()


# --- create: [open key (guarded), incident, timeline entries] ----------------------------------

def test_create_with_the_key_taken_is_none_not_an_error(stubbed: Stubbed) -> None:
    stubbed.cancel(CCF, NONE, NONE)
    assert stubbed.store.create(incident()) is None
    assert stubbed.pauses == []


@pytest.mark.parametrize("reasons", [
    (NONE, CCF, NONE),                        # the incident item exists: not the guarded item
    ("ThrottlingError", NONE, NONE),
    (NONE, "TransactionConflict", NONE),
    (NONE, NONE, "ValidationError"),
    ("None", "None", "None"),
])
def test_create_cancelled_for_another_reason_is_retried(stubbed: Stubbed, reasons: tuple[str, ...]) -> None:
    stubbed.cancel(*reasons)
    stubbed.ok("transact_write_items")
    created = stubbed.store.create(incident())
    assert created is not None and created.version == 1
    assert stubbed.pauses == [1]
    assert stubbed.transactions()[0] == ["Put:OPENKEY#alarm:a", "Put:INCIDENT#inc-1", "Put:TL#inc-1#000000000",
                                         "Put:REPEATS#inc-1"]  # its repeat counter, armed


def test_create_that_keeps_being_throttled_is_transient_not_a_conflict(stubbed: Stubbed) -> None:
    for _ in range(TRANSACTION_ATTEMPTS):
        stubbed.cancel("ThrottlingError", NONE, NONE)
    with pytest.raises(TransientError, match="ThrottlingError"):
        stubbed.store.create(incident())
    assert len(stubbed.pauses) == TRANSACTION_ATTEMPTS - 1


# --- save with new timeline entries: [incident (guarded), entries] -----------------------------

def stored_v1(**changes: Any) -> Incident:
    return incident(version=1, timeline_stored=1, **changes)


def noted(inc: Incident, what: str = "note: x") -> Incident:
    return inc.noted(TimelineEntry(at=T0 + timedelta(minutes=1), what=what))


def test_save_losing_the_version_race_is_a_conflict(stubbed: Stubbed) -> None:
    stubbed.cancel(CCF, NONE)
    with pytest.raises(ConflictError):
        stubbed.store.save(noted(stored_v1()))
    assert stubbed.pauses == []


@pytest.mark.parametrize("reasons", [(NONE, CCF), ("ThrottlingError", NONE), (NONE, "TransactionConflict"),
                                     ("TransactionConflict", NONE), (NONE, NONE)])
def test_save_cancelled_for_another_reason_is_retried(stubbed: Stubbed, reasons: tuple[str, ...]) -> None:
    stubbed.cancel(*reasons)
    stubbed.ok("transact_write_items")
    saved = stubbed.store.save(noted(stored_v1()))
    assert saved.version == 2 and saved.timeline_stored == 2
    assert stubbed.transactions() == [["Put:INCIDENT#inc-1", "Put:TL#inc-1#000000001"]] * 2


def test_a_counted_repeat_is_one_put_and_no_transaction(stubbed: Stubbed) -> None:
    stubbed.ok("put_item")
    stubbed.store.save(stored_v1(count=99))
    assert [name for name, _ in stubbed.requests] == ["PutItem"]


# --- resolve: [incident (guarded), open-key delete, entries] -----------------------------------

def resolving() -> Incident:
    return noted(stored_v1(), "resolved by alice").model_copy(update={"status": IncidentStatus.RESOLVED})


def test_resolve_losing_the_version_race_is_a_conflict(stubbed: Stubbed) -> None:
    stubbed.cancel(CCF, NONE, NONE)
    with pytest.raises(ConflictError):
        stubbed.store.save(resolving())


@pytest.mark.parametrize("reasons", [(NONE, "ThrottlingError", NONE), (NONE, "TransactionConflict", NONE),
                                     ("ThrottlingError", NONE, NONE), (NONE, NONE, "TransactionConflict"),
                                     (NONE, CCF, "ThrottlingError")])
def test_resolve_cancelled_for_another_reason_is_retried_with_the_key_release(
        stubbed: Stubbed, reasons: tuple[str, ...]) -> None:
    """The old code fell back to a plain put here and left OPENKEY pointing at a resolved incident."""
    stubbed.cancel(*reasons)
    stubbed.ok("transact_write_items")
    saved = stubbed.store.save(resolving())
    assert saved.key_released
    release = ["Put:INCIDENT#inc-1", "Delete:OPENKEY#alarm:a", "Put:TL#inc-1#000000001", "Update:REPEATS#inc-1"]
    assert stubbed.transactions() == [release, release]
    assert "PutItem" not in [name for name, _ in stubbed.requests]


def test_resolve_whose_key_is_not_its_own_goes_on_without_the_release(stubbed: Stubbed) -> None:
    stubbed.cancel(NONE, CCF, NONE)
    stubbed.ok("transact_write_items")
    saved = stubbed.store.save(resolving())
    assert saved.status is IncidentStatus.RESOLVED and saved.key_released
    assert stubbed.transactions() == [["Put:INCIDENT#inc-1", "Delete:OPENKEY#alarm:a", "Put:TL#inc-1#000000001",
                                       "Update:REPEATS#inc-1"],
                                      ["Put:INCIDENT#inc-1", "Put:TL#inc-1#000000001", "Update:REPEATS#inc-1"]]


def test_resolve_that_keeps_being_cancelled_is_transient_and_writes_nothing_else(stubbed: Stubbed) -> None:
    for _ in range(TRANSACTION_ATTEMPTS):
        stubbed.cancel(NONE, "TransactionConflict", NONE)
    with pytest.raises(TransientError):
        stubbed.store.save(resolving())
    assert {name for name, _ in stubbed.requests} == {"TransactWriteItems"}


def test_later_edits_of_a_released_incident_do_not_touch_the_key(stubbed: Stubbed) -> None:
    stubbed.ok("put_item")
    released = stored_v1(status=IncidentStatus.RESOLVED, key_released=True)
    assert stubbed.store.save(released.model_copy(update={"count": 3})).key_released
    assert [name for name, _ in stubbed.requests] == ["PutItem"]


# --- stale pointers heal on read -----------------------------------------------------------------

@pytest.mark.parametrize("target", ["resolved", "missing"])
def test_a_pointer_to_a_resolved_or_missing_incident_is_deleted_on_read(stubbed: Stubbed, target: str) -> None:
    stubbed.ok("get_item", {"Item": {"pk": {"S": "OPENKEY#alarm:a"}, "incident_id": {"S": "inc-1"}}})
    resolved = stored_v1(status=IncidentStatus.RESOLVED)
    found = [{"pk": {"S": "INCIDENT#inc-1"}, "doc": {"S": resolved.model_dump_json()}}] if target == "resolved" else []
    stubbed.ok("batch_get_item", {"Responses": {TABLE: found}})
    stubbed.ok("delete_item")
    assert stubbed.store.get_open("alarm:a") is None
    name, params = stubbed.requests[-1]
    assert name == "DeleteItem" and params["ConditionExpression"] == "incident_id = :id"
    assert params["ExpressionAttributeValues"] == {":id": {"S": "inc-1"}}


def test_a_pointer_that_moved_on_meanwhile_is_left_alone(stubbed: Stubbed) -> None:
    stubbed.ok("get_item", {"Item": {"pk": {"S": "OPENKEY#alarm:a"}, "incident_id": {"S": "inc-1"}}})
    stubbed.ok("batch_get_item", {"Responses": {TABLE: []}})
    stubbed.stub.add_client_error("delete_item", service_error_code="ConditionalCheckFailedException")
    assert stubbed.store.get_open("alarm:a") is None


# --- the same on moto, through the pipeline ------------------------------------------------------

class CancelsOnce:
    """A moto DynamoDB client whose first resolving transaction is cancelled on the open-key delete."""

    def __init__(self, client: Any, reason: str) -> None:
        self.client, self.reason, self.cancelled = client, reason, 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.client, name)
        if name != "transact_write_items":
            return attr

        def call(**kwargs: Any) -> Any:
            items = kwargs["TransactItems"]
            if not self.cancelled and any("Delete" in i for i in items):
                self.cancelled += 1
                codes = [{"Code": self.reason if "Delete" in i else NONE} for i in items]
                raise ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                                   "CancellationReasons": codes}, name)
            return attr(**kwargs)
        return call


@pytest.mark.parametrize("reason", ["TransactionConflict", "ThrottlingError"])
def test_a_cancelled_resolve_never_leaves_the_key_pointing_at_a_resolved_incident(reason: str) -> None:
    """On the old code the resolve fell back to a plain put: OPENKEY stayed, and the alarm could
    never open an incident again (every later trigger ended in ConflictError)."""
    with mock_aws():
        raw = boto3.client("dynamodb", region_name="us-east-1")
        client = CancelsOnce(raw, reason)
        store = DynamoStore(create_table(raw), client=client, pause=lambda attempt: None)
        clock = FakeClock()
        deps = make_deps(store, clock, RecordingChannel())

        def deliver(state: str) -> dict[str, Any]:
            event = sns_event("sns-cloudwatch-alarm-metric.json", message_id=new_id(), NewStateValue=state)
            return dict(on_event(event, "sns", deps)["outcomes"][0])

        first = deliver("ALARM")
        clock.advance(minutes=15)  # longer than the flapping window: the recovery resolves at once
        assert deliver("OK")["reason"] == "RESOLVED" and client.cancelled == 1
        pointer = raw.get_item(TableName=store.table, Key={"pk": {"S": "OPENKEY#" + store.get(
            first["incident_id"]).key}}).get("Item")
        assert pointer is None
        again = deliver("ALARM")
        assert again["reason"] == "OPENED" and again["incident_id"] != first["incident_id"]
