"""``python -m chalicelib``: simulate, replay, incidents, ack, resolve."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chalicelib.cli import main
from tests.conftest import EVENTS_DIR, ROOT, load_event

NOW = "2025-03-14T14:43:00+00:00"  # Friday 10:43 in New York


@pytest.fixture(autouse=True)
def store_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    db = tmp_path / "cli.db"
    monkeypatch.setenv("RESPONDER_STORE", f"sqlite:///{db}")
    monkeypatch.delenv("SENTRY_CLIENT_SECRET", raising=False)
    return db


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def event(name: str) -> str:
    return str(EVENTS_DIR / name)


def api_gateway_request(tmp_path: Path, vector: dict[str, Any], body: str | None = None) -> str:
    request = {"resource": "/webhooks/sentry", "path": "/webhooks/sentry", "httpMethod": "POST",
               "headers": vector["headers"], "body": body or vector["rawBody"], "isBase64Encoded": False}
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request))
    return str(path)


def test_simulate_prints_the_plan_and_changes_nothing(capsys: Any, store_env: Path) -> None:
    code, out, _ = run(capsys, "simulate", event("ecs-deployment-failed.json"), "--now", NOW)
    plan = json.loads(out)
    assert code == 0
    assert (plan["severity"], plan["playbook"], plan["owner"], plan["transition"]) == (
        2, "deploy-rollback", "engineering-oncall", "trigger")
    assert plan["incident_key"] == "ecs-service:arn:aws:ecs:us-east-1:123456789012:service/prod-cluster/checkout-api"
    assert [p["role"] for p in plan["pages"]] == ["engineering-oncall"]
    # on a laptop the playbook cannot read ECS: the plan says so instead of guessing
    assert plan["playbook_steps"] == [{"type": "error", "text": "the playbook could not plan: ecs: no client configured"}]
    assert not store_env.exists()


def test_simulate_resolve_reports_classification(capsys: Any) -> None:
    _, out, _ = run(capsys, "simulate", event("ecs-deployment-completed.json"))
    plan = json.loads(out)
    assert (plan["transition"], plan["severity"], plan["playbook"], plan["pages"]) == (
        "resolve", 2, "deploy-rollback", [])


def test_simulate_webhook_request_checks_signature(capsys: Any, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    vector = load_event("sentry-signature-test-vector.json")
    monkeypatch.setenv("SENTRY_CLIENT_SECRET", vector["clientSecret"])
    _, out, _ = run(capsys, "simulate", api_gateway_request(tmp_path, vector))
    plan = json.loads(out)
    assert plan["webhook"]["signature"] == "valid" and plan["kind"] == "sentry_issue" and plan["severity"] == 3
    _, out, _ = run(capsys, "simulate", api_gateway_request(tmp_path, vector, vector["rawBody"].replace("error", "fatal")))
    assert json.loads(out)["webhook"]["signature"].startswith("invalid")


def test_replay_runs_the_pipeline_and_incidents_lists_it(capsys: Any) -> None:
    code, out, err = run(capsys, "replay", event("sns-cloudwatch-alarm-metric.json"),
                         event("sns-cloudwatch-alarm-metric.json"), "--now", NOW)
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [x["reason"] for x in lines] == ["OPENED", "DUPLICATE"]
    assert "PAGE trigger" in err
    _, out, _ = run(capsys, "incidents", "--json")
    [incident] = json.loads(out)
    assert {"id", "key", "severity", "status", "owner", "playbook", "opened_at", "pages", "timeline"} <= set(incident)
    assert incident["opened_at"].startswith("2025-03-14T14:43:00")
    page = incident["pages"][0]
    assert {"role", "channel", "kind", "at", "text"} <= set(page) and page["kind"] == "trigger"


def test_replay_ndjson_from_stdin(capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    lines = "\n".join(json.dumps(load_event(n)) for n in ("ecs-deployment-failed.json", "ecs-deployment-completed.json"))
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines + "\n"))
    code, out, err = run(capsys, "replay", "-")
    assert code == 0 and [json.loads(x)["reason"] for x in out.splitlines()] == ["OPENED", "RESOLVED"]
    assert "PAGE resolve" in err


def test_replay_webhook_goes_through_the_route_and_its_signature_check(
        capsys: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vector = load_event("sentry-signature-test-vector.json")
    monkeypatch.setenv("SENTRY_CLIENT_SECRET", vector["clientSecret"])
    forged = api_gateway_request(tmp_path, vector, vector["rawBody"].replace("error", "fatal"))
    _, out, _ = run(capsys, "replay", forged)
    assert json.loads(out)["status"] == 401
    _, out, _ = run(capsys, "incidents", "--json")
    assert json.loads(out) == []
    _, out, _ = run(capsys, "replay", api_gateway_request(tmp_path, vector))
    assert json.loads(out)["status"] == 200 and json.loads(out)["reason"] == "OPENED"


def test_ack_and_resolve(capsys: Any) -> None:
    run(capsys, "replay", event("eventbridge-cloudtrail-s3-putobjectlegalhold.json"), "--now", NOW)
    _, out, _ = run(capsys, "incidents", "--json")
    incident_id = json.loads(out)[0]["id"]
    code, out, _ = run(capsys, "ack", incident_id, "--by", "giles", "--now", "2025-03-14T14:50:00Z")
    acked = json.loads(out)
    assert code == 0 and acked["status"] == "acknowledged" and acked["acknowledged_by"] == "giles"
    assert acked["acknowledged_at"].startswith("2025-03-14T14:50:00")
    assert acked["time_to_acknowledge_seconds"] == 7 * 60
    _, out, _ = run(capsys, "ack", incident_id, "--by", "christian")
    assert json.loads(out)["acknowledged_by"] == "giles"  # idempotent
    code, out, err = run(capsys, "resolve", incident_id, "--by", "giles", "--now", "2025-03-14T15:10:00Z")
    resolved = json.loads(out)
    assert code == 0 and resolved["status"] == "resolved" and resolved["resolved_by"] == "giles"
    assert "PAGE resolve → giles" in err
    assert [p["kind"] for p in resolved["pages"]] == ["trigger", "acknowledge", "resolve"]  # giles stood down, then resolved
    code, _, err = run(capsys, "ack", incident_id, "--by", "giles")
    assert code == 1 and err == f"error: incident {incident_id} is resolved; nothing to acknowledge\n"


def test_unknown_incident_is_one_line(capsys: Any) -> None:
    code, _, err = run(capsys, "ack", "inc-nope", "--by", "x")
    assert code == 1 and err == "error: no incident inc-nope\n"


@pytest.mark.parametrize("content", [None, "not json {"])
def test_unreadable_file_exits_nonzero_with_one_line(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "broken.json"
    if content is not None:
        path.write_text(content)
    result = subprocess.run([sys.executable, "-m", "chalicelib", "replay", str(path)], cwd=ROOT,
                            capture_output=True, text=True, env={"RESPONDER_STORE": f"sqlite:///{tmp_path}/s.db",
                                                                  "PATH": "/usr/bin:/bin"})
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert str(path) in result.stderr and result.stdout == ""


def test_oncall_at_a_moment(capsys: Any) -> None:
    code, out, _ = run(capsys, "oncall", "--at", "2025-03-14T03:00:00-04:00", "--json")
    report = json.loads(out)
    assert code == 0 and report["business_hours"] is False
    assert report["roles"]["founder-primary"] == ["giles"] and report["roles"]["engineering-daytime"] == []
    _, out, _ = run(capsys, "oncall", "--at", "2025-03-14T10:00:00-04:00")
    assert "engineering-daytime    engineer-daytime" in out and "(business hours)" in out


def test_escalate_replays_a_night_in_seconds(capsys: Any) -> None:
    run(capsys, "replay", event("eventbridge-cloudtrail-s3-putobjectlegalhold.json"), "--now", "2025-03-14T07:00:00Z")
    pages = []
    for minute in range(0, 12):
        code, out, err = run(capsys, "escalate", "--now", f"2025-03-14T07:{minute:02d}:30Z")
        assert code == 0 and json.loads(out)["incidents"] in (0, 1)
        pages += [line.split(" → ")[1].split(" ")[0] for line in err.splitlines() if line.startswith("PAGE")]
    assert pages == ["christian", "engineer-on-call"]  # giles was paged by the replay itself
    _, out, _ = run(capsys, "incidents", "--json")
    [incident] = json.loads(out)
    assert [p["person"] for p in incident["pages"]] == ["giles", "christian", "engineer-on-call"]
