"""On-call operations (issue 13 §1, §2) through chalice.test.Client on both stores: a page on
purpose, escalate now, reassign, snooze, severity; the CLI commands; lost races."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice.test import Client
from moto import mock_aws

from chalicelib.decisions import actions
from chalicelib.decisions.actions import Reason
from chalicelib.handlers import on_event
from chalicelib.models import IncidentStatus, PageKind, Severity
from chalicelib.reports.report import monthly_stats, render_markdown
from chalicelib.store import with_full_timeline
from chalicelib.web.tokens import Role
from chalicelib.wiring import Deps
from tests.conftest import T0, FakeClock, RecordingChannel, app_on, create_table, load_event


@pytest.fixture(params=["sqlite", "dynamodb"])
def env(request: Any, tmp_path: Path, clock: FakeClock, console: RecordingChannel) -> Iterator[tuple[Client, Deps]]:
    yield from app_on(request.param, tmp_path, clock, console)


@pytest.fixture
def http(env: tuple[Client, Deps]) -> Client:
    return env[0]


@pytest.fixture
def deps(env: tuple[Client, Deps]) -> Deps:
    return env[1]


@pytest.fixture
def token(deps: Deps) -> str:
    return deps.tokens.create("alice", Role.RESPONDER)[1]


def post(http: Client, token: str, path: str, body: Any = None) -> Any:
    raw = (body if isinstance(body, str) else json.dumps(body)).encode() if body is not None else b""
    return http.http.post(path, body=raw, headers={"Content-Type": "application/json",
                                                   "Authorization": f"Bearer {token}"})


def paged(console: RecordingChannel) -> list[tuple[str, PageKind]]:
    """Who got a page calling for action, in order, and forget them."""
    got = [(p.person, p.kind) for p in console.sent if p.kind.calls_for_action]
    console.sent.clear()
    return got


def open_page(http: Client, token: str, **body: Any) -> dict[str, Any]:
    response = post(http, token, "/incidents", {"severity": 1, "title": "customer says reports are wrong", **body})
    assert response.status_code == 201, response.json_body
    assert response.json_body["reason"] == "OPENED"
    return dict(response.json_body["incident"])


def sweep_at(deps: Deps, clock: FakeClock, minutes: float) -> None:
    clock.now = T0 + timedelta(minutes=minutes)
    deps.pipeline.sweep()


# --- §1 a page on purpose ----------------------------------------------------------------------


def test_a_page_on_purpose_is_a_manual_incident_through_the_pipeline(http: Client, deps: Deps, token: str,
                                                                     console: RecordingChannel) -> None:
    incident = open_page(http, token, severity=2, title="Acme: dashboards show yesterday's data")
    assert incident["kind"] == "manual" and incident["severity"] == 2 and incident["owner"] == "engineering-oncall"
    assert incident["rule"] == "manual page by alice"
    assert paged(console) == [("engineer-on-call", PageKind.TRIGGER)]  # the Sev2 chain's first step
    assert deps.store.get_delivery(f"manual:{incident['key'].removeprefix('manual:')}") is not None
    stats = monthly_stats(deps.store.list(), "2025-03", deps.config)
    assert stats.by_kind == {"manual": 1} and stats.by_severity[2].count == 1


def test_a_key_deduplicates_pages_and_without_one_each_page_is_its_own(http: Client, deps: Deps, token: str,
                                                                       console: RecordingChannel,
                                                                       clock: FakeClock) -> None:
    first = open_page(http, token, key="acme-wrong-data")
    clock.advance(minutes=1)
    again = post(http, token, "/incidents", {"severity": 1, "title": "Acme again", "key": "acme-wrong-data"})
    assert again.status_code == 200 and again.json_body["reason"] == "ALREADY_OPEN"
    assert again.json_body["incident"]["id"] == first["id"] and again.json_body["incident"]["count"] == 2
    assert paged(console) == [("giles", PageKind.TRIGGER)]  # once
    other = open_page(http, token, title="customer says reports are wrong")
    assert other["id"] != first["id"]


def test_a_named_person_is_paged_first_and_the_chain_goes_on_from_them(http: Client, deps: Deps, token: str,
                                                                       console: RecordingChannel,
                                                                       clock: FakeClock) -> None:
    created: list[Any] = []
    real = deps.pipeline.incidents.store
    deps.pipeline.incidents.store = Recorded(real, created)
    try:
        incident = open_page(http, token, severity=1, person="christian")
    finally:
        deps.pipeline.incidents.store = real
    assert incident["owner"] == "christian"
    # stored with the named owner's page already queued: no sweep can page the chain's first step first
    assert [(c.owner, [p.person for p in c.pages]) for c in created] == [("christian", ["christian"])]
    assert paged(console) == [("christian", PageKind.TRIGGER)]  # not the matrix's founder-primary
    by_alice = [e for e in incident["timeline"] if e["by"] == "alice"]
    assert by_alice and by_alice[0]["what"].startswith("owner christian named by alice: paged christian")
    sweep_at(deps, clock, 5)  # step 2 is christian again (already paged): on to engineering at once
    assert paged(console) == [("engineer-on-call", PageKind.ESCALATION)]


def test_a_named_role_is_paged_from_its_place_in_the_chain(http: Client, deps: Deps, token: str,
                                                           console: RecordingChannel, clock: FakeClock) -> None:
    incident = open_page(http, token, severity=1, role="founder-backup")
    assert incident["owner"] == "founder-backup"
    assert paged(console) == [("christian", PageKind.TRIGGER)]
    sweep_at(deps, clock, 4)
    assert paged(console) == []
    sweep_at(deps, clock, 5)  # founder-backup is step 2 (+5): step 3 (+10) comes 5 minutes later
    assert paged(console) == [("engineer-on-call", PageKind.ESCALATION)]


def test_the_title_is_masked_clipped_and_escaped_where_it_goes(http: Client, deps: Deps, token: str,
                                                              console: RecordingChannel) -> None:
    title = "Jane (jane.doe@example.com, 617-555-0143) says <script>x</script> **wrong**\n\x1b[31m" + "x" * 500
    incident = open_page(http, token, title=title)
    assert len(incident["title"]) <= 200 and incident["title"].endswith("[truncated]")
    assert "jane.doe@example.com" not in incident["title"] and "617-555-0143" not in incident["title"]
    assert "\n" not in incident["title"] and "[scrubbed]" in incident["title"]
    stored = deps.store.get(incident["id"])
    assert "example.com" not in json.dumps([p.text for p in stored.pages])
    report = render_markdown(monthly_stats(deps.store.list(), "2025-03", deps.config), [], T0)
    assert "<script>" not in report and "**wrong**" not in report


@pytest.mark.parametrize("body, field", [
    ({"title": "t"}, "severity"), ({"severity": 0, "title": "t"}, "severity"),
    ({"severity": 5, "title": "t"}, "severity"), ({"severity": "2", "title": "t"}, "severity"),
    ({"severity": True, "title": "t"}, "severity"), ({"severity": 2}, "title"),
    ({"severity": 2, "title": "  "}, "title"), ({"severity": 2, "title": 7}, "title"),
    ({"severity": 2, "title": "t", "role": "nobody"}, "role"), ({"severity": 2, "title": "t", "role": "giles"}, "role"),
    ({"severity": 2, "title": "t", "person": "mallory"}, "person"),
    ({"severity": 2, "title": "t", "role": "founder-backup", "person": "giles"}, "person"),
    ({"severity": 2, "title": "t", "key": ""}, "key"), ({"severity": 2, "title": "t", "key": "k" * 201}, "key"),
    ({"severity": 2, "title": "t", "colour": "red"}, "colour"), ("not json", "body"), ([1], "body"),
])
def test_bad_pages_are_400_naming_the_field(http: Client, deps: Deps, token: str, body: Any, field: str) -> None:
    response = post(http, token, "/incidents", body)
    assert response.status_code == 400 and response.json_body["field"] == field, response.json_body
    assert response.json_body["message"].startswith(f"{field}:") and deps.store.list() == []


# --- §2 acting on an incident ---------------------------------------------------------------------


def test_escalate_pages_the_next_step_now_and_past_the_end_raises(http: Client, deps: Deps, token: str,
                                                                  console: RecordingChannel) -> None:
    incident = open_page(http, token, severity=3)  # Friday 10:42: the Sev3 chain's only step pages now
    assert paged(console) == [("engineer-daytime", PageKind.TRIGGER)]
    raised = post(http, token, f"/incidents/{incident['id']}/escalate")
    assert raised.status_code == 200 and raised.json_body["reason"] == "RAISED"
    assert raised.json_body["incident"]["severity"] == 2 and paged(console) == [("engineer-on-call",
                                                                                 PageKind.ESCALATION)]
    sev1 = open_page(http, token, severity=1)
    paged(console)
    response = post(http, token, f"/incidents/{sev1['id']}/escalate")
    assert response.json_body["reason"] == "ESCALATED" and paged(console) == [("christian", PageKind.ESCALATION)]
    assert ("alice", "escalation asked by alice") in [(e["by"], e["what"]) for e in
                                                      response.json_body["incident"]["timeline"]]


def test_reassign_pages_the_new_owner_once_and_reopens_an_acknowledged_incident(
        http: Client, deps: Deps, token: str, console: RecordingChannel) -> None:
    incident = open_page(http, token, severity=2)
    paged(console)
    deps.pipeline.acknowledge(incident["id"], "engineer-on-call")
    moved = post(http, token, f"/incidents/{incident['id']}/reassign", {"to": "giles"})
    assert moved.status_code == 200 and moved.json_body["reason"] == "REASSIGNED"
    body = moved.json_body["incident"]
    assert body["owner"] == "giles" and body["status"] == "open" and paged(console) == [("giles", PageKind.ESCALATION)]
    assert any(e["by"] == "alice" and "re-opened" in e["what"] for e in body["timeline"])
    again = post(http, token, f"/incidents/{incident['id']}/reassign", {"to": "giles"})
    assert again.status_code == 200 and again.json_body["reason"] == "ALREADY_OWNER" and paged(console) == []
    assert again.json_body["incident"]["timeline_count"] == body["timeline_count"]
    unknown = post(http, token, f"/incidents/{incident['id']}/reassign", {"to": "mallory"})
    assert unknown.status_code == 400 and unknown.json_body["field"] == "to"


def test_a_snoozed_sev1_pages_nobody_until_the_snooze_ends(http: Client, deps: Deps, token: str,
                                                          console: RecordingChannel, clock: FakeClock) -> None:
    incident = open_page(http, token, severity=1)
    assert paged(console) == [("giles", PageKind.TRIGGER)]
    until = (T0 + timedelta(minutes=40)).isoformat()
    snoozed = post(http, token, f"/incidents/{incident['id']}/snooze", {"until": until})
    assert snoozed.status_code == 200 and snoozed.json_body["reason"] == "SNOOZED"
    twice = post(http, token, f"/incidents/{incident['id']}/snooze", {"until": until})
    assert twice.json_body["reason"] == "ALREADY_SNOOZED"
    entries = [e for e in twice.json_body["incident"]["timeline"] if e["what"].startswith("snoozed until")]
    assert [e["by"] for e in entries] == ["alice"]  # the same snooze twice: one entry
    for minute in (1, 5, 10, 15, 20, 30, 39, 39.9):  # steps at +5 and +10, loops at +15 and +30: all held
        sweep_at(deps, clock, minute)
        assert paged(console) == [], minute
    sweep_at(deps, clock, 40)  # still unacknowledged: the steps that fell due meanwhile page at its end
    assert paged(console) == [("christian", PageKind.ESCALATION), ("engineer-on-call", PageKind.ESCALATION)]
    sweep_at(deps, clock, 41)  # and the repeat loop (the latest one, +30) pages everyone in the chain
    assert sorted(paged(console)) == [("christian", PageKind.ESCALATION), ("engineer-on-call", PageKind.ESCALATION),
                                      ("giles", PageKind.ESCALATION)]
    clock.now = T0 + timedelta(minutes=42)
    deps.pipeline.acknowledge(incident["id"], "giles")
    # the snooze did not stop the clock: acknowledged 42 minutes after it opened
    assert monthly_stats(deps.store.list(), "2025-03", deps.config).by_severity[1].mtta_minutes == 42.0


def test_a_snooze_that_ends_before_the_next_step_changes_nothing(http: Client, deps: Deps, token: str,
                                                                 console: RecordingChannel, clock: FakeClock) -> None:
    incident = open_page(http, token, severity=1)
    paged(console)
    post(http, token, f"/incidents/{incident['id']}/snooze", {"until": (T0 + timedelta(minutes=2)).isoformat()})
    sweep_at(deps, clock, 5)
    assert paged(console) == [("christian", PageKind.ESCALATION)]


@pytest.mark.parametrize("body, status, field", [
    ({"until": "2025-03-14T14:00:00+00:00"}, 409, "until"), ({"until": "tomorrow"}, 400, "until"),
    ({"until": "2025-03-14T18:00:00"}, 400, "until"), ({"until": "2025-04-14T18:00:00+00:00"}, 400, "until"),
    ({}, 400, "until"), ({"until": "2025-03-14T18:00:00+00:00", "why": "x"}, 400, "why"),
    ({"until": "9999-12-31T23:59:59-23:59"}, 400, "until"), ({"until": 1741966000}, 400, "until"),
])
def test_bad_snoozes_are_refused_naming_the_field(http: Client, deps: Deps, token: str, body: Any, status: int,
                                                  field: str) -> None:
    incident = open_page(http, token)
    response = post(http, token, f"/incidents/{incident['id']}/snooze", body)
    assert response.status_code == status and response.json_body["field"] == field, response.json_body
    assert deps.store.get(incident["id"]).snoozed_until is None


def test_nothing_can_be_done_to_a_resolved_incident(http: Client, deps: Deps, token: str) -> None:
    incident = open_page(http, token)
    deps.pipeline.resolve(incident["id"], "giles")
    version = deps.store.get(incident["id"]).version
    for path, body in (("escalate", None), ("reassign", {"to": "christian"}), ("severity", {"severity": 2}),
                       ("snooze", {"until": (T0 + timedelta(hours=1)).isoformat()})):
        response = post(http, token, f"/incidents/{incident['id']}/{path}", body)
        assert response.status_code == 409 and response.json_body["field"] == "status", path
        assert "resolved" in response.json_body["message"]
    assert deps.store.get(incident["id"]).version == version
    assert post(http, token, "/incidents/inc-nope/escalate").status_code == 404


def test_acknowledged_incidents_cannot_be_escalated_or_snoozed(http: Client, deps: Deps, token: str) -> None:
    incident = open_page(http, token)
    deps.pipeline.acknowledge(incident["id"], "giles")
    for path, body in (("escalate", None), ("snooze", {"until": (T0 + timedelta(hours=1)).isoformat()})):
        response = post(http, token, f"/incidents/{incident['id']}/{path}", body)
        assert response.status_code == 409 and "acknowledged" in response.json_body["message"], path


def test_severity_moves_the_chain_owner_target_and_duties(http: Client, deps: Deps, token: str,
                                                          console: RecordingChannel, clock: FakeClock) -> None:
    outcome = on_event(load_event("eventbridge-cloudwatch-alarm-state-change-single-metric.json"), "eventbridge",
                       deps)["outcomes"][0]
    incident_id, start = outcome["incident_id"], Severity(outcome["severity"])
    paged(console)
    up = post(http, token, f"/incidents/{incident_id}/severity", {"severity": 1})
    body = up.json_body["incident"]
    assert up.json_body["reason"] == "SEVERITY_CHANGED" and body["severity"] == 1
    assert body["owner"] == "founder-primary" and ("giles", PageKind.ESCALATION) in paged(console)
    opened = deps.store.get(incident_id).opened_at
    notices = [d for d in deps.store.get(incident_id).duties if d.kind == "customer_notification"]
    assert [d.due_at for d in notices] == [opened + timedelta(minutes=240)]
    assert any(e["by"] == "alice" and e["what"] == f"severity changed SEV{start.value} → SEV1 by alice"
               for e in body["timeline"])
    down = post(http, token, f"/incidents/{incident_id}/severity", {"severity": 3}).json_body["incident"]
    assert down["severity"] == 3 and down["owner"] == "engineering-daytime"
    assert not [d for d in deps.store.get(incident_id).duties if d.kind == "customer_notification"]
    assert paged(console) == [("engineer-daytime", PageKind.ESCALATION)]  # the Sev3 chain, from now
    same = post(http, token, f"/incidents/{incident_id}/severity", {"severity": 3})
    assert same.json_body["reason"] == "SAME_SEVERITY" and same.json_body["incident"]["timeline_count"] == \
        down["timeline_count"]
    bad = post(http, token, f"/incidents/{incident_id}/severity", {"severity": 9})
    assert bad.status_code == 400 and bad.json_body["field"] == "severity"


# --- races: the conditional update re-reads and decides again -----------------------------------


class Recorded:
    """The store, keeping every incident handed to ``create``."""

    def __init__(self, store: Any, created: list[Any]) -> None:
        self._store, self._created = store, created

    def create(self, incident: Any) -> Any:
        self._created.append(incident)
        return self._store.create(incident)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class Interleaved:
    """The store, with someone else's write landing between an action's read and its save (once)."""

    def __init__(self, store: Any, meanwhile: Any) -> None:
        self._store, self._meanwhile = store, meanwhile

    def save(self, incident: Any) -> Any:
        if self._meanwhile is not None:
            run, self._meanwhile = self._meanwhile, None
            run()
        return self._store.save(incident)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def test_an_action_that_loses_a_race_is_decided_again_on_both_stores(http: Client, deps: Deps, token: str) -> None:
    incident = open_page(http, token, severity=2)
    real = deps.pipeline.incidents.store
    until = T0 + timedelta(minutes=30)
    deps.pipeline.incidents.store = Interleaved(real, lambda: deps.pipeline.add_note(incident["id"], "bob", "on it"))
    try:
        post(http, token, f"/incidents/{incident['id']}/snooze", {"until": until.isoformat()})
        deps.pipeline.incidents.store = Interleaved(real, lambda: deps.pipeline.acknowledge(incident["id"], "bob"))
        refused = post(http, token, f"/incidents/{incident['id']}/escalate")
    finally:
        deps.pipeline.incidents.store = real
    stored = with_full_timeline(real, real.get(incident["id"]))
    whats = [e.what for e in stored.timeline]
    assert "note: on it" in whats and sum(w.startswith("snoozed until") for w in whats) == 1  # both kept
    assert stored.snoozed_until == until and stored.status is IncidentStatus.ACKNOWLEDGED
    assert refused.status_code == 409  # decided again against the acknowledged incident


# --- the decisions (pure) -------------------------------------------------------------------------


def test_decisions_return_reasons(deps: Deps, clock: FakeClock) -> None:
    config = deps.config
    ops = on_event(load_event("eventbridge-cloudtrail-s3-putobjectlegalhold.json"), "eventbridge", deps)
    incident = deps.store.get(ops["outcomes"][0]["incident_id"])
    target = actions.target_of("founder-backup", config)
    assert actions.decide_reassign(incident, target) is Reason.REASSIGNED
    assert actions.decide_reassign(incident, actions.target_of(incident.owner, config)) is Reason.ALREADY_OWNER
    assert actions.decide_snooze(incident, T0 - timedelta(seconds=1), T0) is Reason.IN_THE_PAST
    assert actions.decide_snooze(incident, T0 + timedelta(minutes=5), T0) is Reason.SNOOZED
    snoozed = actions.snoozed(incident, T0 + timedelta(minutes=5), "alice", T0)
    assert actions.decide_snooze(snoozed, T0 + timedelta(minutes=5), T0) is Reason.ALREADY_SNOOZED
    assert actions.decide_severity(incident, incident.severity) is Reason.SAME_SEVERITY
    assert actions.decide_escalate(incident, config) in (Reason.ESCALATED, Reason.RAISED)
    resolved = incident.model_copy(update={"status": IncidentStatus.RESOLVED})
    acked = incident.model_copy(update={"status": IncidentStatus.ACKNOWLEDGED})
    assert {actions.decide_escalate(resolved, config), actions.decide_reassign(resolved, target),
            actions.decide_snooze(resolved, T0 + timedelta(minutes=5), T0),
            actions.decide_severity(resolved, Severity.SEV1)} == {Reason.RESOLVED}
    assert actions.decide_escalate(acked, config) is Reason.ACKNOWLEDGED
    assert actions.decide_severity(acked, Severity.SEV4) is Reason.SEVERITY_CHANGED
    with pytest.raises(Exception, match="until: must be at most 7 days ahead"):
        actions.until_of(T0 + timedelta(days=8), T0)


# --- the CLI ------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "dynamodb"])
def cli_store(request: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("SENTRY_CLIENT_SECRET", raising=False)
    if request.param == "sqlite":
        monkeypatch.setenv("RESPONDER_STORE", f"sqlite:///{tmp_path / 'cli.db'}")
        yield
        return
    with mock_aws():
        monkeypatch.setenv("RESPONDER_STORE", f"dynamodb://{create_table(boto3.client('dynamodb'))}")
        yield


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    from chalicelib.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    start = out.find("{\n")  # the console channel prints its pages on stdout too
    return code, json.loads(out[start:]) if code == 0 else None, err


def test_the_cli_pages_and_acts_with_who_did_it(cli_store: None, capsys: pytest.CaptureFixture[str]) -> None:
    at = "--now", T0.isoformat()
    code, page, _ = cli(capsys, "page", "--severity", "2", "--title", "Acme: wrong totals", "--key", "acme",
                        "--role", "founder-backup", "--by", "giles", *at)
    assert code == 0 and page["reason"] == "OPENED" and page["incident"]["owner"] == "founder-backup"
    incident_id = page["incident"]["id"]
    code, again, _ = cli(capsys, "page", "--severity", "2", "--title", "Acme: still wrong", "--key", "acme",
                         "--by", "giles", "--now", (T0 + timedelta(minutes=1)).isoformat())
    assert again["reason"] == "ALREADY_OPEN" and again["incident"]["id"] == incident_id
    later = "--now", (T0 + timedelta(minutes=2)).isoformat()
    steps = [("snooze", incident_id, "--until", (T0 + timedelta(hours=1)).isoformat(), "SNOOZED"),
             ("escalate-now", incident_id, "ESCALATED"),
             ("reassign", incident_id, "--to", "christian", "REASSIGNED"),
             ("reassign", incident_id, "--to", "christian", "ALREADY_OWNER"),
             ("severity", incident_id, "--to", "1", "SEVERITY_CHANGED")]
    for *argv, reason in steps:
        code, result, err = cli(capsys, *argv, "--by", "christian", *later)
        assert code == 0 and result["reason"] == reason, (argv, err)
    timeline = [(e["by"], e["what"].split(":")[0].split(";")[0]) for e in result["incident"]["timeline"]
                if e["by"] == "christian"]
    assert [what for _, what in timeline] == ["snoozed until 2025-03-14T15", "escalation asked by christian",
                                              "reassigned founder-backup → christian by christian",
                                              "severity changed SEV2 → SEV1 by christian"]
    for argv, message in ((("snooze", incident_id, "--until", "2025-03-14T10:00:00Z"), "before now"),
                          (("reassign", incident_id, "--to", "mallory"), "to: must name"),
                          (("severity", incident_id, "--to", "0"), "severity: must be"),
                          (("escalate-now", "inc-nope"), "no incident inc-nope"),
                          (("page", "--severity", "9", "--title", "x"), "severity: must be")):
        code, _, err = cli(capsys, *argv, "--by", "christian", *later)
        assert code == 1 and message in err and err.count("\n") == 1, (argv, err)
