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
    # on a laptop the playbook cannot read ECS: the plan shows what it would read, not a guess
    assert [s["type"] for s in plan["playbook_steps"]] == ["note", "api_call", "watch"]
    assert plan["playbook_steps"][1]["params"]["taskDefinition"] == "<last known-good revision, read at run time>"
    assert plan["playbook_reads"][0] == "ecs:DescribeServices cluster=prod-cluster services=checkout-api"
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


def test_unknown_incident_is_one_line_naming_the_store(capsys: Any, store_env: Path) -> None:
    code, _, err = run(capsys, "ack", "inc-nope", "--by", "x")
    assert code == 1 and err == f"error: no incident inc-nope in sqlite:///{store_env} (a new store)\n"
    code, _, err = run(capsys, "incidents", "show", "inc-nope")
    assert code == 1 and err == f"error: no incident inc-nope in sqlite:///{store_env}\n"


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


# --- same input, same output -------------------------------------------------------------

DEMO_STEPS = [  # what scripts/demo replays, minute by minute
    ("replay", "2025-03-14T14:00:00Z", ["sns-cloudwatch-alarm-metric.json", "sns-cloudwatch-alarm-metric.json"]),
    ("replay", "2025-03-14T14:01:00Z", ["eventbridge-cloudtrail-s3-putobjectretention.json"]),
    ("replay", "2025-03-14T14:02:00Z", ["ecs-deployment-failed.json", "ecs-deployment-completed.json",
                                         "eventbridge-cloudtrail-s3-putobjectlegalhold.json"]),
    ("replay", "2025-03-14T14:03:00Z", ["sns-cloudwatch-alarm-ok.json"]),
    ("escalate", "2025-03-14T14:06:00Z", []),
]


def _demo_run(capsys: Any, monkeypatch: pytest.MonkeyPatch, db: Path) -> tuple[list[str], str, str]:
    monkeypatch.setenv("RESPONDER_STORE", f"sqlite:///{db}")
    for command, now, files in DEMO_STEPS:
        code, _, _ = run(capsys, command, *map(event, files), "--now", now)
        assert code == 0
    _, out, _ = run(capsys, "incidents", "--json")
    ids = [i["id"] for i in json.loads(out)]
    _, table, _ = run(capsys, "incidents", "--now", "2025-03-14T14:07:00Z")
    _, shown, _ = run(capsys, "incidents", "show", ids[0], "--now", "2025-03-14T14:07:00Z")
    # ack links carry a random single-use nonce (and this store's own generated key): not compared
    return ids, table, "\n".join(line for line in shown.splitlines() if "/ack/" not in line
                                  and not line.lstrip().startswith("ack link "))


def test_replay_with_now_gives_the_same_ids_and_order_every_run(capsys: Any, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    first = _demo_run(capsys, monkeypatch, tmp_path / "one.db")
    second = _demo_run(capsys, monkeypatch, tmp_path / "two.db")
    assert first == second
    assert len(first[0]) == len(set(first[0])) == 3 and all(i.startswith("inc-") for i in first[0])


def test_without_now_ids_are_random(capsys: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = []
    for name in ("one.db", "two.db"):
        monkeypatch.setenv("RESPONDER_STORE", f"sqlite:///{tmp_path / name}")
        _, out, _ = run(capsys, "replay", event("ecs-deployment-failed.json"))
        ids.append(json.loads(out)["incident_id"])
    assert ids[0] != ids[1]


def test_derived_ids_differ_when_key_time_or_delivery_differ() -> None:
    from chalicelib import sources
    from chalicelib.decisions.incidents import derived_incident_id
    from tests.conftest import T0, sns_event

    [signal] = sources.to_signals(sns_event("sns-cloudwatch-alarm-metric.json"), T0, "sns")
    [other] = sources.to_signals(sns_event("sns-cloudwatch-alarm-metric.json", message_id="m-2"), T0, "sns")
    [elsewhere] = sources.to_signals(load_event("ecs-deployment-failed.json"), T0, "eventbridge")
    base = derived_incident_id(signal, T0)
    assert base == derived_incident_id(signal, T0)
    assert len({base, derived_incident_id(other, T0), derived_incident_id(elsewhere, T0),
                derived_incident_id(signal, T0.replace(second=41))}) == 4


# --- readable output -------------------------------------------------------------------------


def test_incidents_table_reads_in_the_teams_time_zone(capsys: Any) -> None:
    run(capsys, "replay", event("ecs-deployment-failed.json"), "--now", "2025-03-14T14:02:00Z")
    run(capsys, "replay", event("eventbridge-cloudtrail-s3-putobjectretention.json"), "--now", "2025-03-14T14:40:00Z")
    run(capsys, "replay", event("sns-cloudwatch-alarm-metric.json"), "--now", "2025-03-13T12:00:00Z")
    run(capsys, "replay", event("sns-cloudwatch-alarm-ok.json"), "--now", "2025-03-13T12:30:00Z")
    code, out, err = run(capsys, "incidents", "--now", "2025-03-14T15:45:00Z")
    header, *rows = out.splitlines()
    assert code == 0 and err == ""
    assert header.split() == ["ID", "SEV", "STATUS", "AGE", "OWNER", "OPENED", "(America/New_York)", "TITLE"]
    assert [row.split()[1:4] for row in rows[:2]] == [["SEV1", "open", "1h05m"], ["SEV2", "open", "1h43m"]]
    assert rows[2].split()[2:4] == ["resolved", "1d03h"]  # open first, most severe first; then resolved
    assert "founder-primary" in rows[0] and "Fri 2025-03-14 10:40" in rows[0]  # 14:40 UTC is 10:40 in New York
    assert "Thu 2025-03-13 08:00" in rows[2]
    title_at = header.index("TITLE")
    assert all(len(row) > title_at and row[title_at - 2:title_at] == "  " for row in rows)


def test_incidents_show_prints_pages_and_timeline(capsys: Any) -> None:
    _, out, _ = run(capsys, "replay", event("eventbridge-cloudtrail-s3-putobjectlegalhold.json"), "--now", NOW)
    incident_id = json.loads(out)["incident_id"]
    run(capsys, "ack", incident_id, "--by", "giles", "--now", "2025-03-14T14:50:00Z")
    code, out, _ = run(capsys, "incidents", "show", incident_id, "--now", "2025-03-14T15:00:00Z")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"{incident_id}  SEV1  acknowledged  ")
    assert "  acked      Fri 2025-03-14 10:50 by giles (7m after opening)" in lines
    assert any(line.startswith("  Fri 2025-03-14 10:43  trigger") and "→ giles via console: sent" in line
               for line in lines)
    # the link itself went to giles's channel only: the store keeps which link it was, and until when
    assert "(sent to giles only), until Fri 2025-03-14 11:13" in out and "/ack/" not in out
    assert lines.index("timeline") < len(lines) - 1 and "acknowledged by giles" in out
    _, as_json, _ = run(capsys, "incidents", "show", incident_id, "--json")
    assert json.loads(as_json)["id"] == incident_id and json.loads(as_json)["status"] == "acknowledged"


def test_reading_commands_say_which_store_when_it_is_new_or_empty(capsys: Any, store_env: Path) -> None:
    code, out, err = run(capsys, "incidents")
    assert (code, out, err) == (0, "", f"no incidents in sqlite:///{store_env} (a new store)\n")
    code, out, err = run(capsys, "incidents", "--json")  # the store exists now, still empty
    assert (code, json.loads(out), err) == (0, [], f"no incidents in sqlite:///{store_env}\n")
    code, out, err = run(capsys, "escalate", "--now", NOW)
    assert code == 0 and err == f"no incidents in sqlite:///{store_env}\n"
    run(capsys, "replay", event("ecs-deployment-failed.json"), "--now", NOW)
    _, _, err = run(capsys, "incidents")
    assert err == ""


def test_tokens_revoke_twice_says_it_was_revoked_before(capsys: Any, store_env: Path) -> None:
    code, token, err = run(capsys, "tokens", "create", "--user", "giles", "--role", "viewer")
    assert code == 0 and token.startswith("rsp_") and err == f"token stored in sqlite:///{store_env} (a new store)\n"
    token_id = token.split("_")[1]
    code, _, err = run(capsys, "tokens", "revoke", token.strip())
    assert code == 0 and err == f"revoked {token_id} (giles, viewer)\n"
    code, _, err = run(capsys, "tokens", "revoke", token_id)
    assert code == 3 and err.startswith(f"token {token_id} was already revoked (") and "nothing changed" in err
    code, _, err = run(capsys, "tokens", "revoke", "abcdefabcdef")
    assert code == 1 and err == f"error: token: no token abcdefabcdef in sqlite:///{store_env}\n"
