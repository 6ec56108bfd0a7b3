"""Heartbeats (issue 13 §4): the decision, the config, ``POST /heartbeats/{name}`` (token or signed
URL), the sweep that pages a missed one and the beat that resolves it, the canary watching the sweep,
the CLI; through chalice.test.Client on both stores."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client
from pydantic import ValidationError

from chalicelib import handlers, heartbeats
from chalicelib.canary import run_canary
from chalicelib.cli import main
from chalicelib.config.routing import Heartbeat, RoutingConfig
from chalicelib.decisions.heartbeats import Reason, heartbeat_state
from chalicelib.models import PageKind, Severity
from chalicelib.web.tokens import Role
from chalicelib.wiring import Deps
from tests.conftest import CONFIG, T0, FakeClock, RecordingChannel, app_on
from tests.test_operations import cli, cli_store, paged  # noqa: F401 (cli_store: a fixture)

BACKUP = CONFIG.routing.heartbeats["nightly-backup"]  # every 1440 min + 120 grace, Sev2
MISSED_AFTER = timedelta(minutes=BACKUP.every_minutes + BACKUP.grace_minutes)


# --- the decision --------------------------------------------------------------------------------


@pytest.mark.parametrize("beat_ago, watched_ago, expected", [
    (0, None, Reason.OK), (59, None, Reason.OK), (60, None, Reason.LATE), (89, None, Reason.LATE),
    (90, None, Reason.MISSED), (None, None, Reason.NEVER_SEEN), (None, 89, Reason.NEVER_SEEN),
    (None, 90, Reason.NEVER_ARRIVED)])
def test_heartbeat_state_at_its_edges(beat_ago: int | None, watched_ago: int | None, expected: Reason) -> None:
    config = Heartbeat(every_minutes=60, grace_minutes=30, severity=Severity.SEV3)
    ago = lambda minutes: None if minutes is None else T0 - timedelta(minutes=minutes)  # noqa: E731
    assert heartbeat_state(config, ago(beat_ago), T0, ago(watched_ago)) is expected


# --- the config ----------------------------------------------------------------------------------


def test_the_four_heartbeats_of_the_issue_are_shipped() -> None:
    assert set(CONFIG.routing.heartbeats) == {"reverify-scheduler", "nightly-backup", "restore-test",
                                              "escalation-sweep"}
    assert BACKUP.severity is Severity.SEV2


@pytest.mark.parametrize("heartbeats, problem", [
    ({"backup": {"every_minutes": 60, "grace_minutes": 5, "severity": 2, "owner": "x"}}, "owner"),
    ({"backup": {"every_minutes": 0, "grace_minutes": 5, "severity": 2}}, "every_minutes"),
    ({"backup": {"every_minutes": 60, "severity": 2}}, "grace_minutes"),
    ({"backup": {"every_minutes": 60, "grace_minutes": 5, "severity": "SEV9"}}, "severity"),
    ({"Back Up!": {"every_minutes": 60, "grace_minutes": 5, "severity": 2}}, "Back Up!")])
def test_a_bad_heartbeat_is_refused_at_load_naming_the_field(heartbeats: dict[str, Any], problem: str) -> None:
    base = CONFIG.routing.model_dump(mode="json", exclude={"heartbeats"})
    with pytest.raises(ValidationError) as refused:
        RoutingConfig.model_validate({**base, "heartbeats": heartbeats})
    assert problem in str(refused.value)


# --- through the app, on both stores --------------------------------------------------------------


@pytest.fixture(params=["sqlite", "dynamodb"])
def env(request: Any, tmp_path: Path, clock: FakeClock, console: RecordingChannel) -> Iterator[tuple[Client, Deps]]:
    yield from app_on(request.param, tmp_path, clock, console)


def beat(http: Client, name: str, token: str | None = None, sig: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return http.http.post(f"/heartbeats/{name}" + (f"?sig={sig}" if sig else ""), headers=headers, body=b"")


def sweep_at(deps: Deps, clock: FakeClock, at: timedelta) -> dict[str, Any]:
    clock.now = T0 + at
    return handlers.sweep(deps)


def test_a_heartbeat_that_stops_pages_within_interval_and_grace_and_the_next_beat_resolves_it(
        env: tuple[Client, Deps], clock: FakeClock, console: RecordingChannel) -> None:
    http, deps = env
    token = deps.tokens.create("backup-job", Role.RESPONDER)[1]
    answer = beat(http, "nightly-backup", token=token)
    assert answer.status_code == 200 and answer.json_body["state"] == "OK", answer.json_body
    assert answer.json_body["last_beat"] == T0.isoformat()
    assert sweep_at(deps, clock, MISSED_AFTER - timedelta(minutes=1)).get("heartbeats", {}).get("nightly-backup") == "LATE"
    assert deps.store.get_open("heartbeat:nightly-backup") is None and paged(console) == []
    report = sweep_at(deps, clock, MISSED_AFTER)
    assert report.get("heartbeats", {}).get("nightly-backup") == "MISSED"
    incident = deps.store.get_open("heartbeat:nightly-backup")
    assert incident is not None and incident.kind == "heartbeat" and incident.severity is Severity.SEV2
    assert incident.title == f"heartbeat nightly-backup missed: no beat since {T0.isoformat()}"
    assert paged(console) == [("engineer-on-call", PageKind.TRIGGER)]  # the Sev2 chain's first step
    for minutes in (1, 2, 3):  # later sweeps: the same incident, not another one
        sweep_at(deps, clock, MISSED_AFTER + timedelta(minutes=minutes))
    assert [i.id for i in deps.store.list()] == [incident.id] and deps.store.get(incident.id).count == 1
    clock.now = T0 + MISSED_AFTER + timedelta(minutes=5)
    back = beat(http, "nightly-backup", sig=heartbeats.signature(deps.links, "nightly-backup"))
    assert back.status_code == 200 and back.json_body["resolved_incident"] == incident.id, back.json_body
    resolved = deps.store.get(incident.id)
    assert resolved.status.value == "resolved" and deps.store.get_open("heartbeat:nightly-backup") is None
    assert ("engineer-on-call", PageKind.RESOLVE) in [(p.person, p.kind) for p in console.sent]
    assert "heartbeats" not in sweep_at(deps, clock, MISSED_AFTER + timedelta(minutes=6))
    assert len(deps.store.list()) == 1


def test_a_heartbeat_that_never_arrives_pages_once_its_first_interval_and_grace_are_over(
        env: tuple[Client, Deps], clock: FakeClock, console: RecordingChannel) -> None:
    _, deps = env
    assert sweep_at(deps, clock, timedelta(0)).get("heartbeats", {}).get("nightly-backup") is None  # NEVER_SEEN
    assert sweep_at(deps, clock, MISSED_AFTER).get("heartbeats", {}).get("nightly-backup") == "NEVER_ARRIVED"
    incident = deps.store.get_open("heartbeat:nightly-backup")
    assert incident is not None and "never arrived" in incident.title
    assert paged(console) == [("engineer-on-call", PageKind.TRIGGER)]


@pytest.mark.parametrize("name, auth, status, field", [
    ("no-such-job", "responder", 404, "name"),
    ("nightly-backup", "viewer", 403, None),
    ("nightly-backup", "none", 401, "sig"),
    ("nightly-backup", "forged", 401, "sig"),
    ("nightly-backup", "other-heartbeat's", 401, "sig"),
    ("nightly-backup", "revoked", 401, "Authorization")])
def test_a_beat_is_refused_without_a_valid_token_or_signature(env: tuple[Client, Deps], name: str, auth: str,
                                                               status: int, field: str | None) -> None:
    http, deps = env
    token_id, token = deps.tokens.create("someone", Role.VIEWER if auth == "viewer" else Role.RESPONDER)
    if auth == "revoked":
        deps.tokens.revoke(token_id)
    sig = {"forged": "A" * 43, "other-heartbeat's": heartbeats.signature(deps.links, "restore-test")}.get(auth)
    answer = beat(http, name, token=token if auth in ("responder", "viewer", "revoked") else None, sig=sig)
    assert answer.status_code == status, answer.json_body
    assert answer.json_body.get("field") == field
    if status == 404:
        assert "no-such-job" in answer.json_body["message"]
    assert deps.store.get_doc("heartbeat:nightly-backup") == (None, 0)  # nothing stored


def test_an_unknown_parameter_is_refused(env: tuple[Client, Deps]) -> None:
    http, _ = env
    answer = http.http.post("/heartbeats/nightly-backup?sig=x&token=y", body=b"")
    assert answer.status_code == 400 and answer.json_body["field"] == "token"


def test_get_heartbeats_lists_each_with_its_last_beat_and_state(env: tuple[Client, Deps], clock: FakeClock) -> None:
    http, deps = env
    heartbeats.Heartbeats(deps.pipeline).beat("restore-test", "cron", T0)
    clock.advance(minutes=5)
    token = deps.tokens.create("reader", Role.VIEWER)[1]
    listing = http.http.get("/heartbeats", headers={"Authorization": f"Bearer {token}"}).json_body["heartbeats"]
    by_name = {item["name"]: item for item in listing}
    assert by_name["restore-test"]["last_beat"] == T0.isoformat() and by_name["restore-test"]["state"] == "OK"
    assert by_name["nightly-backup"] == {"name": "nightly-backup", "every_minutes": 1440, "grace_minutes": 120,
                                         "severity": 2, "last_beat": None, "state": "NEVER_SEEN"}


# --- who watches the sweep -------------------------------------------------------------------------


class Metrics:
    def __init__(self) -> None:
        self.names: list[str] = []

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.names.append(name)

    def flush_metrics(self) -> None:
        pass


def test_the_sweep_beats_its_own_heartbeat_and_the_canary_fails_when_it_stops(
        env: tuple[Client, Deps], clock: FakeClock) -> None:
    _, deps = env
    sweep_at(deps, clock, timedelta(0))
    assert heartbeats.Heartbeats(deps.pipeline).status("escalation-sweep", T0)["last_beat"] == T0.isoformat()
    metrics = Metrics()
    assert run_canary(deps, T0 + timedelta(minutes=9), metrics)["canary"] == "ok"
    assert metrics.names == ["CanaryCompleted", "CanaryMilliseconds"]
    stopped = Metrics()
    with pytest.raises(RuntimeError, match="escalation sweep's heartbeat is MISSED"):
        run_canary(deps, T0 + timedelta(minutes=10), stopped)
    assert stopped.names == []  # no CanaryCompleted: the out-of-band CanaryStoppedAlarm fires
    sweep_at(deps, clock, timedelta(minutes=10))  # the sweep is back: so is the canary
    assert run_canary(deps, T0 + timedelta(minutes=11), Metrics())["canary"] == "ok"
    assert deps.store.get_open("heartbeat:escalation-sweep") is None  # the canary pages out of band, not us


def test_the_canary_alarm_is_out_of_band_and_treats_silence_as_breaching() -> None:
    template = json.loads((Path(__file__).resolve().parent.parent / ".chalice" / "merge-template.json").read_text())
    alarm = template["Resources"]["CanaryStoppedAlarm"]["Properties"]
    assert alarm["MetricName"] == "CanaryCompleted" and alarm["TreatMissingData"] == "breaching"
    assert alarm["AlarmActions"] == [{"Ref": "OutOfBandTopic"}]


# --- the CLI -------------------------------------------------------------------------------------


def test_the_cli_beats_and_lists_heartbeats(cli_store: None, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    code, result, err = cli(capsys, "heartbeat", "nightly-backup", "--now", T0.isoformat())
    assert code == 0 and result["last_beat"] == T0.isoformat() and result["state"] == "OK", err
    later = (T0 + MISSED_AFTER).isoformat()
    assert main(["escalate", "--now", later]) == 0  # the CLI's sweep checks heartbeats too
    assert "nightly-backup" in capsys.readouterr().out
    assert main(["heartbeats", "--json", "--urls", "--now", later]) == 0
    listing = json.loads(capsys.readouterr().out)
    by_name = {item["name"]: item for item in listing}
    assert by_name["nightly-backup"]["state"] == "MISSED" and "?sig=" in by_name["nightly-backup"]["url"]
    assert by_name["escalation-sweep"]["state"] == "OK"  # the sweep beat it
    code, result, err = cli(capsys, "heartbeat", "nightly-backup", "--now", later)
    assert code == 0 and result["state"] == "OK" and result["resolved_incident"], err
    code, _, err = cli(capsys, "heartbeat", "no-such-job", "--now", later)
    assert code == 1 and "no heartbeat 'no-such-job'" in err and err.count("\n") == 1


# --- reading less: a document is read again only once it may say something new -----------------

@pytest.mark.parametrize("beat_ago, watched_ago, quiet_for", [
    (0, None, 60), (59, None, 1),            # OK: until its interval ends (later beats only move it on)
    (None, 0, 60), (None, 80, 10),           # not seen yet: an interval after the read, or its deadline
    (60, None, 0), (None, 90, 0), (95, None, 0)])  # late, never arrived, missed: read every time
def test_a_heartbeat_document_stays_true_until_it_may_say_something_new(
        beat_ago: int | None, watched_ago: int | None, quiet_for: int) -> None:
    from chalicelib.decisions.heartbeats import quiet_until

    config = Heartbeat(every_minutes=60, grace_minutes=30, severity=Severity.SEV3)
    beat_at, watched_at = (None if ago is None else T0 - timedelta(minutes=ago) for ago in (beat_ago, watched_ago))
    assert quiet_until(config, beat_at, watched_at, T0) == T0 + timedelta(minutes=quiet_for)


def test_a_sweep_rereads_a_heartbeat_only_when_it_could_matter_and_sees_another_workers_beat(
        tmp_path: Path, clock: FakeClock, console: RecordingChannel) -> None:
    """Two Lambdas on one store: the sweeping one caches what it read; a job beats through the other.
    The sweep sees the beat before it could page wrongly, and pages when that beat is missed."""
    from chalicelib.store.sqlite import SqliteStore
    from tests.conftest import make_deps

    class Counting(SqliteStore):
        reads: list[str] = []

        def get_doc(self, key: str) -> tuple[dict[str, Any] | None, int]:
            self.reads.append(key)
            return super().get_doc(key)

    sweeper = make_deps(Counting(str(tmp_path / "s.db")), clock, console)
    other = make_deps(SqliteStore(str(tmp_path / "s.db")), clock, RecordingChannel())
    backup = "heartbeat:nightly-backup"
    assert "nightly-backup" not in sweep_at(sweeper, clock, timedelta(0)).get("heartbeats", {})  # NEVER_SEEN
    clock.now = T0 + timedelta(minutes=10)
    heartbeats.Heartbeats(other.pipeline).beat("nightly-backup", "backup-job", clock.now)
    Counting.reads.clear()
    for minutes in (11, 600, BACKUP.every_minutes - 1):
        assert "nightly-backup" not in sweep_at(sweeper, clock, timedelta(minutes=minutes)).get("heartbeats", {})
    assert backup not in Counting.reads and "heartbeat:escalation-sweep" not in Counting.reads  # its own: written
    # its first deadline (never arrived, as first read) has passed: the beat is seen, and only late
    assert sweep_at(sweeper, clock, MISSED_AFTER)["heartbeats"]["nightly-backup"] == "LATE"
    assert Counting.reads.count(backup) == 1 and paged(console) == []
    report = sweep_at(sweeper, clock, MISSED_AFTER + timedelta(minutes=10))
    assert report["heartbeats"]["nightly-backup"] == "MISSED" and paged(console) == [("engineer-on-call",
                                                                                     PageKind.TRIGGER)]
