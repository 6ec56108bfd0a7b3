"""Two-way PagerDuty sync: signed webhooks v3 in, acknowledge/resolve events out, no echo."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.handlers import on_event
from chalicelib.models import IncidentStatus
from chalicelib.settings import Settings
from chalicelib.store.sqlite import SqliteStore
from chalicelib.wiring import Deps, build_deps, override_deps
from tests.conftest import T0, FakeClock, config_with_channels, load_event, new_id
from tests.test_escalation import sweep_minutes

SECRET = "pd-webhook-secret-for-tests"


class PagerDutyEvents:
    """The Events API v2 as a fake transport: records what we send PagerDuty, and keeps alerts as
    PagerDuty does. A trigger whose dedup_key names an open (triggered or acknowledged) alert is
    folded into it and notifies nobody; otherwise it opens an alert and notifies (``notified``).
    Acknowledge and resolve act on the alert with that key, if any."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.alerts: dict[str, str] = {}  # dedup_key -> triggered | acknowledged | resolved
        self.notified: list[str] = []     # the dedup_key of every trigger that alerted someone
        self.history: dict[str, list[str]] = {}  # dedup_key -> every action received for it
        # called after PagerDuty took an event in, before we hear the answer: may raise (a reply
        # lost on the way back) or act meanwhile (an acknowledgement landing mid-send)
        self.after_accept: Callable[[dict[str, Any]], None] | None = None
        self.before_accept: Callable[[dict[str, Any]], None] | None = None  # before it is taken in

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Any:
        event = json.loads(body)
        if self.before_accept is not None:
            self.before_accept(event)
        self.sent.append(event)
        key, action = event["dedup_key"], event["event_action"]
        self.history.setdefault(key, []).append(action)
        if action == "trigger" and self.alerts.get(key) not in ("triggered", "acknowledged"):
            self.alerts[key] = "triggered"
            self.notified.append(key)
        elif action in ("acknowledge", "resolve") and key in self.alerts and self.alerts[key] != "resolved":
            self.alerts[key] = "acknowledged" if action == "acknowledge" else "resolved"
        if self.after_accept is not None:
            self.after_accept(event)
        return type("R", (), {"status": 202, "headers": {}, "body": b"{}"})()

    def open_alerts(self, prefix: str = "") -> list[str]:
        return sorted(k for k, state in self.alerts.items() if state != "resolved" and k.startswith(prefix))

    def orphans(self, store: Any) -> list[str]:
        """Alerts PagerDuty still rings (or keeps open) for an incident we acknowledged (resolved)."""
        from chalicelib.decisions.pd_alerts import incident_id_of

        left = []
        for key, state in self.alerts.items():
            incident = store.get(incident_id_of(key))
            if incident is None or incident.status is IncidentStatus.OPEN:
                continue
            if state == "triggered" or (incident.status is IncidentStatus.RESOLVED and state != "resolved"):
                left.append(f"{key}: {state} on a {incident.status.value} incident")
        return left

    def get(self, url: str, timeout: float) -> Any:
        return type("R", (), {"status": 200, "headers": {}, "body": b""})()

    def actions(self) -> list[str]:
        return [e["event_action"] for e in self.sent]


@pytest.fixture
def pd() -> PagerDutyEvents:
    return PagerDutyEvents()


@pytest.fixture
def deps(tmp_path: Path, pd: PagerDutyEvents) -> Iterator[Deps]:
    config_with_channels(tmp_path, "  pagerduty-founders:\n    type: pagerduty\n    routing_key_env: PD_KEY\n",
                         {"giles": "[pagerduty-founders, console]"})
    settings = Settings.from_env({"RESPONDER_CONFIG_DIR": str(tmp_path), "PD_KEY": "R0TESTKEY",
                                  "PAGERDUTY_WEBHOOK_SECRET": SECRET,
                                  "RESPONDER_AUDIT": f"file://{tmp_path}/audit.jsonl"})
    built = build_deps(settings, clock=FakeClock(), store=SqliteStore(tmp_path / "s.db"), transport=pd,
                       channels={"console": lambda: _Quiet()})
    override_deps(built)
    yield built
    override_deps(None)
    assert pd.orphans(built.store) == []


class _Quiet:
    def send(self, page: Any) -> None:
        pass


def sev1(deps: Deps) -> str:
    outcome = on_event(load_event("eventbridge-cloudtrail-s3-putobjectretention.json"), "eventbridge", deps)
    return str(outcome["outcomes"][0]["incident_id"])


def webhook(event_type: str, incident_key: str, *, secret: str = SECRET, signature: str | None = None,
            webhook_id: str | None = None, occurred_at: datetime | None = None) -> tuple[bytes, dict[str, str]]:
    """A real sample, signed; it happened a minute after T0 (when the tests' incidents open) unless said."""
    name = {"incident.acknowledged": "acknowledged", "incident.resolved": "resolved"}[event_type]
    body = load_event(f"pagerduty-webhook-incident-{name}.json")
    body["event"]["data"]["incident_key"] = incident_key
    body["event"]["occurred_at"] = (occurred_at or T0 + timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    raw = json.dumps(body, separators=(",", ":")).encode()
    sig = signature if signature is not None else "v1=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"Content-Type": "application/json", "X-Webhook-Id": webhook_id or new_id(),
                 "X-PagerDuty-Signature": sig}


def test_signature_test_vector_verifies_with_either_rotated_secret() -> None:
    from chalicelib.notify.pagerduty_sync import verify_signature

    vector = load_event("pagerduty-webhook-signature-test-vector.json")
    for secret in vector["secrets"]:
        verify_signature(vector["rawBody"].encode(), vector["headers"], secret)


@pytest.mark.parametrize("signature", ["", "v1=deadbeef", "v0=abc", None])
def test_bad_signature_is_401_and_changes_nothing(client: Client, deps: Deps, signature: str | None) -> None:
    incident_id = sev1(deps)
    raw, headers = webhook("incident.acknowledged", incident_id,
                           secret="wrong" if signature is None else SECRET, signature=signature)
    if signature == "":
        del headers["X-PagerDuty-Signature"]
    response = client.http.post("/webhooks/pagerduty", headers=headers, body=raw)
    assert response.status_code == 401 and response.json_body["field"] == "X-PagerDuty-Signature"
    assert deps.store.get(incident_id).status is IncidentStatus.OPEN


def test_pagerduty_ack_acknowledges_ours_once_and_sends_nothing_back(client: Client, deps: Deps,
                                                                      pd: PagerDutyEvents) -> None:
    incident_id = sev1(deps)
    assert pd.actions() == ["trigger"] and pd.sent[0]["dedup_key"] == f"{incident_id}/giles/0"
    pd.alerts[f"{incident_id}/giles/0"] = "acknowledged"  # Giles acknowledged in PagerDuty
    raw, headers = webhook("incident.acknowledged", f"{incident_id}/giles/0")
    first = client.http.post("/webhooks/pagerduty", headers=headers, body=raw)
    again = client.http.post("/webhooks/pagerduty", headers=headers, body=raw)  # PagerDuty's redelivery
    assert first.json_body["reason"] == "ACKNOWLEDGED" and again.json_body["reason"] == "DUPLICATE"
    incident = deps.store.get(incident_id)
    assert incident.status is IncidentStatus.ACKNOWLEDGED and incident.acknowledged_by == "pagerduty:Jane Doe"
    assert sum("acknowledged by" in e.what for e in incident.timeline) == 1
    assert pd.actions() == ["trigger"]  # no acknowledge event echoed back


def test_our_ack_and_resolve_are_sent_to_pagerduty(deps: Deps, pd: PagerDutyEvents) -> None:
    incident_id = sev1(deps)
    deps.pipeline.acknowledge(incident_id, "giles")
    deps.pipeline.resolve(incident_id, "giles")
    assert pd.actions() == ["trigger", "acknowledge", "resolve"]
    assert {e["dedup_key"] for e in pd.sent} == {f"{incident_id}/giles/0"}
    assert pd.alerts == {f"{incident_id}/giles/0": "resolved"}
    assert set(pd.sent[1]) == {"routing_key", "dedup_key", "event_action"}


def test_pagerduty_resolve_resolves_ours_and_only_other_channels_hear_it(client: Client, deps: Deps,
                                                                          pd: PagerDutyEvents) -> None:
    incident_id = sev1(deps)
    pd.alerts[f"{incident_id}/giles/0"] = "resolved"  # resolved in PagerDuty
    raw, headers = webhook("incident.resolved", f"{incident_id}/giles/0")
    assert client.http.post("/webhooks/pagerduty", headers=headers, body=raw).json_body["reason"] == "RESOLVED"
    incident = deps.store.get(incident_id)
    assert incident.status is IncidentStatus.RESOLVED and incident.resolved_by == "pagerduty:Events API v2 (alarm-responder)"
    assert pd.actions() == ["trigger"]
    assert [(p.channel, p.kind.value) for p in incident.pages if p.kind.value == "resolve"] == [("console", "resolve")]


def test_sample_incident_key_of_an_alarm_matches_our_open_incident(client: Client, deps: Deps) -> None:
    from tests.conftest import sns_event

    assert isinstance(deps.clock, FakeClock)
    deps.clock.now = datetime(2025, 3, 14, 9, 42, 40, tzinfo=UTC)  # the sample alarm's night: its ack came after
    on_event(sns_event("sns-cloudwatch-alarm-metric.json", message_id=new_id()), "sns", deps)
    raw = load_event("pagerduty-webhook-signature-test-vector.json")["rawBody"].encode()
    headers = {"Content-Type": "application/json", "X-Webhook-Id": new_id(),
               "X-PagerDuty-Signature": "v1=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()}
    response = client.http.post("/webhooks/pagerduty", headers=headers, body=raw)
    assert response.json_body["reason"] == "ACKNOWLEDGED"


def test_unmatched_or_other_events_are_accepted_with_a_reason(client: Client, deps: Deps) -> None:
    raw, headers = webhook("incident.acknowledged", "inc-unknown")
    response = client.http.post("/webhooks/pagerduty", headers=headers, body=raw)
    assert response.status_code == 200 and response.json_body["reason"] == "NO_MATCH"
    body = load_event("pagerduty-webhook-incident-triggered.json")
    raw = json.dumps(body).encode()
    headers = {"X-Webhook-Id": new_id(), "Content-Type": "application/json",
               "X-PagerDuty-Signature": "v1=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()}
    response = client.http.post("/webhooks/pagerduty", headers=headers, body=raw)
    assert response.status_code == 200 and response.json_body["reason"] == "IGNORED"


def test_pagerduty_reporting_our_own_resolve_back_ends_the_loop(client: Client, deps: Deps,
                                                                pd: PagerDutyEvents) -> None:
    incident_id = sev1(deps)
    deps.pipeline.resolve(incident_id, "giles")  # we tell PagerDuty ...
    raw, headers = webhook("incident.resolved", incident_id)  # ... and it tells us back
    response = client.http.post("/webhooks/pagerduty", headers=headers, body=raw)
    assert response.status_code == 200 and response.json_body["reason"] == "ALREADY_RESOLVED"
    assert pd.actions() == ["trigger", "resolve"]


def test_malformed_incident_key_is_no_match_not_a_crash(client: Client, deps: Deps) -> None:
    # found by the fuzz tests: a non-string incident_key reached the store's query
    body = load_event("pagerduty-webhook-incident-acknowledged.json")
    body["event"]["data"]["incident_key"] = [None]
    raw = json.dumps(body).encode()
    headers = {"X-Webhook-Id": new_id(), "Content-Type": "application/json",
               "X-PagerDuty-Signature": "v1=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()}
    response = client.http.post("/webhooks/pagerduty", headers=headers, body=raw)
    assert response.status_code == 200 and response.json_body["reason"] == "NO_MATCH"


@pytest.fixture
def founders_on_pd(tmp_path: Path, pd: PagerDutyEvents) -> Iterator[tuple[Deps, FakeClock]]:
    """Giles and Christian both behind the one PagerDuty service (and console)."""
    config_with_channels(tmp_path, "  pagerduty-founders:\n    type: pagerduty\n    routing_key_env: PD_KEY\n",
                         {"giles": "[pagerduty-founders, console]", "christian": "[pagerduty-founders, console]"})
    settings = Settings.from_env({"RESPONDER_CONFIG_DIR": str(tmp_path), "PD_KEY": "R0TESTKEY",
                                  "PAGERDUTY_WEBHOOK_SECRET": SECRET,
                                  "RESPONDER_AUDIT": f"file://{tmp_path}/audit.jsonl"})
    clock = FakeClock()
    built = build_deps(settings, clock=clock, store=SqliteStore(tmp_path / "s.db"), transport=pd,
                       channels={"console": lambda: _Quiet()})
    override_deps(built)
    yield built, clock
    override_deps(None)
    assert pd.orphans(built.store) == []


def test_escalation_through_pagerduty_alerts_the_backup(founders_on_pd: tuple[Deps, FakeClock],
                                                       pd: PagerDutyEvents) -> None:
    deps, clock = founders_on_pd
    incident_id = sev1(deps)
    clock.advance(minutes=5)
    deps.pipeline.sweep()
    # one key per incident folded Christian's trigger into Giles's open alert: nobody was alerted
    assert pd.actions() == ["trigger", "trigger"]
    assert pd.notified == [f"{incident_id}/giles/0", f"{incident_id}/christian/0"]


def test_a_repeat_loop_through_pagerduty_alerts_again(founders_on_pd: tuple[Deps, FakeClock],
                                                      pd: PagerDutyEvents) -> None:
    deps, clock = founders_on_pd
    incident_id = sev1(deps)
    sweep_minutes(deps, clock, 16)
    assert pd.notified == [f"{incident_id}/giles/0", f"{incident_id}/christian/0",
                           f"{incident_id}/giles/1", f"{incident_id}/christian/1"]


def test_acknowledge_and_resolve_go_to_every_alert_we_opened(founders_on_pd: tuple[Deps, FakeClock],
                                                             pd: PagerDutyEvents) -> None:
    deps, clock = founders_on_pd
    incident_id = sev1(deps)
    sweep_minutes(deps, clock, 16)
    # the second loop opened a new alert for each person and resolved their first in the same send
    assert pd.open_alerts() == [f"{incident_id}/christian/1", f"{incident_id}/giles/1"]
    deps.pipeline.acknowledge(incident_id, "alice")
    assert {k: v for k, v in pd.alerts.items() if v != "resolved"} == {
        f"{incident_id}/christian/1": "acknowledged", f"{incident_id}/giles/1": "acknowledged"}
    deps.pipeline.resolve(incident_id, "alice")
    assert set(pd.alerts.values()) == {"resolved"} and len(pd.alerts) == 4
    assert all(e["dedup_key"].startswith(f"{incident_id}/") for e in pd.sent)


def test_after_many_loops_an_ack_costs_one_call_per_person(founders_on_pd: tuple[Deps, FakeClock],
                                                           pd: PagerDutyEvents) -> None:
    deps, clock = founders_on_pd
    incident_id = sev1(deps)
    sweep_minutes(deps, clock, 5)
    for _ in range(6):  # six more loops: each person has at most one alert open at any time
        sweep_minutes(deps, clock, 15)
        assert len(pd.open_alerts(f"{incident_id}/giles/")) == 1
        assert len(pd.open_alerts(f"{incident_id}/christian/")) == 1
    assert len(pd.notified) == len(set(pd.notified)) == 2 * 7  # each loop alerted both again
    before = len(pd.sent)
    deps.pipeline.acknowledge(incident_id, "alice")
    assert [e["event_action"] for e in pd.sent[before:]] == ["acknowledge", "acknowledge"]
    state = deps.store.get(incident_id).escalation
    assert [len(a.maybe_open) for a in state.pagerduty] == [1, 1]  # bounded: not one per loop
    before = len(pd.sent)
    deps.pipeline.resolve(incident_id, "alice")
    assert [e["event_action"] for e in pd.sent[before:]] == ["resolve", "resolve"]
    assert pd.open_alerts() == []


def test_a_trigger_whose_reply_was_lost_is_acknowledged_and_resolved(founders_on_pd: tuple[Deps, FakeClock],
                                                                      pd: PagerDutyEvents) -> None:
    """PagerDuty opened Christian's alert but the reply timed out; the ack lands before the retry."""
    from chalicelib.errors import ChannelError

    deps, clock = founders_on_pd
    incident_id = sev1(deps)

    def reply_lost(event: dict[str, Any]) -> None:
        if "/christian/" in event["dedup_key"] and event["event_action"] == "trigger":
            pd.after_accept = None
            raise ChannelError("connection failed: TimeoutError", retryable=True)

    pd.after_accept = reply_lost
    clock.advance(minutes=5)
    deps.pipeline.sweep()
    assert pd.alerts[f"{incident_id}/christian/0"] == "triggered"
    clock.advance(seconds=10)
    deps.pipeline.acknowledge(incident_id, "giles")
    assert pd.alerts[f"{incident_id}/christian/0"] == "acknowledged"
    clock.advance(minutes=1)
    deps.pipeline.resolve(incident_id, "giles")
    assert pd.alerts == {f"{incident_id}/giles/0": "resolved", f"{incident_id}/christian/0": "resolved"}


def test_an_ack_landing_while_a_trigger_is_in_flight_still_stands_the_person_down(
        founders_on_pd: tuple[Deps, FakeClock], pd: PagerDutyEvents) -> None:
    deps, clock = founders_on_pd
    incident_id = sev1(deps)
    acked_before_reply: list[str] = []

    def ack_meanwhile(event: dict[str, Any]) -> None:
        if "/christian/" in event["dedup_key"] and event["event_action"] == "trigger" and not acked_before_reply:
            acked_before_reply.append(event["dedup_key"])
            deps.pipeline.acknowledge(incident_id, "giles")

    pd.after_accept = ack_meanwhile
    clock.advance(minutes=5)
    deps.pipeline.sweep()
    incident = deps.store.get(incident_id)
    assert incident.status is IncidentStatus.ACKNOWLEDGED
    assert pd.alerts == {f"{incident_id}/giles/0": "acknowledged", f"{incident_id}/christian/0": "acknowledged"}
    # Christian hears the stand-down on the console as well (his page reached him after the ack)
    notices = {(p.person, p.channel) for p in incident.pages if p.kind.value == "acknowledge" and p.delivered}
    assert ("christian", "console") in notices and ("christian", "pagerduty-founders") in notices


def test_an_ack_reaching_pagerduty_before_a_trigger_whose_reply_is_lost_still_reaches_its_alert(
        founders_on_pd: tuple[Deps, FakeClock], pd: PagerDutyEvents) -> None:
    from chalicelib.errors import ChannelError

    deps, clock = founders_on_pd
    incident_id = sev1(deps)
    christian = f"{incident_id}/christian/0"

    def ack_first(event: dict[str, Any]) -> None:
        if event["dedup_key"] == christian and event["event_action"] == "trigger":
            pd.before_accept = None
            deps.pipeline.acknowledge(incident_id, "giles")  # its acknowledge of christian/0 finds no alert yet

    def reply_lost(event: dict[str, Any]) -> None:
        if event["dedup_key"] == christian and event["event_action"] == "trigger":
            pd.after_accept = None
            raise ChannelError("connection failed: TimeoutError", retryable=True)

    pd.before_accept, pd.after_accept = ack_first, reply_lost
    clock.advance(minutes=5)
    deps.pipeline.sweep()
    assert pd.history[christian][:2] == ["acknowledge", "trigger"]
    assert pd.alerts[christian] == "acknowledged"


def test_our_resolve_of_an_older_alert_coming_back_resolves_nothing(
        client: Client, founders_on_pd: tuple[Deps, FakeClock], pd: PagerDutyEvents) -> None:
    deps, clock = founders_on_pd
    incident_id = sev1(deps)
    sweep_minutes(deps, clock, 16)  # loop 2: giles/1 opened, giles/0 resolved by us
    assert pd.alerts[f"{incident_id}/giles/0"] == "resolved"
    raw, headers = webhook("incident.resolved", f"{incident_id}/giles/0")
    response = client.http.post("/webhooks/pagerduty", headers=headers, body=raw)
    assert response.json_body["reason"] == "NOT_CURRENT_ALERT"
    incident = deps.store.get(incident_id)
    assert incident.status is IncidentStatus.OPEN
    sweep_minutes(deps, clock, 15)  # and the repeats go on
    assert pd.alerts[f"{incident_id}/giles/2"] == "triggered"


def test_a_human_resolving_an_earlier_alert_is_recorded_and_resolves_nothing(
        client: Client, founders_on_pd: tuple[Deps, FakeClock], pd: PagerDutyEvents) -> None:
    from chalicelib.errors import ChannelError

    deps, clock = founders_on_pd
    incident_id = sev1(deps)

    def older_resolve_fails(event: dict[str, Any]) -> None:
        if event["event_action"] == "resolve" and event["dedup_key"] == f"{incident_id}/giles/0":
            pd.alerts[event["dedup_key"]] = "triggered"  # PagerDuty did not take it
            raise ChannelError("PagerDuty answered 500", retryable=True)

    sweep_minutes(deps, clock, 14)
    pd.after_accept = older_resolve_fails
    sweep_minutes(deps, clock, 1)  # giles/1 triggered; giles/0 still open, its resolve to be retried
    pd.after_accept = None
    assert pd.alerts[f"{incident_id}/giles/0"] == "triggered" and pd.alerts[f"{incident_id}/giles/1"] == "triggered"
    pd.alerts[f"{incident_id}/giles/0"] = "resolved"  # Giles resolves the old one in PagerDuty
    raw, headers = webhook("incident.resolved", f"{incident_id}/giles/0")
    response = client.http.post("/webhooks/pagerduty", headers=headers, body=raw)
    assert response.json_body["reason"] == "EARLIER_ALERT"
    incident = deps.store.get(incident_id)
    assert incident.status is IncidentStatus.OPEN
    assert any(f"earlier PagerDuty alert ({incident_id}/giles/0)" in e.what for e in incident.timeline)
    giles = next(a for a in incident.escalation.pagerduty if a.person == "giles")
    assert giles.maybe_open == (1,)
    # his current alert does resolve it
    pd.alerts[f"{incident_id}/giles/1"] = "resolved"
    raw, headers = webhook("incident.resolved", f"{incident_id}/giles/1")
    assert client.http.post("/webhooks/pagerduty", headers=headers, body=raw).json_body["reason"] == "RESOLVED"
    assert deps.store.get(incident_id).status is IncidentStatus.RESOLVED


def as_before_per_person_keys(deps: Deps, incident_id: str) -> None:
    """Rewrite the incident as the code before per-person keys stored it: no keys, no alert state."""
    incident = deps.store.get(incident_id)
    pages = tuple(p.model_copy(update={"dedup_keys": ()}) for p in incident.pages)
    state = incident.escalation.model_copy(update={"pagerduty": (), "alerts": ()})
    deps.store.save(incident.model_copy(update={"pages": pages, "escalation": state}))


def test_an_incident_open_across_the_deploy_is_acknowledged_and_resolved_on_its_old_key(
        founders_on_pd: tuple[Deps, FakeClock], pd: PagerDutyEvents) -> None:
    deps, clock = founders_on_pd
    incident_id = sev1(deps)
    pd.alerts = {incident_id: "triggered"}  # PagerDuty's alert from before the deploy
    as_before_per_person_keys(deps, incident_id)
    clock.advance(minutes=5)
    deps.pipeline.sweep()  # Christian, after the deploy, on his own key
    deps.pipeline.acknowledge(incident_id, "giles")
    assert pd.alerts[incident_id] == "acknowledged"
    deps.pipeline.resolve(incident_id, "giles")
    assert pd.alerts == {incident_id: "resolved", f"{incident_id}/christian/0": "resolved"}


def test_a_person_paged_on_the_old_key_and_again_after_the_deploy_has_both_closed(
        founders_on_pd: tuple[Deps, FakeClock], pd: PagerDutyEvents) -> None:
    deps, clock = founders_on_pd
    incident_id = sev1(deps)
    pd.alerts = {incident_id: "triggered"}  # Giles's alert from before the deploy
    as_before_per_person_keys(deps, incident_id)
    sweep_minutes(deps, clock, 16)  # loop 2 pages Giles again, now on his own key
    deps.pipeline.acknowledge(incident_id, "alice")
    assert pd.alerts[incident_id] != "triggered"
    deps.pipeline.resolve(incident_id, "alice")
    assert pd.open_alerts() == []


def test_a_webhook_with_the_bare_incident_id_still_matches(client: Client, deps: Deps,
                                                          pd: PagerDutyEvents) -> None:
    incident_id = sev1(deps)  # pages sent before per-person keys used the incident id
    as_before_per_person_keys(deps, incident_id)
    pd.alerts = {incident_id: "resolved"}  # resolved in PagerDuty
    raw, headers = webhook("incident.resolved", incident_id)
    assert client.http.post("/webhooks/pagerduty", headers=headers, body=raw).json_body["reason"] == "RESOLVED"


def test_a_webhook_carrying_any_of_our_keys_finds_the_incident_and_is_not_echoed(
        client: Client, founders_on_pd: tuple[Deps, FakeClock], pd: PagerDutyEvents) -> None:
    deps, clock = founders_on_pd
    incident_id = sev1(deps)
    clock.advance(minutes=5)
    deps.pipeline.sweep()
    pd.alerts[f"{incident_id}/christian/0"] = "acknowledged"  # Christian acknowledged in PagerDuty
    raw, headers = webhook("incident.acknowledged", f"{incident_id}/christian/0")
    response = client.http.post("/webhooks/pagerduty", headers=headers, body=raw)
    assert response.json_body == {"reason": "ACKNOWLEDGED", "event_type": "incident.acknowledged",
                                  "incident_id": incident_id}
    acks = [e["dedup_key"] for e in pd.sent if e["event_action"] == "acknowledge"]
    assert acks == [f"{incident_id}/giles/0"]  # Giles's alert is acknowledged too; Christian's not echoed
    assert deps.store.get(incident_id).status is IncidentStatus.ACKNOWLEDGED
