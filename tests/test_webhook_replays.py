"""Replayed webhooks change nothing: a signed body is its own delivery id, and its own times order it.

Sentry signs the body but not Request-ID, PagerDuty the body but not X-Webhook-Id. Within the
dedupe window the same signed body under a new delivery id is a DUPLICATE; after it, the body's
own time (Sentry ``lastSeen`` / event ``datetime`` / metric alert dates, PagerDuty ``occurred_at``)
is older than the incident's last open or resolve, and the event is recorded as STALE.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.decisions import incidents
from chalicelib.decisions.classify import classify
from chalicelib.decisions.incidents import Reason
from chalicelib.models import IncidentStatus, PageKind, Signal, SignalKind, Transition
from chalicelib.store.sqlite import SqliteStore
from chalicelib.wiring import Deps
from tests.conftest import CONFIG, T0, FakeClock, RecordingChannel, installed, load_event, make_deps, new_id
from tests.test_app import sentry_post

ISSUE_ID = "1635244907"


@pytest.fixture
def deps(any_store: Any, clock: FakeClock, console: RecordingChannel) -> Iterator[Deps]:
    # the shortest dedupe window there is, so a test can step past it
    built = make_deps(any_store, clock, console, env={"RESPONDER_DELIVERY_KEEP_DAYS": "1"})
    yield from installed(built)


def issue(action: str, last_seen: str) -> bytes:
    """A real Sentry issue webhook for one fatal issue (Sev2: pages now, again at +60 minutes)."""
    sample = "sentry-issue-resolved.json" if action == "resolved" else "sentry-issue-created.json"
    body = copy.deepcopy(load_event(sample))
    body["action"] = action
    body["data"]["issue"].update(id=ISSUE_ID, shortId="CHECKOUT-API-2", lastSeen=last_seen, level="fatal",
                                 status="resolved" if action == "resolved" else "unresolved")
    return json.dumps(body, separators=(",", ":")).encode()


CREATED = issue("created", "2025-03-14T14:40:05.903736Z")
RESOLVED = issue("resolved", "2025-03-14T14:50:15.092476Z")
REGRESSED = issue("unresolved", "2025-03-14T16:02:44.000000Z")


def post(client: Client, body: bytes) -> dict[str, Any]:
    response = sentry_post(client, body, request_id=new_id())  # every replay under a fresh Request-ID
    assert response.status_code == 200, response.body
    return dict(response.json_body)


def past_the_dedupe_window(clock: FakeClock) -> None:
    clock.advance(days=1, minutes=1)


def stale_entries(deps: Deps, incident_id: str) -> list[str]:
    incident = deps.store.get(incident_id)
    assert incident is not None
    return [e.what for e in incident.timeline if e.what.startswith("stale")]


def test_same_signed_body_under_a_new_request_id_is_a_duplicate(client: Client, deps: Deps,
                                                                 console: RecordingChannel) -> None:
    first, again = post(client, CREATED), post(client, CREATED)
    assert first["reason"] == "OPENED" and again["reason"] == "DUPLICATE"
    assert len(deps.store.list()) == 1 and len(console.sent) == 1


def test_old_resolved_replayed_after_a_newer_reopen_leaves_it_open_and_paging(
        client: Client, deps: Deps, console: RecordingChannel, clock: FakeClock) -> None:
    first = post(client, CREATED)["incident_id"]
    clock.advance(minutes=10)
    assert post(client, RESOLVED)["reason"] == "RESOLVED"
    clock.advance(minutes=72)
    reopened = post(client, REGRESSED)
    assert reopened["reason"] == "OPENED" and reopened["incident_id"] != first
    second = reopened["incident_id"]
    assert post(client, RESOLVED)["reason"] == "DUPLICATE"  # inside the dedupe window: the digest
    past_the_dedupe_window(clock)
    replay = post(client, RESOLVED)  # outside it: the body's own lastSeen
    assert replay["reason"] == "STALE" and replay["incident_id"] == second
    incident = deps.store.get(second)
    assert incident is not None and incident.status is IncidentStatus.OPEN
    assert stale_entries(deps, second) == [
        "stale, changed nothing: Sentry issue CHECKOUT-API-2 in checkout-api resolved "
        "(dated 2025-03-14 14:50:15, before the last change at 2025-03-14 16:02:44)"]
    paged_before = len(console.sent)
    deps.pipeline.sweep()  # and it keeps paging: the +60 minute step goes out
    assert [p.role for p in console.sent[paged_before:]] == ["founder-primary"]
    assert all(p.kind is not PageKind.RESOLVE for p in console.sent if p.incident_id == second)


def test_old_created_replayed_after_resolve_reopens_nothing_and_pages_no_one(
        client: Client, deps: Deps, console: RecordingChannel, clock: FakeClock) -> None:
    first = post(client, CREATED)["incident_id"]
    clock.advance(minutes=10)
    post(client, RESOLVED)
    paged = len(console.sent)
    assert post(client, CREATED)["reason"] == "DUPLICATE"
    past_the_dedupe_window(clock)
    replay = post(client, CREATED)
    assert replay["reason"] == "STALE" and replay["incident_id"] == first
    assert [i.id for i in deps.store.list()] == [first]
    assert deps.store.get(first).status is IncidentStatus.RESOLVED  # type: ignore[union-attr]
    assert len(console.sent) == paged
    assert len(stale_entries(deps, first)) == 1


def test_a_genuine_regression_after_resolve_still_opens_and_pages(client: Client, deps: Deps,
                                                                  console: RecordingChannel, clock: FakeClock) -> None:
    post(client, CREATED)
    post(client, RESOLVED)
    paged = len(console.sent)
    assert post(client, REGRESSED)["reason"] == "OPENED"
    assert len(console.sent) > paged


def test_old_metric_alert_trigger_after_its_resolve_changes_nothing(client: Client, deps: Deps,
                                                                     clock: FakeClock) -> None:
    critical = load_event("sentry-metric-alert-critical.json")
    resolved = copy.deepcopy(critical)
    resolved["action"] = "resolved"
    resolved["data"]["metric_alert"]["date_closed"] = "2025-03-14T10:20:00.000000Z"
    raw_critical = json.dumps(critical).encode()
    opened = sentry_post(client, raw_critical, resource="metric_alert").json_body
    closed = sentry_post(client, json.dumps(resolved).encode(), resource="metric_alert").json_body
    assert (opened["reason"], closed["reason"]) == ("OPENED", "RESOLVED")
    past_the_dedupe_window(clock)
    replay = sentry_post(client, raw_critical, resource="metric_alert").json_body
    assert replay["reason"] == "STALE" and len(deps.store.list()) == 1


# --- PagerDuty -------------------------------------------------------------------------------


@pytest.fixture
def pd_deps(tmp_path: Path, clock: FakeClock, console: RecordingChannel) -> Iterator[Deps]:
    built = make_deps(SqliteStore(tmp_path / "pd.db"), clock, console,
                      env={"PAGERDUTY_WEBHOOK_SECRET": "pd-webhook-secret-for-tests"})
    yield from installed(built)


def test_old_pagerduty_resolve_does_not_resolve_a_newer_incident(pd_deps: Deps, clock: FakeClock) -> None:
    from chalicelib.handlers import on_event
    from tests.test_pagerduty_sync import webhook

    outcome = on_event(load_event("eventbridge-cloudtrail-s3-putobjectretention.json"), "eventbridge", pd_deps)
    incident_id = str(outcome["outcomes"][0]["incident_id"])
    # PagerDuty resolved an earlier incident with this key an hour before ours opened
    raw, headers = webhook("incident.resolved", incident_id, occurred_at=T0 - timedelta(hours=1))
    with Client(app_module.app, stage_name="dev") as client:
        first = client.http.post("/webhooks/pagerduty", headers=headers, body=raw)
        again = client.http.post("/webhooks/pagerduty", headers={**headers, "X-Webhook-Id": new_id()}, body=raw)
    assert first.status_code == 200 and first.json_body["reason"] == "STALE"
    assert again.json_body["reason"] == "DUPLICATE"  # the same signed body under a new X-Webhook-Id
    incident = pd_deps.store.get(incident_id)
    assert incident is not None and incident.status is IncidentStatus.OPEN
    assert stale_entries(pd_deps, incident_id) == [
        "stale, changed nothing: PagerDuty incident.resolved "
        "(dated 2025-03-14 13:42:40, before the last change at 2025-03-14 14:42:40)"]


# --- the decision itself (pure) ----------------------------------------------------------------


def _signal(transition: Transition, signed_at: datetime | None) -> Signal:
    return Signal(kind=SignalKind.SENTRY_ISSUE, source="sentry", delivery_id="d", incident_key="sentry:issue:1",
                  transition=transition, occurred_at=signed_at or T0, signed_at=signed_at, title="t",
                  facts=(("sentry_level", "fatal"),))


@pytest.mark.parametrize(("sent", "changed", "stale"), [
    (T0 - timedelta(seconds=1), T0, True),
    (T0, T0, False),  # a tie is fresh: a human re-opening in Sentry sends the resolve's lastSeen again
    (T0 + timedelta(seconds=1), T0, False),
    (None, T0, False),  # the sender dated nothing
    (T0 - timedelta(days=1), None, False),  # stored before changed_at existed
])
def test_is_stale_compares_the_senders_time_with_the_last_change(sent: datetime | None, changed: datetime | None,
                                                                 stale: bool) -> None:
    from chalicelib.decisions.incidents import new_incident

    signal = _signal(Transition.TRIGGER, T0)
    incident = new_incident("inc-1", signal, classify(signal, CONFIG.severity), T0, CONFIG)
    incident = incident.model_copy(update={"changed_at": changed})
    assert incidents.is_stale(sent, incident) is stale
    c = classify(signal, CONFIG.severity)
    expected = Reason.STALE if stale else Reason.RESOLVED
    assert incidents.decide(_signal(Transition.RESOLVE, sent), c, incident) is expected


def test_a_resolved_key_is_judged_against_its_last_incident() -> None:
    from chalicelib.decisions.incidents import close, new_incident

    signal = _signal(Transition.TRIGGER, T0)
    c = classify(signal, CONFIG.severity)
    resolved = close(new_incident("inc-1", signal, c, T0, CONFIG), "signal", "resolved", T0, CONFIG,
                     changed_at=T0 + timedelta(minutes=5))
    assert incidents.decide(_signal(Transition.TRIGGER, T0), c, None, resolved) is Reason.STALE
    assert incidents.decide(_signal(Transition.TRIGGER, T0 + timedelta(minutes=6)), c, None, resolved) is Reason.OPENED
    assert incidents.decide(_signal(Transition.TRIGGER, T0), c, None, None) is Reason.OPENED


def test_sentry_times_come_from_the_signed_body() -> None:
    from chalicelib.sources.sentry import signed_time, to_signal

    body = json.loads(CREATED)
    signal = to_signal(body, resource="issue", request_id="r", raw=CREATED, received=T0)
    assert signal.signed_at == datetime(2025, 3, 14, 14, 40, 5, 903736, tzinfo=UTC)
    assert signal.delivery_id == to_signal(body, resource="issue", request_id="other", raw=CREATED,
                                           received=T0).delivery_id  # Request-ID is not signed
    for absurd in (1e20, float("inf"), float("nan"), "not a time", "", None, True, [1], {"a": 1}, "99999-01-01"):
        assert signed_time(absurd) is None
