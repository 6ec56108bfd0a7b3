"""Importing app.py (every Lambda cold start) builds no AWS client, idempotency layer or tracer."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

PROBE = """
import json, sys
import app
heavy = [m for m in sys.modules if m.split(".")[0] in ("boto3", "botocore", "aws_xray_sdk", "pydantic", "yaml")
         or m.startswith("aws_lambda_powertools.utilities.idempotency")]
print(json.dumps({"heavy": heavy, "handlers": sorted(app.app.handler_map)}))
"""


def test_import_app_loads_no_boto3_pydantic_or_tracer() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True)
    probe = json.loads(result.stdout)
    assert probe["heavy"] == []
    assert {"on_alarm_sns", "on_alarm_state_change", "on_cloudtrail_s3", "on_ecs_deployment"} <= set(probe["handlers"])


def test_one_sns_subscription_per_configured_topic() -> None:
    code = "import app, json; print(json.dumps(sorted(app.app.handler_map)))"
    env = {"RESPONDER_ALARM_TOPICS": "alerts-a, alerts-b", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, check=True)
    names = json.loads(result.stdout)
    assert "on_alarm_sns" in names and "on_alarm_sns_1" in names


def test_in_lambda_import_app_skips_the_local_gateway_adapter() -> None:
    """``chalice local``'s error-body adapter (and pathlib) cost a Lambda cold start nothing."""
    code = "import app, json, sys; print(json.dumps(sorted(m for m in sys.modules if m in ('chalice.local', 'pathlib'))))"
    env = {"AWS_LAMBDA_FUNCTION_NAME": "alarm-responder-prod-api_handler", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, check=True)
    assert json.loads(result.stdout) == []
