"""Plans you can read before anything runs (issue 16 §3), and the playbook registries (§1).

``simulate`` on a laptop has no AWS clients: every playbook still prints its whole plan,
values it would read shown as ``<label, read at run time>``, and the reads it would make.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import pytest

from chalicelib.cli import main
from chalicelib.models import DutyKind
from chalicelib.playbooks import REGISTRY, executor, steps
from chalicelib.playbooks.runtime import RuntimeValue, compute, reads_of, resolve, runtime_value
from chalicelib.web import api
from tests.conftest import ROOT, load_event, sns_event
from tests.test_playbooks import ai_alarm, npdb_alarm, rds_connections_alarm

NOW = "2025-03-14T14:00:00+00:00"


def alarm(name: str, **changes: Any) -> dict[str, Any]:
    return sns_event("sns-cloudwatch-alarm-metric.json", message_id="m-" + name, AlarmName=name,
                     AlarmArn=f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}", **changes)


TRIGGERS = {
    "deploy-rollback": lambda: load_event("ecs-deployment-failed.json"),
    "object-lock-alarm": lambda: load_event("eventbridge-cloudtrail-s3-putobjectretention.json"),
    "db-connection-saturation": rds_connections_alarm,
    "ai-provider-outage": ai_alarm,
    "auth-outage": lambda: alarm("cognito-signin-5xx"),
    "source-authority-down": npdb_alarm,
    "observability-outage": lambda: alarm("sentry-ingest-failures", Trigger={
        "MetricName": "IngestFailures", "Namespace": "App/Ops", "Dimensions": []}),
}


def simulate(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
             event: dict[str, Any]) -> dict[str, Any]:
    monkeypatch.setenv("RESPONDER_STORE", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.delenv("RESPONDER_AWS", raising=False)  # a laptop: local stage, no AWS clients
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    assert main(["simulate", str(path), "--now", NOW]) == 0
    plan: dict[str, Any] = json.loads(capsys.readouterr().out)
    return plan


def test_every_playbook_has_a_trigger_here() -> None:
    assert set(TRIGGERS) == set(REGISTRY)


@pytest.mark.parametrize("playbook", sorted(TRIGGERS))
def test_simulate_prints_every_playbooks_plan_without_aws(playbook: str, capsys: pytest.CaptureFixture[str],
                                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = simulate(capsys, tmp_path, monkeypatch, TRIGGERS[playbook]())
    assert plan["playbook"] == playbook
    assert plan["playbook_steps"], "a plan with no steps"
    assert not [s for s in plan["playbook_steps"] if s["type"] == "error"], plan["playbook_steps"]
    assert all(s["plan"] for s in plan["playbook_steps"])
    shown = json.dumps(plan["playbook_steps"])
    if plan["playbook_reads"]:
        assert "read at run time>" in shown
    else:  # a plan that reads nothing has nothing unknown
        assert "read at run time" not in shown


def test_rollback_plan_reads_like_terraform_plan(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    plan = simulate(capsys, tmp_path, monkeypatch, TRIGGERS["deploy-rollback"]())
    lines = [s["plan"] for s in plan["playbook_steps"]]
    assert lines[1].startswith("ecs:UpdateService(cluster=prod-cluster, service=checkout-api, "
                               "taskDefinition=<last known-good revision, read at run time>)")
    assert plan["playbook_steps"][1]["params"]["taskDefinition"] == "<last known-good revision, read at run time>"
    assert plan["playbook_reads"][0] == "ecs:DescribeServices cluster=prod-cluster services=checkout-api"
    assert plan["playbook_reads"][1].startswith("ecs:ListTaskDefinitions")


def test_ai_plan_names_the_route_it_would_set_and_its_reads(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    plan = simulate(capsys, tmp_path, monkeypatch, TRIGGERS["ai-provider-outage"]())
    kinds = [s["type"] for s in plan["playbook_steps"]]
    assert kinds == ["note", "api_call", "raise_severity", "duty"]
    assert plan["playbook_steps"][2]["only_if"] == (
        "<the fallback alarm ai-gateway-bedrock-executor-failures is in ALARM, read at run time>")
    assert plan["playbook_reads"] == [
        "ssm:GetParameter Name=/platform/prod/flags/ai_route",
        "cloudwatch:DescribeAlarms AlarmNames=ai-gateway-bedrock-executor-failures"]


# --- the runtime values themselves -------------------------------------------------------------


def test_a_runtime_value_is_read_once_and_only_when_resolved() -> None:
    calls: list[int] = []
    value = runtime_value("answer", ["svc:Read"], lambda: calls.append(1) or 42)
    step = steps.Note(text=value, only_if=runtime_value("yes", ["svc:Check"], lambda: True))
    assert calls == [] and str(value) == "<answer, read at run time>"
    assert reads_of([step]) == ["svc:Check", "svc:Read"]  # the condition is read first, as a run does
    [concrete] = resolve([step])
    assert concrete.text == 42 and concrete.only_if is None and calls == [1]
    assert compute({"a": [value]}) == {"a": [42]} and calls == [1]


def test_a_step_whose_condition_reads_false_is_dropped() -> None:
    no = runtime_value("no", ["svc:Check"], lambda: False)
    assert resolve([steps.Note(text="kept"), steps.Note(text="dropped", only_if=no)]) == [steps.Note(text="kept")]


def test_a_resolved_step_records_as_before() -> None:
    step = steps.Note(text="x", only_if=runtime_value("yes", [], lambda: True))
    assert resolve([step])[0].model_dump(mode="json") == {"type": "note", "text": "x"}


def test_a_placeholder_without_code_says_so() -> None:
    with pytest.raises(ValueError, match="nothing to compute"):
        compute(RuntimeValue(label="orphan", reads=()))


# --- registries (§1) ----------------------------------------------------------------------------


def test_every_step_type_has_a_runner() -> None:
    assert set(steps.STEP_TYPES) == set(executor.RUNNERS)
    assert set(typing.get_args(steps.Step)) == set(executor.RUNNERS)


def test_a_step_type_gets_one_runner() -> None:
    with pytest.raises(ValueError, match="two runners"):
        executor.runs(steps.Note)(lambda run, step: "")


def test_duty_kinds_are_one_enum_for_steps_comms_api_and_openapi() -> None:
    kinds = {kind.value for kind in DutyKind}
    assert api.DUTY_KINDS == kinds
    assert typing.get_type_hints(steps.AddDuty)["kind"] is DutyKind
    document = json.loads((ROOT / "openapi.json").read_text())
    [param] = [p for p in document["paths"]["/incidents/{incident_id}/duties/{kind}/done"]["post"]["parameters"]
               if p["name"] == "kind"]
    assert set(param["schema"]["enum"]) == kinds
    with pytest.raises(ValueError):
        steps.AddDuty(kind="tea", due_at="2025-03-14T14:00:00Z", reason="x")
