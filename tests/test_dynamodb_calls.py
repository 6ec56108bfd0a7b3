"""DynamoDB round trips per event path, counted with botocore's event hooks on the store's client.

Every call is a round trip and a bill: a regression in how many calls an event makes fails here.
Budgets (issue 17): at most 4 calls before a new trigger's first page is sent (3 with the on-call
overrides cached); a repeat of an open incident two small writes and no transaction, from its
first repeat; no transaction cancelled on the normal path.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.errors import TransientError
from chalicelib.handlers import on_event
from chalicelib.notify.paging import PageRequest
from chalicelib.store.dynamodb import DynamoStore
from chalicelib.wiring import Deps
from tests.conftest import FakeClock, RecordingChannel, installed, make_deps, sns_event
from tests.test_faults import ThrottledOnce

ALARM = "sns-cloudwatch-alarm-metric.json"


class DynamoCalls:
    """Operation names the client sends, and the transactions DynamoDB cancelled."""

    def __init__(self, client: Any) -> None:
        self.calls: list[str] = []
        self.cancelled = 0
        client.meta.events.register("before-call.dynamodb", self._before)
        client.meta.events.register("after-call.dynamodb", self._after)

    def _before(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)

    def _after(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        if parsed.get("Error", {}).get("Code") == "TransactionCanceledException":
            self.cancelled += 1

    def take(self) -> Counter[str]:
        taken, self.calls = Counter(self.calls), []
        return taken


class FirstPageChannel(RecordingChannel):
    """Notes how many calls the store had made when the first page went out."""

    def __init__(self, calls: DynamoCalls) -> None:
        super().__init__()
        self.counter = calls
        self.calls_before_first_page: Counter[str] | None = None

    def send(self, page: PageRequest) -> None:
        if self.calls_before_first_page is None:
            self.calls_before_first_page = Counter(self.counter.calls)
        super().send(page)


@pytest.fixture
def counted(dynamo_store: DynamoStore, clock: FakeClock) -> Iterator[tuple[Deps, DynamoCalls, FirstPageChannel]]:
    calls = DynamoCalls(dynamo_store.client)
    channel = FirstPageChannel(calls)
    for built in installed(make_deps(dynamo_store, clock, channel)):
        yield built, calls, channel


def trigger(n: int, **changes: Any) -> dict[str, Any]:
    return sns_event(ALARM, message_id=f"m-{n}", **changes)


def another_alarm(n: int) -> dict[str, Any]:
    name = f"alarm-{n}"
    return trigger(n, AlarmName=name, AlarmArn=f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}")


def test_a_new_trigger_pages_within_four_round_trips(counted: tuple[Deps, DynamoCalls, FirstPageChannel]) -> None:
    deps, calls, channel = counted
    [outcome] = on_event(trigger(0), "sns", deps)["outcomes"]
    assert outcome["reason"] == "OPENED" and channel.sent
    print("new trigger before first page", channel.calls_before_first_page, "in all", calls.take())
    assert channel.calls_before_first_page is not None
    assert sum(channel.calls_before_first_page.values()) <= 4
    assert calls.cancelled == 0
    [another] = on_event(another_alarm(1), "sns", deps)["outcomes"]  # the overrides were read a moment ago
    assert another["reason"] == "OPENED" and calls.calls[:3] == [
        "PutItem", "GetItem", "TransactWriteItems"]  # claim, open key, create: then the page


def test_the_overrides_are_read_once_a_minute(counted: tuple[Deps, DynamoCalls, FirstPageChannel],
                                              clock: FakeClock) -> None:
    deps, calls, _ = counted
    reads = []
    for n, minutes in enumerate((0, 0.5, 0.4, 0.2)):
        clock.advance(minutes=minutes)
        [outcome] = on_event(another_alarm(n), "sns", deps)["outcomes"]
        assert outcome["reason"] == "OPENED"
        reads.append(calls.take()["GetItem"])
    # the open key and (after the page) the key's flap record each time; the overrides document at 0 and +66 s
    assert reads == [3, 2, 2, 3]


def test_a_repeat_is_two_small_writes_and_no_transaction_from_the_first(
        counted: tuple[Deps, DynamoCalls, FirstPageChannel]) -> None:
    deps, calls, _ = counted
    [opened] = on_event(trigger(0), "sns", deps)["outcomes"]
    calls.take()
    for n in range(1, 4):
        [outcome] = on_event(trigger(n), "sns", deps)["outcomes"]
        assert outcome["reason"] == "ALREADY_OPEN"
        assert calls.take() == Counter({"UpdateItem": 1, "PutItem": 1})  # the counter, then the delivery
    [again] = on_event(trigger(3), "sns", deps)["outcomes"]  # a redelivery: counted back, a duplicate
    assert again["reason"] == "DUPLICATE" and calls.take() == Counter({"UpdateItem": 2, "PutItem": 1})
    assert deps.store.get(opened["incident_id"]).count == 4
    assert calls.cancelled == 0


def test_a_repeat_whose_delivery_write_fails_takes_its_count_back(
        counted: tuple[Deps, DynamoCalls, FirstPageChannel]) -> None:
    deps, _, _ = counted
    [opened] = on_event(trigger(0), "sns", deps)["outcomes"]

    moto = deps.store.client
    deps.store._client = ThrottledOnce(moto, "put_item")
    with pytest.raises(TransientError):
        on_event(trigger(1), "sns", deps)
    deps.store._client = moto
    assert deps.store.get(opened["incident_id"]).count == 1 and deps.store.get_delivery("sns:m-1") is None
    [retried] = on_event(trigger(1), "sns", deps)["outcomes"]  # the Lambda's retry
    assert retried["reason"] == "ALREADY_OPEN" and deps.store.get(opened["incident_id"]).count == 2


def test_a_resolve_cancels_no_transaction(counted: tuple[Deps, DynamoCalls, FirstPageChannel],
                                         clock: FakeClock) -> None:
    deps, calls, _ = counted
    on_event(trigger(0), "sns", deps)
    calls.take()
    clock.advance(minutes=15)  # longer than the flapping window: the recovery resolves at once
    [outcome] = on_event(trigger(1, NewStateValue="OK", OldStateValue="ALARM"), "sns", deps)["outcomes"]
    assert outcome["reason"] == "RESOLVED"
    print("resolve", calls.take())
    assert calls.cancelled == 0


def test_a_sweep_that_pages_writes_the_incident_twice(counted: tuple[Deps, DynamoCalls, FirstPageChannel],
                                                      clock: FakeClock) -> None:
    from chalicelib import handlers

    deps, calls, channel = counted
    [opened] = on_event(trigger(0), "sns", deps)["outcomes"]
    incident_writes: list[str] = []

    def note(params: dict[str, Any], model: Any, **_: Any) -> None:
        items = [params] if model.name == "PutItem" else [
            body for entry in params.get("TransactItems", []) for body in entry.values()]
        incident_writes.extend(model.name for body in items
                               if body.get("Item", body.get("Key", {})).get("pk", {}).get("S", "").startswith("INCIDENT#"))

    deps.store.client.meta.events.register("provide-client-params.dynamodb.*", note)
    for _ in range(120):  # until the sweep pages the next step
        clock.advance(minutes=1)
        sent, incident_writes[:] = len(channel.sent), []
        handlers.sweep(deps)
        if len(channel.sent) > sent:
            break
    else:
        pytest.fail("no escalation page within two hours")
    # the step queued and leased in one write, then the page's result: not queue, lease, result
    assert len(incident_writes) == 2, incident_writes
    assert calls.cancelled == 0
    assert deps.store.get(opened["incident_id"]).pages[-1].status.value == "sent"
