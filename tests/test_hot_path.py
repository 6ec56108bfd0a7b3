"""Issue 17 goal 1: a repeat of an alarm whose incident only counts repeats takes the hot path
(narrow SNS read, remembered alarm, one ``record_repeat``) and keeps every promise the full path
keeps: one incident, one page, redeliveries deduplicated, nothing lost, the same outcome."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.decisions import words
from chalicelib.decisions.classify import classify
from chalicelib.handlers import on_event
from chalicelib.models import IncidentStatus
from chalicelib.sources import sns, to_signals
from chalicelib.store.sqlite import PURGE_EVERY, SqliteStore
from chalicelib.wiring import Deps
from tests.conftest import (
    CONFIG,
    T0,
    FakeClock,
    RecordingChannel,
    inbound_event_files,
    installed,
    load_event,
    make_deps,
    sns_event,
)

ALARM = "sns-cloudwatch-alarm-metric.json"
STORM = 11  # deliveries: the trigger that opens the incident, then repeats it counts


@pytest.fixture
def hot(any_store: Any, clock: FakeClock, console: RecordingChannel) -> Iterator[Deps]:
    yield from installed(make_deps(any_store, clock, console))


class CountingStore:
    """The store, noting which of its event-path methods ran."""

    def __init__(self, store: Any) -> None:
        self._store, self.used = store, []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name in ("record_repeat", "get_open", "claim_delivery", "save"):
            self.used.append(name)
        return attr


def trigger(n: int, **changes: Any) -> dict[str, Any]:
    return sns_event(ALARM, message_id=f"m-{n}", **changes)


def handled(deps: Deps, event: dict[str, Any]) -> dict[str, Any]:
    [outcome] = on_event(event, "sns", deps)["outcomes"]
    return outcome


def opened_and_counting(deps: Deps) -> str:
    """Open the alarm's incident and repeat it until (and once past) it only counts: its id."""
    outcomes = [handled(deps, trigger(n)) for n in range(STORM + 1)]
    assert outcomes[-1]["reason"] == "ALREADY_OPEN"
    return str(outcomes[0]["incident_id"])


def test_a_storm_is_counted_on_the_hot_path_from_its_first_repeat(hot: Deps, console: RecordingChannel,
                                                                   clock: FakeClock) -> None:
    opened = handled(hot, trigger(0))
    assert opened["reason"] == "OPENED"
    entries = hot.store.get(opened["incident_id"]).timeline_count
    spy = CountingStore(hot.store)
    hot.pipeline.store = spy
    repeats = [handled(hot, trigger(n)) for n in range(1, STORM)]
    assert spy.used == ["record_repeat"] * (STORM - 1)  # no claim, no read, no rewrite: from the first repeat
    # a process that does not remember the alarm takes the full path, to the same outcome and count
    full = handled(make_deps(hot.store, clock, RecordingChannel()), trigger(STORM))
    assert full["reason"] == "ALREADY_OPEN"
    assert all({k: v for k, v in r.items() if k != "delivery_id"} == {k: v for k, v in full.items()
                                                                       if k != "delivery_id"} for r in repeats)
    incident = hot.store.get(opened["incident_id"])
    assert incident.count == STORM + 1 and incident.timeline_count == entries  # counted, not itemised
    assert len(console.sent) == 1  # one page, however long the storm
    assert hot.store.get_delivery(repeats[0]["delivery_id"]) == {"status": "done", "outcome": repeats[0]}


def test_a_redelivered_repeat_is_a_duplicate_and_counted_once(hot: Deps) -> None:
    opened_and_counting(hot)
    again = handled(hot, trigger(STORM))
    assert again["reason"] == "DUPLICATE" and again["incident_id"] is None
    assert hot.store.get_open(again["incident_key"]).count == STORM + 1


def test_after_a_resolve_the_next_trigger_opens_a_new_incident_and_pages(hot: Deps, console: RecordingChannel,
                                                                         clock: FakeClock) -> None:
    first = opened_and_counting(hot)
    clock.advance(minutes=15)  # longer than the flapping window (10 min): the recovery resolves at once
    assert handled(hot, sns_event("sns-cloudwatch-alarm-ok.json", message_id="ok-1"))["reason"] == "RESOLVED"
    reopened = handled(hot, trigger(1000))
    assert reopened["reason"] == "OPENED" and reopened["incident_id"] != first
    assert [p.incident_id for p in console.sent if p.kind.value == "trigger"] == [first, reopened["incident_id"]]


def test_a_memory_another_worker_made_stale_falls_back_to_the_full_path(hot: Deps, clock: FakeClock) -> None:
    first = opened_and_counting(hot)
    # another Lambda resolves it: this process still remembers the alarm as counting repeats
    other = make_deps(hot.store, clock, RecordingChannel())
    other.pipeline.resolve(first, "alice")
    reopened = handled(hot, trigger(2000))
    assert reopened["reason"] == "OPENED" and reopened["incident_id"] != first
    assert hot.store.get(first).status is IncidentStatus.RESOLVED


def test_an_alarm_edited_to_a_worse_severity_raises_the_incident(hot: Deps, console: RecordingChannel) -> None:
    opened_and_counting(hot)
    raised = handled(hot, trigger(3000, AlarmDescription="severity: SEV1",
                                  AlarmConfigurationUpdatedTimestamp="2025-03-14T10:00:00.000+0000"))
    assert raised["reason"] == "SEVERITY_RAISED" and raised["severity"] == 1
    assert len(console.sent) > 1  # the Sev1 chain pages


def test_the_glance_reads_only_one_cloudwatch_alarm_in_alarm() -> None:
    glance = sns.repeat_glance(trigger(1))
    assert glance is not None and glance.delivery_id == "sns:m-1"
    assert sns.repeat_glance(trigger(2)).alarm == glance.alarm  # same alarm, another delivery
    assert sns.repeat_glance(trigger(1, AlarmDescription="severity: SEV1")).alarm != glance.alarm
    two = trigger(1)
    two["Records"] *= 2
    deep = trigger(1)
    deep["Records"][0]["Sns"]["Message"] = "[" * 100_000
    for event in (two, deep, load_event("sns-cloudwatch-alarm-ok.json"),
                  load_event("sns-http-notification-cloudwatch-alarm.json"), {"Records": "x"}, [], "text"):
        assert sns.repeat_glance(event) is None


def test_the_glance_ignores_only_the_per_delivery_members_of_the_alarm_message() -> None:
    glance = sns.repeat_glance(trigger(1, OldStateValue="OK")).alarm  # re-encoded like the others
    per_delivery = trigger(2, StateChangeTime="2025-03-14T15:00:00.000+0000", OldStateValue="INSUFFICIENT_DATA",
                           NewStateReason='Threshold Crossed: 1 datapoint [99.0 (14/03/25 15:00:00)] "quoted"')
    assert sns.repeat_glance(per_delivery).alarm == glance
    for change in ({"AlarmActions": []}, {"Trigger": {"Threshold": 11.0}}, {"Region": "EU (Ireland)"},
                   {"Unexpected": {"StateChangeTime": 1}}, {"StateChangeTime": None}):
        assert sns.repeat_glance(trigger(1, **change)).alarm != glance, change


def test_blanking_keeps_keys_inside_strings_and_changes_nothing_else() -> None:
    assert sns.blanked('{"StateChangeTime" : "a\\"b", "x": "y"}') == '{"StateChangeTime" : "", "x": "y"}'
    inside = '{"a": "\\"StateChangeTime\\": \\"v\\"", "OldStateValue": "OK"}'
    assert sns.blanked(inside) == '{"a": "\\"StateChangeTime\\": \\"v\\"", "OldStateValue": ""}'
    # a key that ends inside a value already blanked is no key; an invalid escape is no string
    assert sns.blanked('{"NewStateReason":"x\\"OldStateValue":"y"}') == '{"NewStateReason":"":"y"}'
    assert sns.blanked('{"NewStateReason":"\\uZZZZ"}') == '{"NewStateReason":"\\uZZZZ"}'


@pytest.mark.parametrize("text", ['{"AlarmName": "a", "NewStateValue": "ALARM", "x": NaN, "StateChangeTime": "%s"}',
                                  '{"AlarmName": "a", "NewStateValue": "ALARM", "StateChangeTime": "%s"',
                                  '{"NewStateValue": "ALARM", "StateChangeTime": "%s"}'])
def test_a_message_the_full_path_refuses_is_never_counted_blind(hot: Deps, text: str) -> None:
    """The glance does not parse: what the full path does not open an incident for (NaN, not JSON,
    not an alarm) is never remembered, so each delivery keeps its own record and raw payload."""
    spy = CountingStore(hot.store)
    hot.pipeline.store = spy
    for n in range(3):
        event = trigger(n)
        event["Records"][0]["Sns"]["Message"] = text % f"2025-03-14T14:0{n}:00.000+0000"
        assert sns.repeat_glance(event) is not None
        outcome = handled(hot, event)
        assert outcome["kind"] == "unknown" and "record_repeat" not in spy.used
        assert hot.store.get_delivery(outcome["delivery_id"])["outcome"]["raw_sha256"]
    assert not hot.pipeline._counted


@pytest.mark.parametrize("name", [n for n in inbound_event_files() if n.startswith("sns-")])
def test_the_glance_names_the_delivery_the_full_conversion_does(name: str) -> None:
    event = load_event(name)
    glance = sns.repeat_glance(event)
    if glance is not None:
        [signal] = to_signals(event, T0, "sns")
        assert glance.delivery_id == signal.delivery_id


def test_remembered_classifications_match_and_follow_the_config(hot: Deps) -> None:
    signals = [s for name in inbound_event_files() for s in to_signals(load_event(name), T0, "sns")]
    for signal in signals + signals:
        assert hot.pipeline.classify(signal) == classify(signal, CONFIG.severity)
    stricter = CONFIG.severity.model_copy(update={"rules": ()})
    hot.pipeline.config = CONFIG.model_copy(update={"severity": stricter})
    for signal in signals:
        assert hot.pipeline.classify(signal) == classify(signal, stricter)


def test_the_sqlite_file_keeps_only_the_dedupe_window(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "purge.db")
    for n in range(PURGE_EVERY):
        store.claim_delivery(f"old-{n}", T0, 60)
        store.complete_delivery(f"old-{n}", {"reason": "OPENED"}, T0, keep_days=14)
    later = T0 + timedelta(days=15)
    for n in range(PURGE_EVERY):
        store.claim_delivery(f"new-{n}", later, 60)
        store.complete_delivery(f"new-{n}", {"reason": "OPENED"}, later, keep_days=14)
    rows = store._read("SELECT id FROM deliveries")
    assert len(rows) == PURGE_EVERY and all(r[0].startswith("new-") for r in rows)
    assert store.claim_delivery("new-1", later, 60).value == "done"  # the window itself is kept


def test_purge_drops_only_expired_records_and_long_abandoned_leases(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "purge.db")
    store.claim_delivery("abandoned", T0, 60)
    store.claim_delivery("live", T0 + timedelta(days=2), 60)
    store.complete_delivery("kept", {}, T0, keep_days=14)
    assert store.purge_deliveries(T0 + timedelta(days=2)) == 1
    assert store.get_delivery("abandoned") is None and store.get_delivery("live") is not None
    assert store.get_delivery("kept") is not None
    assert json.dumps(store.get_delivery("kept")) == '{"status": "done", "outcome": {}}'


def _contains_token_by_token(haystack: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    """The rule as written before its fast path: every window compared token by token."""
    n = len(phrase)
    return n > 0 and any(all(h.startswith(w[:-1]) if w.endswith("*") else h == w
                             for h, w in zip(haystack[i:i + n], phrase, strict=True))
                         for i in range(len(haystack) - n + 1))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["auth", "author", "login", "o", "api", "gateway"]), max_size=8),
       st.lists(st.sampled_from(["auth", "author", "login", "o", "api", "gateway", "auth*", "gate*"]), max_size=3))
def test_whole_token_phrases_match_as_token_by_token(haystack: list[str], phrase: list[str]) -> None:
    """A new incident's classification tries every rule's words: its fast path changes no answer."""
    phrase = [w for w in phrase[:-1] if not w.endswith("*")] + phrase[-1:]  # a stem only ends a phrase
    assert words.contains_phrase(tuple(haystack), tuple(phrase)) == _contains_token_by_token(
        tuple(haystack), tuple(phrase))


def _any_phrase_in_as_written(texts: list[str], phrases: list[str]) -> bool:
    """The rule as written before its fast path: every phrase tried on every text's tokens."""
    wanted = [words.phrase_tokens(p) for p in phrases]
    for text in texts:
        hay, joined = words.tokens(text), words._case_joined(text)
        if any(_contains_token_by_token(hay, w) or (len(w) == 1 and w[0] in joined) for w in wanted):
            return True
    return False


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["OAuth", "AIGateway", "audit-log-in-s3", "LoginFailures", "author", "idea",
                                 "AuthenticatedUsers", "api gateway 5xx", "x"]), max_size=3),
       st.lists(st.sampled_from(["oauth", "aigateway", "login", "auth", "authenticat*", "dea", "api gateway",
                                 "gateway 5xx", "log in", "", "auth*"]), max_size=4))
def test_rule_words_match_as_they_did_token_by_token(texts: list[str], phrases: list[str]) -> None:
    assert words.any_phrase_in(texts, phrases) == _any_phrase_in_as_written(texts, phrases)
