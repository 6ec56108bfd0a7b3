"""After the incident: post-mortem drafts, communication duties, the monthly report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.cli import main
from chalicelib.handlers import on_event
from chalicelib.models import Incident, IncidentStatus, PageKind, Severity, SignalKind
from chalicelib.reports.postmortem import SECTIONS, draft, section
from chalicelib.reports.report import monthly_stats, write_monthly
from chalicelib.settings import Settings
from chalicelib.store.sqlite import SqliteStore
from chalicelib.web.tokens import Role
from chalicelib.wiring import Deps, build_deps, override_deps
from tests.conftest import CONFIG, FakeClock, RecordingChannel, config_with_channels, load_event

T = datetime(2025, 3, 14, 14, 0, tzinfo=UTC)  # Friday 10:00 in New York
PEOPLE = ("giles", "christian", "engineer-on-call", "engineer-daytime", "jdoe", "Jane")


@pytest.fixture
def recorders() -> dict[str, RecordingChannel]:
    return {"console": RecordingChannel(), "slack-founders": RecordingChannel()}


@pytest.fixture
def deps(tmp_path: Path, recorders: dict[str, RecordingChannel]) -> Iterator[Deps]:
    config_with_channels(tmp_path, "  slack-founders:\n    type: slack\n    webhook_url_env: SLACK_FOUNDERS\n",
                         prefix="communications:\n  founder_channel: slack-founders\n")
    settings = Settings.from_env({"RESPONDER_CONFIG_DIR": str(tmp_path), "SLACK_FOUNDERS": "https://hooks.example/x",
                                  "RESPONDER_AUDIT": f"file://{tmp_path}/audit.jsonl"})
    built = build_deps(settings, clock=FakeClock(T), store=SqliteStore(tmp_path / "s.db"),
                       channels={name: (lambda ch=ch: ch) for name, ch in recorders.items()})
    override_deps(built)
    yield built
    override_deps(None)


def sev1_through_resolution(deps: Deps) -> str:
    clock = deps.clock
    assert isinstance(clock, FakeClock)
    outcome = on_event(load_event("eventbridge-cloudtrail-s3-putobjectretention.json"), "eventbridge", deps)
    incident_id = str(outcome["outcomes"][0]["incident_id"])
    clock.advance(minutes=5)
    deps.pipeline.sweep()  # founder-backup paged
    clock.advance(minutes=2)
    deps.pipeline.acknowledge(incident_id, "christian")
    deps.pipeline.add_note(incident_id, "christian", "retention change came from an admin session")
    clock.advance(minutes=40)
    deps.pipeline.resolve(incident_id, "christian", note="lock configuration confirmed unchanged")
    return incident_id


def test_draft_lists_the_response_with_times_and_names_nobody_under_lessons(deps: Deps) -> None:
    incident_id = sev1_through_resolution(deps)
    markdown = draft(deps.store.get(incident_id), deps.config, deps.clock())
    headings = [line[3:] for line in markdown.splitlines() if line.startswith("## ")]
    assert headings == list(SECTIONS)
    response = section(markdown, "Response")
    for expected in (
            "| 2025-03-14 10:00 EDT | trigger page to giles (founder-primary) on console: sent |",
            "| 2025-03-14 10:05 EDT | escalation page to christian (founder-backup) on console: sent |",
            "| 2025-03-14 10:07 EDT | acknowledged by christian |",
            "| 2025-03-14 10:07 EDT | note: retention change came from an admin session (christian) |",
            "| 2025-03-14 10:00 EDT | playbook object-lock-alarm (dry run): 4 steps planned |",
            "no remediation: Object Lock (COMPLIANCE, 7 years) blocks the change",
            "- Acknowledged 2025-03-14 10:07 EDT by christian, 7 min after opening (within the 15-minute target)",
            "- Playbook object-lock-alarm: dry run: 4 steps"):
        assert expected in response, expected
    # delivery receipts of informing pages are the outbox's business, not the response's
    assert "founders-channel" not in response and "acknowledge page to" not in response
    assert "resolve page to" not in response and "UTC" not in markdown
    assert "| Time (America/New_York) | What |" in response
    assert "- Service: S3 bucket backup-vault-prod" in section(markdown, "Impact")
    lessons = section(markdown, "Lessons")
    assert lessons.strip() and not [name for name in PEOPLE if name.lower() in lessons.lower()]
    assert "| Action | Owner | Due date |" in section(markdown, "Action items")
    assert "Duration: 47 min" in section(markdown, "Incident date")
    assert "- Resolved 2025-03-14 10:47 EDT (christian)" in section(markdown, "Resolution")


def test_postmortem_through_cli_and_api(deps: Deps, capsys: Any, tmp_path: Path) -> None:
    incident_id = sev1_through_resolution(deps)
    token = deps.tokens.create("viewer", Role.VIEWER)[1]
    with Client(app_module.app, stage_name="dev") as client:
        response = client.http.get(f"/incidents/{incident_id}/postmortem", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/markdown")
    body = response.body.decode()
    assert body.startswith("# Post-mortem: PutObjectRetention on backup-vault-prod")
    assert "| 2025-03-14 10:07 EDT | acknowledged by christian |" in body and "founders-channel" not in body
    capsys.readouterr()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RESPONDER_STORE", f"sqlite:///{tmp_path}/s.db")
        env.setenv("RESPONDER_CONFIG_DIR", str(tmp_path))
        env.setenv("SLACK_FOUNDERS", "https://hooks.example/x")
        assert main(["postmortem", incident_id, "--now", "2025-03-14T15:00:00Z"]) == 0
    printed = capsys.readouterr().out
    assert "- Service: S3 bucket backup-vault-prod" in printed and "generated 2025-03-14 11:00 EDT" in printed


def test_postmortem_is_due_in_24h_and_an_overdue_draft_is_reminded_once(
        deps: Deps, recorders: dict[str, RecordingChannel]) -> None:
    incident_id = sev1_through_resolution(deps)
    [duty] = [d for d in deps.store.get(incident_id).duties if d.kind == "postmortem"]
    assert duty.due_at == T + timedelta(minutes=47, hours=24)
    clock = deps.clock
    assert isinstance(clock, FakeClock)
    before = len(recorders["console"].sent)
    clock.now = duty.due_at - timedelta(minutes=1)
    deps.pipeline.sweep()
    assert len(recorders["console"].sent) == before
    clock.now = datetime(2025, 3, 17, 13, 0, tzinfo=UTC)  # due on Saturday: reminded Monday 09:00 New York
    for _ in range(3):
        deps.pipeline.sweep()
        clock.advance(minutes=5)
    reminders = [p for p in recorders["console"].sent if p.kind is PageKind.REMINDER]
    assert [(p.person, p.role) for p in reminders] == [("engineer-daytime", "engineering-daytime")]
    assert "POST-MORTEM OVERDUE" in reminders[0].text


def test_overdue_reminder_waits_for_business_hours_and_done_stops_it(deps: Deps,
                                                                     recorders: dict[str, RecordingChannel]) -> None:
    incident_id = sev1_through_resolution(deps)
    clock = deps.clock
    assert isinstance(clock, FakeClock)
    clock.now = datetime(2025, 3, 15, 20, 0, tzinfo=UTC)  # Saturday: overdue, nobody on the daytime role
    deps.pipeline.sweep()
    assert not [p for p in recorders["console"].sent if p.kind is PageKind.REMINDER]
    assert deps.store.get(incident_id).next_action_at == datetime(2025, 3, 17, 13, 0, tzinfo=UTC)  # Mon 09:00 EDT
    deps.pipeline.complete_duty(incident_id, "postmortem", "christian")
    clock.now = datetime(2025, 3, 17, 13, 30, tzinfo=UTC)
    deps.pipeline.sweep()
    assert not [p for p in recorders["console"].sent if p.kind is PageKind.REMINDER]


def test_founders_channel_hears_open_ack_and_resolve_of_sev1_only(deps: Deps,
                                                                   recorders: dict[str, RecordingChannel]) -> None:
    from tests.conftest import new_id, sns_event

    sev1_through_resolution(deps)
    updates = [p.text.split(" ")[1] for p in recorders["slack-founders"].sent]
    assert updates == ["OPENED", "ACKNOWLEDGED", "RESOLVED"]
    on_event(sns_event("sns-cloudwatch-alarm-metric.json", message_id=new_id(), Trigger={"MetricName": "CPUUtilization", "Namespace": "AWS/EC2", "Dimensions": []}), "sns", deps)  # a Sev3
    assert len(recorders["slack-founders"].sent) == 3


def test_phi_exposure_starts_the_breach_clock_shown_in_api_and_report(deps: Deps, tmp_path: Path) -> None:
    from tests.conftest import new_id, sns_event

    outcome = on_event(sns_event("sns-cloudwatch-alarm-metric.json", message_id=new_id()), "sns", deps)
    incident_id = outcome["outcomes"][0]["incident_id"]
    token = deps.tokens.create("dana", Role.RESPONDER)[1]
    with Client(app_module.app, stage_name="dev") as client:
        marked = client.http.post(f"/incidents/{incident_id}/phi-exposure", body=b"",
                                  headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    body = marked.json_body
    assert marked.status_code == 200 and body["phi_exposure_suspected"] is True and body["severity"] == 1
    breach = [d for d in body["duties"] if d["kind"] == "breach_notification"]
    assert breach and breach[0]["due_at"].startswith((T + timedelta(days=60)).date().isoformat())
    assert any(p["person"] == "giles" for p in body["pages"])  # now Sev1: the founder is paged
    path = write_monthly(deps.store.list(), "2025-03", tmp_path / "report", deps.config, deps.clock())
    text = path.read_text()
    assert f"| {(T + timedelta(days=60)):%Y-%m-%d %H:%M} | breach notification | {incident_id} SEV1" in text


def incident(n: int, severity: Severity, opened: datetime, ack_min: float | None, resolve_min: float | None,
             kind: SignalKind = SignalKind.ALARM, playbook: str | None = None, outcome: str | None = None) -> Incident:
    return Incident(
        id=f"inc-{n}", key=f"k{n}", kind=kind, title=f"incident {n}", severity=severity, owner="x",
        playbook=playbook, playbook_outcome=outcome, rule="r", opened_at=opened, last_seen=opened,
        status=IncidentStatus.RESOLVED if resolve_min is not None else IncidentStatus.OPEN,
        acknowledged_at=opened + timedelta(minutes=ack_min) if ack_min is not None else None,
        resolved_at=opened + timedelta(minutes=resolve_min) if resolve_min is not None else None)


KNOWN_MONTH = [
    incident(1, Severity.SEV1, datetime(2025, 3, 2, 10, tzinfo=UTC), 6, 60, SignalKind.CLOUDTRAIL,
             "object-lock-alarm", "live: 3 steps"),
    incident(2, Severity.SEV1, datetime(2025, 3, 10, 2, tzinfo=UTC), 20, 120, SignalKind.ALARM, "auth-outage",
             "live: 2 steps, escalated"),
    incident(3, Severity.SEV2, datetime(2025, 3, 15, 9, tzinfo=UTC), 30, 90, SignalKind.ECS_DEPLOYMENT,
             "deploy-rollback", "failed: ecs.describe_services: AccessDenied"),
    incident(4, Severity.SEV3, datetime(2025, 3, 20, 9, tzinfo=UTC), None, 600),
    incident(5, Severity.SEV4, datetime(2025, 3, 31, 23, 59, tzinfo=UTC), None, None, SignalKind.CLOUDTRAIL),
    incident(6, Severity.SEV2, datetime(2025, 2, 28, 23, tzinfo=UTC), 5, 10),  # February: not counted
    incident(7, Severity.SEV1, datetime(2025, 4, 1, 0, tzinfo=UTC), 5, 10),    # April: not counted
]


def test_monthly_stats_for_a_known_month() -> None:
    stats = monthly_stats(KNOWN_MONTH, "2025-03", CONFIG)
    assert stats.total == 5
    sev = stats.by_severity
    assert (sev[1].count, sev[1].mtta_minutes, sev[1].mttr_minutes, sev[1].acked_within_target) == (2, 13.0, 90.0, 1)
    assert (sev[2].count, sev[2].mtta_minutes, sev[2].mttr_minutes, sev[2].target_minutes) == (1, 30.0, 90.0, 120)
    assert (sev[3].count, sev[3].mtta_minutes, sev[3].mttr_minutes) == (1, None, 600.0)
    assert (sev[4].count, sev[4].resolved) == (1, 0)
    assert stats.by_kind == {"alarm": 2, "cloudtrail": 2, "ecs_deployment": 1}
    assert {k: dict(v) for k, v in stats.playbooks.items()} == {
        "object-lock-alarm": {"live": 1}, "auth-outage": {"live": 1}, "deploy-rollback": {"failed": 1}}
    assert [i.id for i in stats.major] == ["inc-1", "inc-2", "inc-3"]


def test_monthly_report_writes_markdown_and_a_png_that_opens(tmp_path: Path, capsys: Any,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    store = SqliteStore(tmp_path / "report.db")
    for item in KNOWN_MONTH:
        store.create(item)
    monkeypatch.setenv("RESPONDER_STORE", f"sqlite:///{tmp_path}/report.db")
    assert main(["report", "monthly", "--month", "2025-03", "--out", str(tmp_path / "out"),
                 "--now", "2025-04-01T09:00:00Z"]) == 0
    report = Path(capsys.readouterr().out.strip())
    text = report.read_text()
    assert "**4 incidents** opened this month (2 Sev1, 1 Sev2, 1 Sev3). Sev4 (cosmetic): 1, in the table only." in text
    # median | worst | n for MTTA, then acked in target, then median | worst | n for MTTR
    assert "| SEV1 | 2 | 15 | 13 | 20 | 2 | 1/2 | 90 | 120 | 2 |" in text
    assert "| SEV2 | 1 | 120 | 30 | 30 | 1 | 1/1 | 90 | 90 | 1 |" in text
    assert "| SEV4 | 1 | next sprint | - | - | 0 | 0/0 | - | - | 0 |" in text
    assert "![incidents-2025-03.png](incidents-2025-03.png)" in text
    assert "- **SEV1** 2025-03-02 10:00 UTC — Incident 1; acknowledged after 6 min; duration 1 h" in text
    import matplotlib.image

    image = matplotlib.image.imread(tmp_path / "out" / "incidents-2025-03.png")
    assert image.shape[0] > 100 and image.shape[1] > 300
    assert json.dumps(text).count("PHI") == 0
