"""Nothing lost at the edges of the webhook routes: big signed bodies, odd signed shapes, deep JSON.

Every input ends as a signal (classified, or ``unknown`` with its reason) or a 4xx naming the
field, never a 500. Bodies are real samples from tests/events/, signed with the test secrets.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.store.sqlite import SqliteStore
from chalicelib.wiring import Deps
from tests.conftest import FakeClock, RecordingChannel, installed, load_event, make_deps, new_id
from tests.test_app import sentry_post

PD_SECRET = "pd-webhook-secret-for-tests"


@pytest.fixture
def deps(tmp_path: Path, clock: FakeClock, console: RecordingChannel) -> Iterator[Deps]:
    built = make_deps(SqliteStore(tmp_path / "s.db"), clock, console, env={"PAGERDUTY_WEBHOOK_SECRET": PD_SECRET})
    yield from installed(built)


def with_breadcrumbs(event: dict[str, Any], size: int) -> dict[str, Any]:
    """A real event alert grown past ``size`` bytes the way real ones grow: breadcrumbs."""
    grown = copy.deepcopy(event)
    crumb = {"type": "http", "category": "fetch", "level": "info", "timestamp": 1588082160.0,
             "data": {"method": "GET", "status_code": 200, "url": "https://checkout.example.com/api/v1/" + "x" * 200}}
    count = size // len(json.dumps(crumb)) + 1
    grown["data"]["event"]["breadcrumbs"] = {"values": [crumb] * count}
    return grown


def test_signed_event_alert_over_256_kb_is_classified(client: Client, deps: Deps, console: RecordingChannel) -> None:
    event = load_event("sentry-event-alert.json")
    event["data"]["event"]["level"] = "fatal"
    raw = json.dumps(with_breadcrumbs(event, 1024 * 1024)).encode()
    assert len(raw) > 1024 * 1024
    response = sentry_post(client, raw, resource="event_alert")
    assert response.status_code == 200, response.body
    assert response.json_body["kind"] == "sentry_event_alert" and response.json_body["reason"] == "OPENED"
    assert response.json_body["severity"] == 2 and len(console.sent) == 1


def test_big_unrecognised_body_is_kept_truncated_with_its_size_and_digest(client: Client, deps: Deps) -> None:
    body = {"action": "created", "installation": {"uuid": "7a485448-a9e2-4c85-8a3c-4f44175783c9"},
            "data": {"comment": {"text": "y" * (3 * 1024 * 1024)}}, "actor": {"type": "user", "id": 1}}
    raw = json.dumps(body).encode()
    response = sentry_post(client, raw, resource="comment")
    assert response.status_code == 200 and response.json_body["kind"] == "unknown"
    record = deps.store.get_delivery(response.json_body["delivery_id"])
    assert record is not None
    outcome = record["outcome"]
    # the body is kept as its scrubbed structure, clipped, with the size and digest of what was sent
    assert outcome["raw_truncated"] is True and outcome["raw_bytes"] == len(raw)
    assert outcome["raw_sha256"] == hashlib.sha256(raw).hexdigest()
    assert '"action": "created"' in outcome["raw"] and "yyyy" in outcome["raw"]
    assert len(outcome["raw"]) < 300 * 1024


def _issue(change: Callable[[dict[str, Any]], None]) -> bytes:
    body = load_event("sentry-issue-created.json")
    change(body)
    return json.dumps(body).encode()


def _set(path: tuple[str, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        target = body
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


def _deep(levels: int) -> bytes:
    return b'{"action":"created","data":{"issue":' + b'{"a":' * levels + b"1" + b"}" * levels + b"}}"


ODD_SENTRY = {
    "issue is a string": ("issue", _issue(_set(("data", "issue"), "1635244907"))),
    "project is a string": ("issue", _issue(_set(("data", "issue", "project"), "checkout-api"))),
    "lastSeen 1e20": ("issue", _issue(_set(("data", "issue", "lastSeen"), 1e20))),
    "lastSeen Infinity": ("issue", _issue(_set(("data", "issue", "lastSeen"), "INF")).replace(b'"INF"', b"Infinity")),
    "lastSeen a year past 9999": ("issue", _issue(_set(("data", "issue", "lastSeen"), "99999-01-01T00:00:00Z"))),
    "event is a list": ("event_alert", json.dumps(
        {**load_event("sentry-event-alert.json"), "data": {"event": [1, 2], "triggered_rule": ["x"]}}).encode()),
    "metric alert dates are objects": ("metric_alert", json.dumps(_set(
        ("data", "metric_alert", "date_started"), {"$date": 1})(e := load_event("sentry-metric-alert-critical.json"))
        or e).encode()),
    "nested 100 deep": ("issue", _deep(100)),
    "nested 100,000 deep": ("issue", _deep(100_000)),
    "data is a number": ("issue", json.dumps({"action": "created", "data": 7}).encode()),
}


@pytest.mark.parametrize("case", list(ODD_SENTRY))
def test_odd_signed_sentry_shapes_become_signals_or_a_4xx_naming_the_field(client: Client, deps: Deps,
                                                                           case: str) -> None:
    resource, raw = ODD_SENTRY[case]
    response = sentry_post(client, raw, resource=resource)
    assert response.status_code in (200, 400), response.body
    if response.status_code == 400:
        assert response.json_body["field"] == "body"
        recorded = response.json_body["recorded"]
    else:
        recorded = response.json_body
    assert recorded["reason"] in ("OPENED", "ALREADY_OPEN", "RECORDED", "ANNOTATED")
    assert recorded["kind"] in ("sentry_issue", "sentry_event_alert", "sentry_metric_alert", "unknown")
    assert deps.store.get_delivery(recorded["delivery_id"]) is not None  # nothing lost


def test_odd_shapes_keep_what_can_be_read(client: Client, deps: Deps) -> None:
    _, raw = ODD_SENTRY["project is a string"]
    response = sentry_post(client, raw, resource="issue")
    assert response.json_body["kind"] == "sentry_issue"
    incident = deps.store.get(response.json_body["incident_id"])
    assert incident is not None and incident.resource == "checkout-api"
    _, raw = ODD_SENTRY["lastSeen 1e20"]
    assert sentry_post(client, raw, resource="issue").json_body["reason"] == "ALREADY_OPEN"  # received time stands in


def _pd_post(client: Client, raw: bytes) -> Any:
    signature = "v1=" + hmac.new(PD_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return client.http.post("/webhooks/pagerduty", body=raw, headers={
        "Content-Type": "application/json", "X-PagerDuty-Signature": signature, "X-Webhook-Id": new_id()})


@pytest.mark.parametrize("raw", [
    b'{"event":' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    b'{"event":{"event_type":"incident.resolved","occurred_at":Infinity}}',
    b"\xff\xfe",
])
def test_pagerduty_body_we_cannot_read_is_a_400_naming_the_body(client: Client, deps: Deps, raw: bytes) -> None:
    response = _pd_post(client, raw)
    assert response.status_code == 400 and response.json_body["field"] == "body"


def test_pagerduty_event_of_odd_shapes_is_answered_with_a_reason(client: Client, deps: Deps) -> None:
    body = load_event("pagerduty-webhook-incident-resolved.json")
    body["event"]["occurred_at"] = 1e20
    body["event"]["agent"] = ["not", "an", "object"]
    body["event"]["data"] = "PQ1K5C8"
    response = _pd_post(client, json.dumps(body).encode())
    assert response.status_code == 200 and response.json_body["reason"] == "NO_MATCH"


def _nesting(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_nesting(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_nesting(v) for v in value), default=0)
    return 0


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab\n'),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                                  max_size=3), max_leaves=30)


@settings(max_examples=300, deadline=None, derandomize=bool(os.environ.get("CI")))
@given(_json)
def test_depth_scan_of_big_bodies_agrees_with_the_parsed_structure(value: Any) -> None:
    from chalicelib.sources import safejson
    assert safejson.depth(json.dumps(value)) == _nesting(value)
