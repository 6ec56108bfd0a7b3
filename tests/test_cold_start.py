"""The first event of a cold start pays only for what it uses (bench/coldstart.py measures it).

Each probe is a fresh interpreter, because what matters is what an import does the first time.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib import coldstart
from tests.conftest import ROOT

PLAYBOOK_MODULES = """
import json, sys
from chalicelib import handlers, playbooks
before = sorted(m for m in sys.modules if m.rsplit(".", 1)[-1] in playbooks.NAMES)
found = playbooks.get("deploy-rollback") is not None
after = sorted(m.rsplit(".", 1)[-1] for m in sys.modules if m.rsplit(".", 1)[-1] in playbooks.NAMES)
print(json.dumps({"before": before, "found": found, "after": after}))
"""

MODELS_BUILT = """
import json
from chalicelib import handlers
from chalicelib.playbooks import runtime
from chalicelib.sources import cloudwatch_alarm, sns
shapes = {"SnsNotification": sns.SnsNotification, "SnsAlarmMessage": cloudwatch_alarm.SnsAlarmMessage,
          "CamelAlarmData": cloudwatch_alarm.CamelAlarmData, "RuntimeValue": runtime.RuntimeValue}
before = {name: cls.__pydantic_complete__ for name, cls in shapes.items()}
sns.SnsNotification.model_validate({"Type": "Notification", "MessageId": "m", "TopicArn": "t", "Message": "x",
                                    "Timestamp": "2026-11-30T00:00:00Z"})
after = {name: cls.__pydantic_complete__ for name, cls in shapes.items()}
print(json.dumps({"before": before, "after": after}))
"""


def _probe(code: str) -> dict[str, object]:
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return dict(json.loads(result.stdout))


def test_importing_the_handlers_loads_no_playbook_until_one_is_asked_for() -> None:
    probe = _probe(PLAYBOOK_MODULES)
    assert probe["before"] == []
    assert probe["found"] is True
    assert probe["after"] == sorted(__import__("chalicelib.playbooks", fromlist=["NAMES"]).NAMES)


def test_wire_shapes_and_playbook_values_build_their_validators_on_first_use_not_at_import() -> None:
    """An SNS alarm needs two of the twelve CloudWatch wire shapes; a plan's run-time values only
    when a playbook runs. The core models (``chalicelib.models``) are built at import on purpose."""
    probe = _probe(MODELS_BUILT)
    assert probe["before"] == {"SnsNotification": False, "SnsAlarmMessage": False, "CamelAlarmData": False,
                               "RuntimeValue": False}
    assert probe["after"] == {"SnsNotification": True, "SnsAlarmMessage": False, "CamelAlarmData": False,
                              "RuntimeValue": False}


COLLECTOR = """
import gc, json
runs = []
gc.callbacks.append(lambda phase, info: runs.append(info["generation"]) if phase == "start" else None)
import app
start = len(runs)
app._handlers()
from chalicelib import aws, wiring
aws.new_client("dynamodb")
wiring.get_deps()
print(json.dumps({"collections_while_loading": len(runs) - start, "enabled": gc.isenabled(),
                  "frozen": gc.get_freeze_count()}))
"""


def test_in_lambda_the_first_events_imports_and_builds_run_without_the_collector(tmp_path: Path) -> None:
    """chalicelib/coldstart.py: nothing loaded or built once per process (the handlers' modules, a
    client, the deps) is garbage, so the collector is not run over it; afterwards it is on again
    and all that is frozen. Outside Lambda nothing changes."""
    env = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", "RESPONDER_LINK_SECRET": "k" * 32,
           "RESPONDER_STORE": f"sqlite:///{tmp_path / 'state.db'}", "RESPONDER_AUDIT": f"file://{tmp_path}/a.jsonl"}
    lambda_env = env | {"AWS_LAMBDA_FUNCTION_NAME": "alarm-responder-prod-on_alarm_sns"}
    in_lambda, outside = (json.loads(subprocess.run([sys.executable, "-c", COLLECTOR], cwd=ROOT, env=e, check=True,
                                                    capture_output=True, text=True).stdout) for e in (lambda_env, env))
    assert in_lambda["collections_while_loading"] == 0
    assert in_lambda["enabled"] is True and in_lambda["frozen"] > 20_000
    assert outside["collections_while_loading"] > 10 and outside["enabled"] is True and outside["frozen"] == 0


def test_a_collector_stopped_by_someone_else_stays_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stretch inside another (a client built while the handlers load) leaves the resuming to
    the outer one; and a collector the process had stopped itself is not started behind its back."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "alarm-responder-prod-on_alarm_sns")
    gc.disable()
    try:
        with coldstart.loading():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
