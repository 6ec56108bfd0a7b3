"""DynamoDB round trips per event path, counted with botocore's event hooks on the store's client.

Every call is a round trip and a bill: a regression in how many calls an event makes fails here.
Budgets (issue 17): at most 4 calls before a new trigger's first page is sent; a repeat of an
incident that only counts repeats one call; no transaction cancelled on the normal path.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.handlers import on_event
from chalicelib.notify.paging import PageRequest
from chalicelib.store import bounds
from chalicelib.store.dynamodb import DynamoStore
from chalicelib.wiring import Deps
from tests.conftest import FakeClock, RecordingChannel, installed, make_deps, sns_event

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


def test_a_new_trigger_pages_within_four_round_trips(counted: tuple[Deps, DynamoCalls, FirstPageChannel]) -> None:
    deps, calls, channel = counted
    [outcome] = on_event(trigger(0), "sns", deps)["outcomes"]
    assert outcome["reason"] == "OPENED" and channel.sent
    print("new trigger before first page", channel.calls_before_first_page, "in all", calls.take())
    assert channel.calls_before_first_page is not None
    assert sum(channel.calls_before_first_page.values()) <= 4
    assert calls.cancelled == 0


def test_a_counted_repeat_is_one_call(counted: tuple[Deps, DynamoCalls, FirstPageChannel]) -> None:
    deps, calls, _ = counted
    for n in range(bounds.MAX_REPEAT_ENTRIES + 1):  # opened, then repeats that go on the timeline
        on_event(trigger(n), "sns", deps)
    print("timeline repeat", calls.take())
    [outcome] = on_event(trigger(100), "sns", deps)["outcomes"]
    assert outcome["reason"] == "ALREADY_OPEN"
    assert calls.take() == Counter({"TransactWriteItems": 1})
    [again] = on_event(trigger(100), "sns", deps)["outcomes"]  # a redelivery: still one call, nothing counted
    assert again["reason"] == "DUPLICATE" and calls.take() == Counter({"TransactWriteItems": 1})
    assert deps.store.get(outcome["incident_id"]).count == bounds.MAX_REPEAT_ENTRIES + 2
    assert calls.cancelled == 1  # the redelivery's, and only it


def test_a_resolve_cancels_no_transaction(counted: tuple[Deps, DynamoCalls, FirstPageChannel]) -> None:
    deps, calls, _ = counted
    on_event(trigger(0), "sns", deps)
    calls.take()
    [outcome] = on_event(trigger(1, NewStateValue="OK", OldStateValue="ALARM"), "sns", deps)["outcomes"]
    assert outcome["reason"] == "RESOLVED"
    print("resolve", calls.take())
    assert calls.cancelled == 0
