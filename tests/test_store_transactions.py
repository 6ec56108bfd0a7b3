"""DynamoDB writes and their failures, request by request (botocore Stubber: no moto, no network).

Transactions (create; a save with entries leaving the window) read CancellationReasons item by
item: only a failed condition on the guarded item is a conflict, anything else wrote nothing and
is retried, then raised as ``TransientError``. A resolve is plain writes in a safe order: the
repeat counter disarmed, the incident (guarded), then the open key released if still its own.
"""

from __future__ import annotations

import copy
import json
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
from chalicelib.store import bounds
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


# --- create: [open key (guarded), incident, entries that need a record] --------------------------

def test_create_with_the_key_taken_is_none_not_an_error(stubbed: Stubbed) -> None:
    stubbed.cancel(CCF, NONE)
    assert stubbed.store.create(incident()) is None
    assert stubbed.pauses == []


@pytest.mark.parametrize("reasons", [
    (NONE, CCF),                        # the incident item exists: not the guarded item
    ("ThrottlingError", NONE),
    (NONE, "TransactionConflict"),
    (NONE, "ValidationError"),
    ("None", "None"),
])
def test_create_cancelled_for_another_reason_is_retried(stubbed: Stubbed, reasons: tuple[str, ...]) -> None:
    stubbed.cancel(*reasons)
    stubbed.ok("transact_write_items")
    created = stubbed.store.create(incident())
    assert created is not None and created.version == 1
    assert stubbed.pauses == [1]
    # its one entry lives in the window; the repeat counter is armed by the next write (not before)
    assert stubbed.transactions()[0] == ["Put:OPENKEY#alarm:a", "Put:INCIDENT#inc-1"]
    assert created._beside == (0, None)


def test_create_that_keeps_being_throttled_is_transient_not_a_conflict(stubbed: Stubbed) -> None:
    for _ in range(TRANSACTION_ATTEMPTS):
        stubbed.cancel("ThrottlingError", NONE)
    with pytest.raises(TransientError, match="ThrottlingError"):
        stubbed.store.create(incident())
    assert len(stubbed.pauses) == TRANSACTION_ATTEMPTS - 1


# --- save: one conditional Put; with entries leaving the window [incident (guarded), entries] -----

LONG = "note: " + "x" * bounds.WINDOW_TEXT_MAX  # the window cuts it short: it gets a record of its own


def stored_v1(**changes: Any) -> Incident:
    """Version 1 as read back, its repeat counter armed at its severity."""
    read = incident(**({"version": 1, "timeline_stored": 1} | changes))
    read._beside = (0, bounds.repeat_floor(read))
    return read


def noted(inc: Incident, what: str = LONG) -> Incident:
    return inc.noted(TimelineEntry(at=T0 + timedelta(minutes=1), what=what))


def test_a_save_whose_new_entry_fits_the_window_is_one_put(stubbed: Stubbed) -> None:
    stubbed.ok("put_item")
    saved = stubbed.store.save(noted(stored_v1(), "note: short"))
    assert [name for name, _ in stubbed.requests] == ["PutItem"] and saved.timeline_stored == 2


def test_an_entry_leaving_the_window_is_written_with_the_incident(stubbed: Stubbed) -> None:
    full = stored_v1(timeline=tuple(TimelineEntry(at=T0, what=f"e{n}") for n in range(30)), timeline_stored=30)
    stubbed.ok("transact_write_items")
    saved = stubbed.store.save(noted(full, "e30"))
    assert stubbed.transactions() == [["Put:INCIDENT#inc-1", "Put:TL#inc-1#000000005"]]
    [(_, params)] = stubbed.requests
    assert json.loads(params["TransactItems"][1]["Put"]["Item"]["entry"]["S"])["what"] == "e5"
    assert saved.timeline_omitted == 1 and saved.timeline[5].what == "e6"


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


# --- resolve: disarm the counter, then the incident (guarded), then release the open key ---------

def resolving() -> Incident:
    return noted(stored_v1(), "resolved by alice").model_copy(update={"status": IncidentStatus.RESOLVED})


def writes(stubbed: Stubbed) -> list[str]:
    return [f"{name}:{(p.get('Item') or p.get('Key'))['pk']['S']}" for name, p in stubbed.requests]


def test_resolve_is_three_plain_writes_in_a_safe_order(stubbed: Stubbed) -> None:
    """No transaction (each would bill twice): the counter stops counting first, the open key goes last."""
    for method in ("update_item", "put_item", "delete_item"):
        stubbed.ok(method)
    saved = stubbed.store.save(resolving())
    assert saved.key_released and saved._beside == (0, None)
    assert writes(stubbed) == ["UpdateItem:REPEATS#inc-1", "PutItem:INCIDENT#inc-1", "DeleteItem:OPENKEY#alarm:a"]
    assert stubbed.requests[0][1]["UpdateExpression"].startswith("REMOVE repeat_sev")
    assert stubbed.requests[2][1]["ConditionExpression"] == "incident_id = :id"


def test_resolve_losing_the_version_race_is_a_conflict_and_releases_nothing(stubbed: Stubbed) -> None:
    stubbed.ok("update_item")
    stubbed.stub.add_client_error("put_item", service_error_code="ConditionalCheckFailedException")
    with pytest.raises(ConflictError):
        stubbed.store.save(resolving())
    assert writes(stubbed) == ["UpdateItem:REPEATS#inc-1", "PutItem:INCIDENT#inc-1"]


def test_resolve_whose_key_is_not_its_own_goes_on_without_the_release(stubbed: Stubbed) -> None:
    stubbed.ok("update_item")
    stubbed.ok("put_item")
    stubbed.stub.add_client_error("delete_item", service_error_code="ConditionalCheckFailedException")
    saved = stubbed.store.save(resolving())
    assert saved.status is IncidentStatus.RESOLVED and saved.key_released


def test_a_throttled_key_release_is_retried_and_a_lost_one_is_not_an_error(stubbed: Stubbed) -> None:
    stubbed.ok("update_item")
    stubbed.ok("put_item")
    for _ in range(TRANSACTION_ATTEMPTS):
        stubbed.stub.add_client_error("delete_item", service_error_code="ThrottlingException")
    saved = stubbed.store.save(resolving())  # written: the stale pointer heals on read (below, on moto)
    assert saved.status is IncidentStatus.RESOLVED
    assert len(stubbed.pauses) == TRANSACTION_ATTEMPTS - 1


def test_a_raise_widens_the_counter_guard_after_the_write_and_a_hold_narrows_it_before(stubbed: Stubbed) -> None:
    stubbed.ok("put_item")
    stubbed.ok("update_item")
    stubbed.store.save(stored_v1().model_copy(update={"severity": Severity.SEV1}))
    assert writes(stubbed) == ["PutItem:INCIDENT#inc-1", "UpdateItem:REPEATS#inc-1"]
    stubbed.requests.clear()
    stubbed.ok("update_item")
    stubbed.ok("put_item")
    stubbed.store.save(stored_v1().model_copy(update={"held": "grouped"}))
    assert writes(stubbed) == ["UpdateItem:REPEATS#inc-1", "PutItem:INCIDENT#inc-1"]


def test_later_edits_of_a_released_incident_do_not_touch_the_key(stubbed: Stubbed) -> None:
    stubbed.ok("put_item")
    released = stored_v1(status=IncidentStatus.RESOLVED, key_released=True)
    released._beside = (0, None)
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

class ReleaseFails:
    """A moto DynamoDB client whose open-key deletes are all throttled while ``failing``."""

    def __init__(self, client: Any) -> None:
        self.client, self.refused, self.failing = client, 0, True

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.client, name)
        if name != "delete_item":
            return attr

        def call(**kwargs: Any) -> Any:
            if self.failing and kwargs["Key"]["pk"]["S"].startswith("OPENKEY#"):
                self.refused += 1
                raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, name)
            return attr(**kwargs)
        return call


def test_a_resolve_whose_key_release_fails_still_lets_the_alarm_open_again() -> None:
    """The pointer left behind points at a resolved incident: the next trigger heals it on read and opens."""
    with mock_aws():
        raw = boto3.client("dynamodb", region_name="us-east-1")
        client = ReleaseFails(raw)
        store = DynamoStore(create_table(raw), client=client, pause=lambda attempt: None)
        clock = FakeClock()
        deps = make_deps(store, clock, RecordingChannel())

        def deliver(state: str) -> dict[str, Any]:
            event = sns_event("sns-cloudwatch-alarm-metric.json", message_id=new_id(), NewStateValue=state)
            return dict(on_event(event, "sns", deps)["outcomes"][0])

        first = deliver("ALARM")
        clock.advance(minutes=15)  # longer than the flapping window: the recovery resolves at once
        assert deliver("OK")["reason"] == "RESOLVED" and client.refused == TRANSACTION_ATTEMPTS
        key = store.get(first["incident_id"]).key
        assert raw.get_item(TableName=store.table, Key={"pk": {"S": "OPENKEY#" + key}}).get("Item")
        client.failing = False  # the heal's conditional delete goes through
        again = deliver("ALARM")
        assert again["reason"] == "OPENED" and again["incident_id"] != first["incident_id"]


# --- the due index: an entry moves only when it must ---------------------------------------------

def test_the_due_entry_stays_put_for_a_short_lease_and_is_never_later_than_the_incident() -> None:
    """Moving a `due` index entry is a delete and a put (2 write units): the sweep's claim write
    (due now -> its page's 60 s lease) leaves it where it is; the result's write moves it."""
    from chalicelib.store.dynamodb import DUE_SLACK

    with mock_aws():
        raw = boto3.client("dynamodb", region_name="us-east-1")
        store = DynamoStore(create_table(raw), client=raw)

        def indexed() -> int:
            item = raw.get_item(TableName=store.table, Key={"pk": {"S": "INCIDENT#inc-1"}})["Item"]
            return int(item["due_at"]["N"])

        step = T0 + timedelta(minutes=30)
        stored = store.create(incident(next_action_at=step))
        assert stored is not None and indexed() == int(step.timestamp())
        leased = store.save(store.get("inc-1").model_copy(update={"next_action_at": step + timedelta(seconds=70)}))
        assert indexed() == int(step.timestamp())  # within DUE_SLACK: left in place (early, never late)
        store.save(leased.model_copy(update={"next_action_at": step + timedelta(seconds=DUE_SLACK + 1)}))
        assert indexed() == int(step.timestamp()) + DUE_SLACK + 1  # beyond it: moved
        earlier = step + timedelta(seconds=DUE_SLACK)
        store.save(store.get("inc-1").model_copy(update={"next_action_at": earlier}))
        assert indexed() == int(earlier.timestamp())  # earlier: always moved (no step waits)
        assert [d.incident_id for d in store.due(earlier)] == ["inc-1"]


# --- the repeat counter's guard: a late widening never re-arms what a later write disarmed ----------

@pytest.mark.parametrize("first", ["first save after create", "severity raised"])
def test_a_late_widening_never_arms_the_counter_of_an_incident_resolved_meanwhile(first: str) -> None:
    """Lambda A writes version n and widens the guard after it; before its widening lands, Lambda B
    reads version n and resolves it. A's widening must not arm the counter again: every Lambda that
    remembers the alarm (``Pipeline.repeat``) would count its next trigger on the resolved incident,
    and nobody would be paged for it."""
    from chalicelib.store import Repeat

    with mock_aws():
        raw = boto3.client("dynamodb", region_name="us-east-1")
        store_b = DynamoStore(create_table(raw), client=raw)
        store_a = DynamoStore(store_b.table, client=raw)
        late: list[tuple[str, dict[str, Any]]] = []
        store_a._after_write = lambda what, op, params: late.append((op, params))  # type: ignore[method-assign]
        assert store_b.create(incident()) is not None
        if first == "severity raised":
            store_b.save(noted(store_b.get("inc-1"), "paged"))  # armed at SEV2
            change = {"severity": Severity.SEV1}
        else:
            change = {}
        store_a.save(noted(store_a.get("inc-1"), "paged").model_copy(update=change))  # its widening is slow
        assert late and late[0][0] == "update_item"
        resolved = store_b.save(noted(store_b.get("inc-1"), "resolved by alice").model_copy(
            update={"status": IncidentStatus.RESOLVED}))
        assert resolved.status is IncidentStatus.RESOLVED
        for op, params in late:  # A's widening lands now; refused or not, it raises nothing
            try:
                getattr(raw, op)(**params)
            except raw.exceptions.ConditionalCheckFailedException:
                pass
        counted = store_b.record_repeat("delivery-1", "inc-1", int(Severity.SEV2), {}, T0, 7)
        assert counted is Repeat.NOT_COUNTABLE
        assert store_b.get("inc-1").count == resolved.count


def test_a_narrowing_refused_because_a_later_version_set_the_guard_is_a_conflict(stubbed: Stubbed) -> None:
    """Its guard was set for a later version: this write, based on an older read, would lose anyway."""
    stubbed.stub.add_client_error("update_item", service_error_code="ConditionalCheckFailedException")
    with pytest.raises(ConflictError):
        stubbed.store.save(resolving())
    assert writes(stubbed) == ["UpdateItem:REPEATS#inc-1"]
    assert stubbed.requests[0][1]["ConditionExpression"] == "attribute_not_exists(guard_version) OR guard_version <= :ver"
    assert stubbed.requests[0][1]["ExpressionAttributeValues"][":ver"] == {"N": "2"}
