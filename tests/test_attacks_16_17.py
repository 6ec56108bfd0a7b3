"""Attacks on issues 16 and 17 (the source registry, the hot path, the sweep fan-out, manual pages):
each test is an input that broke a promise before its fix."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.handlers import on_event
from chalicelib.store import bounds
from chalicelib.wiring import Deps
from tests.conftest import FakeClock, RecordingChannel, installed, make_deps, sns_event

ALARM = "sns-cloudwatch-alarm-metric.json"
STORM = bounds.MAX_REPEAT_ENTRIES + 1


@pytest.fixture
def deps(any_store: Any, clock: FakeClock, console: RecordingChannel) -> Iterator[Deps]:
    yield from installed(make_deps(any_store, clock, console))


def handled(deps: Deps, event: dict[str, Any]) -> dict[str, Any]:
    [outcome] = on_event(event, "sns", deps)["outcomes"]
    return outcome


def test_unknown_alarm_message_repeats_keep_their_raw_payload(deps: Deps) -> None:
    """An SNS alarm message missing its AlarmArn converts to ``unknown``; every delivery of it must
    keep its raw payload (what it said) even once its incident only counts repeats. The hot path
    used to count such a repeat and store only the outcome summary: the payload was gone."""
    events = [sns_event(ALARM, message_id=f"m-{n}", AlarmArn=None, NewStateReason=f"reason {n}")
              for n in range(STORM + 3)]
    outcomes = [handled(deps, event) for event in events]
    assert {o["kind"] for o in outcomes} == {"unknown"}
    for n in range(STORM, STORM + 3):
        kept = deps.store.get_delivery(f"sns:m-{n}")["outcome"]
        assert f"reason {n}" in kept["raw"]
