"""Deployment config: hand-written least-privilege IAM, no autogen, every store call granted."""

from __future__ import annotations

import json
import re

import pytest

from chalicelib.sources import registry
from tests.conftest import ROOT
from tests.test_source_registry import merge_template_rules

CHALICE = ROOT / ".chalice"
# DynamoDB API calls the store makes, as IAM actions (transactions need the per-item actions).
STORE_ACTIONS = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Scan",
                 "dynamodb:ConditionCheckItem", "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:UpdateItem"}


def test_autogen_policy_is_off_and_each_stage_has_a_policy() -> None:
    config = json.loads((CHALICE / "config.json").read_text())
    assert config["autogen_policy"] is False
    for stage, settings in config["stages"].items():
        if stage == "local":  # `chalice local --stage local`: never deployed, keeps the caller's environment
            continue
        assert (CHALICE / settings["iam_policy_file"]).exists(), stage
        assert settings["environment_variables"]["RESPONDER_STORE"] == f"dynamodb://alarm-responder-{stage}"


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_policy_grants_store_actions_without_wildcard_actions(stage: str) -> None:
    policy = json.loads((CHALICE / f"policy-{stage}.json").read_text())
    actions = {a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert not [a for a in actions if "*" in a]
    assert STORE_ACTIONS <= actions
    assert {"logs:CreateLogStream", "logs:PutLogEvents", "sqs:SendMessage", "secretsmanager:GetSecretValue"} <= actions
    resources = " ".join(str(s["Resource"]) for s in policy["Statement"])
    assert f"table/alarm-responder-{stage}" in resources and f"alarm-responder-{stage}-dlq" in resources


def test_store_uses_only_granted_dynamodb_calls() -> None:
    source = (ROOT / "chalicelib" / "store" / "dynamodb.py").read_text()
    calls = set(re.findall(r'(?:_call|_incidents)\(\s*"(\w+)"', source))
    assert calls == {"put_item", "update_item", "delete_item", "get_item", "batch_get_item", "scan", "query",
                     "transact_write_items"}


def test_merge_template_wires_dead_letters_for_every_async_function() -> None:
    template = json.loads((CHALICE / "merge-template.json").read_text())
    resources = template["Resources"]
    rule_functions = [merge_template_rules.resource_name(rule.name) for rule in registry.eventbridge_rules()]
    for fn in ("OnAlarmSns", "EscalationSweep", "SecretRotationCheck", *rule_functions):
        config = resources[f"{fn}InvokeConfig"]["Properties"]
        assert config["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    table = resources["IncidentsTable"]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
