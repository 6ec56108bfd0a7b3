"""The package deploys: the template CloudFormation runs (SAM, transformed) for every stage has
no circular dependency and no cfn-lint error, answers errors in our shape and encrypts at rest."""

from __future__ import annotations

import importlib.util
import json
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import STAGES, load_sam_transform, load_script

API_FUNCTIONS = ("APIHandler", "TokenAuthorizer")  # the API refers to these: they may not refer to it


sam_transform = load_sam_transform()
precompile_zip = load_script("precompile_zip")


@pytest.mark.parametrize("stage", STAGES)
def test_transformed_template_has_no_circular_dependency(packaged: dict[str, Any], stage: str) -> None:
    cfn = packaged[stage]["cfn"]
    assert "RestAPI" in cfn["Resources"] and "Transform" not in cfn  # the expanded template, not SAM
    assert sam_transform.dependency_cycles(cfn) == []


def test_cycle_finder_finds_the_api_cycle_the_old_template_had() -> None:
    template = {"Resources": {
        "RestAPI": {"Properties": {"Body": {"uri": {"Fn::Sub": "arn:${APIHandler.Arn}/invocations"}}}},
        "APIHandler": {"Properties": {"Environment": {"Variables": {
            "RESPONDER_PUBLIC_URL": {"Fn::Sub": "https://${RestAPI}.execute-api.${AWS::Region}.amazonaws.com/api"}}}}},
        "Table": {"Properties": {}},
    }}
    assert sam_transform.dependency_cycles(template) == [["APIHandler", "RestAPI", "APIHandler"]]


@pytest.mark.parametrize("stage", STAGES)
def test_transformed_template_passes_cfn_lint(packaged: dict[str, Any], stage: str) -> None:
    from cfnlint.api import ManualArgs, lint

    matches = lint(json.dumps(packaged[stage]["cfn"]), config=ManualArgs(regions=["us-east-1"]))
    errors = [f"{m.rule.id} {m.message}" for m in matches if m.rule.id.startswith("E")]
    assert errors == []


@pytest.mark.parametrize("stage", STAGES)
def test_only_functions_outside_the_api_are_told_its_url(packaged: dict[str, Any], stage: str) -> None:
    resources = packaged[stage]["cfn"]["Resources"]
    functions = {name: r for name, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    for name in API_FUNCTIONS:
        assert "RESPONDER_PUBLIC_URL" not in functions[name]["Properties"]["Environment"]["Variables"]
    outside = [name for name in functions if name not in API_FUNCTIONS]
    assert outside and all("RestAPI" in json.dumps(functions[n]["Properties"]["Environment"]) for n in outside)


@pytest.mark.parametrize("stage", STAGES)
def test_every_function_runs_on_arm64_with_the_chosen_memory(packaged: dict[str, Any], stage: str) -> None:
    """Graviton: 20% cheaper per GB-second than x86_64; the zip carries aarch64 wheels to match.
    1,024 MB: bench/memory.py's pick (README, Deployed settings)."""
    resources = packaged[stage]["cfn"]["Resources"]
    functions = {name: (r["Properties"].get("Architectures"), r["Properties"].get("MemorySize"))
                 for name, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    assert len(functions) >= 8 and set(map(str, functions.values())) == {"(['arm64'], 1024)"}, functions
    with zipfile.ZipFile(packaged[stage]["zip"]) as archive:
        native = [n for n in archive.namelist() if n.endswith(".so")]
    assert native and all("aarch64" in n for n in native), native


def test_shipped_zip_holds_only_the_app_its_dependencies_and_fresh_bytecode(
        packaged: dict[str, Any], tmp_path: Path) -> None:
    """No tests, venv or tool caches; every .pyc one that precompile_zip compiled (unchecked-hash,
    CPython 3.11) from a source beside it, none carried over from the work tree."""
    shipped = tmp_path / "deployment.zip"
    precompile_zip.precompile(packaged["prod"]["zip"], shipped)
    with zipfile.ZipFile(shipped) as archive:
        names = archive.namelist()
        pycs = {n: archive.read(n)[:8] for n in names if n.endswith(".pyc")}
    tops = {n.split("/")[0] for n in names}
    assert {"app.py", "chalicelib", "chalice", "boto3", "pydantic"} <= tops
    assert not {"tests", "bench", "scripts", ".venv", ".chalice", ".git", "out"} & tops
    assert [n for n in names if precompile_zip.is_litter(n) and not n.endswith(".cpython-311.pyc")] == []
    assert "chalicelib/__pycache__/wiring.cpython-311.pyc" in pycs
    assert "chalicelib/config/compiled-config.pickle" in names  # the config, pre-validated
    assert {"chalicelib/aws_data/endpoints.json", "chalicelib/aws_data/dynamodb/2012-08-10/service-2.json",
            "chalicelib/aws_data/secretsmanager/2017-10-17/service-2.json"} <= set(names)  # chalicelib.aws
    for name, header in pycs.items():
        folder, _, file = name.rpartition("__pycache__/")
        assert file.endswith(".cpython-311.pyc") and f"{folder}{file.split('.')[0]}.py" in names, name
        assert header[:4] == importlib.util.MAGIC_NUMBER and header[4:8] == b"\x01\x00\x00\x00", name


def test_precompile_drops_work_tree_bytecode_and_leftovers(tmp_path: Path) -> None:
    """What Chalice copies from a used work tree: another Python's .pyc, the orphan of a moved
    module, a merge leftover, an editor backup. Only the sources survive, with fresh bytecode."""
    made = tmp_path / "chalice.zip"
    with zipfile.ZipFile(made, "w") as archive:
        archive.writestr("app.py", "import chalicelib.wiring\n")
        archive.writestr("chalicelib/__init__.py", "")
        archive.writestr("chalicelib/wiring.py", "X = 1\n")
        archive.writestr("chalicelib/__pycache__/wiring.cpython-312.pyc", b"stale")
        archive.writestr("chalicelib/__pycache__/classify.cpython-311.pyc", b"orphan of a moved module")
        archive.writestr("chalicelib/wiring.py.orig", "X = 0\n")
        archive.writestr("chalicelib/wiring.py~", "X = 0\n")
        archive.writestr("chalicelib/config/.DS_Store", b"")
    shipped = tmp_path / "deployment.zip"
    assert precompile_zip.precompile(made, shipped) == 3
    with zipfile.ZipFile(shipped) as archive:
        assert sorted(archive.namelist()) == [
            "__pycache__/app.cpython-311.pyc", "app.py", "chalicelib/__init__.py",
            "chalicelib/__pycache__/__init__.cpython-311.pyc", "chalicelib/__pycache__/wiring.cpython-311.pyc",
            "chalicelib/wiring.py"]


@pytest.mark.parametrize("stage", STAGES)
def test_api_declares_gateway_responses_in_our_error_shape(packaged: dict[str, Any], stage: str) -> None:
    body = packaged[stage]["cfn"]["Resources"]["RestAPI"]["Properties"]["Body"]
    responses = body["x-amazon-apigateway-gateway-responses"]
    assert {"DEFAULT_4XX", "DEFAULT_5XX", "UNAUTHORIZED", "ACCESS_DENIED", "UNSUPPORTED_MEDIA_TYPE",
            "REQUEST_TOO_LARGE", "MISSING_AUTHENTICATION_TOKEN", "AUTHORIZER_FAILURE", "THROTTLED"} <= set(responses)
    for kind, response in responses.items():
        rendered = response["responseTemplates"]["application/json"].replace(
            "$context.error.messageString", json.dumps("API Gateway's message"))
        parsed = json.loads(rendered)
        assert set(parsed) in ({"message", "error"}, {"message", "error", "field"}), kind
        assert response["responseParameters"]["gatewayresponse.header.Cache-Control"] == "'no-store'"
    assert json.loads(responses["UNAUTHORIZED"]["responseTemplates"]["application/json"]) == {
        "message": "a valid bearer token is required", "error": "unauthorized", "field": "Authorization"}
    assert responses["UNSUPPORTED_MEDIA_TYPE"]["statusCode"] == "415"


@pytest.mark.parametrize("stage", STAGES)
def test_table_dead_letters_and_audit_trail_use_a_rotated_customer_managed_key(
        packaged: dict[str, Any], stage: str) -> None:
    resources = packaged[stage]["cfn"]["Resources"]
    key = resources["ResponderKey"]
    assert key["Type"] == "AWS::KMS::Key" and key["Properties"]["EnableKeyRotation"] is True
    table_sse = resources["IncidentsTable"]["Properties"]["SSESpecification"]
    assert table_sse == {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": {"Ref": "ResponderKey"}}
    assert resources["DeadLetterQueue"]["Properties"]["KmsMasterKeyId"] == {"Ref": "ResponderKey"}
    [rule] = resources["AuditBucket"]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": {"Ref": "ResponderKey"}}


@pytest.mark.parametrize("stage", STAGES)
def test_key_policy_lets_every_function_role_use_the_key(packaged: dict[str, Any], stage: str) -> None:
    resources = packaged[stage]["cfn"]["Resources"]
    roles = {name for name, r in resources.items() if r["Type"] == "AWS::IAM::Role"}
    used_roles = {r["Properties"]["Role"]["Fn::GetAtt"][0] for r in resources.values()
                  if r["Type"] == "AWS::Lambda::Function"}
    assert used_roles <= roles
    statements = {s["Sid"]: s for s in resources["ResponderKey"]["Properties"]["KeyPolicy"]["Statement"]}
    functions = statements["FunctionsUseItThroughTheirStores"]
    assert {p["Fn::GetAtt"][0] for p in functions["Principal"]["AWS"]} == used_roles
    assert {"kms:Decrypt", "kms:GenerateDataKey"} <= set(functions["Action"])
    dead_letters = statements["DeadLettersFromSnsAndEventBridge"]["Principal"]["Service"]
    assert set(dead_letters) == {"sns.amazonaws.com", "events.amazonaws.com"}  # SNS redrive, EventBridge DLQ


# moto's CloudFormation cannot create two things the real one can, so the test adapts the
# template for exactly these (and moto skips, with a warning, the types it does not model:
# EventInvokeConfig, SQS QueuePolicy, SNS Subscription and TopicPolicy, CloudWatch Alarm):
# - AWS::ApiGateway::RestApi defined by an OpenAPI Body: moto requires ``Name`` (CloudFormation
#   takes it from the body's info.title) and ignores the Body, so the API has no methods and
# - AWS::ApiGateway::Deployment then fails ("The REST API doesn't contain any methods"); the
#   deployment and its stage are left out.
MOTO_SKIPS = ("AWS::ApiGateway::Deployment", "AWS::ApiGateway::Stage")
MOTO_UNMODELLED = {"AWS::Lambda::EventInvokeConfig", "AWS::SQS::QueuePolicy", "AWS::SNS::Subscription",
                   "AWS::SNS::TopicPolicy", "AWS::CloudWatch::Alarm"}


def _for_moto(cfn: dict[str, Any]) -> dict[str, Any]:
    template = json.loads(json.dumps(cfn))
    api = template["Resources"]["RestAPI"]["Properties"]
    api["Name"] = api["Body"]["info"]["title"]
    skipped = {name for name, r in template["Resources"].items() if r["Type"] in MOTO_SKIPS}
    for name in skipped:
        del template["Resources"][name]
    template["Outputs"] = {k: v for k, v in template.get("Outputs", {}).items()
                           if not any(name in json.dumps(v) for name in skipped)}
    return template


@pytest.mark.filterwarnings("ignore:Tried to parse AWS::")  # asserted once, on create_stack
def test_moto_cloudformation_creates_the_transformed_stack(packaged: dict[str, Any],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import zipfile

    import boto3
    from moto import mock_aws

    for name, value in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    bucket, key = sam_transform.PLACEHOLDER_CODE_URI.removeprefix("s3://").split("/", 1)
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "app = None\n")
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=bucket)
        boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=code.getvalue())
        cloudformation = boto3.client("cloudformation")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cloudformation.create_stack(StackName="alarm-responder-prod", TemplateBody=json.dumps(_for_moto(
                packaged["prod"]["cfn"])), Parameters=[{"ParameterKey": "Stage", "ParameterValue": "prod"}],
                Capabilities=["CAPABILITY_IAM"])
        unmodelled = {str(w.message).split()[3] for w in caught if "not supported by moto" in str(w.message)}
        assert unmodelled == MOTO_UNMODELLED
        stack = cloudformation.describe_stacks(StackName="alarm-responder-prod")["Stacks"][0]
        assert stack["StackStatus"] == "CREATE_COMPLETE"
        summaries = cloudformation.list_stack_resources(StackName="alarm-responder-prod")["StackResourceSummaries"]
        created = {r["LogicalResourceId"]: r["ResourceStatus"] for r in summaries}
        physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in summaries}
        assert {"ResponderKey", "IncidentsTable", "APIHandler", "TokenAuthorizer", "OnAlarmSns", "RestAPI"} <= set(created)
        assert set(created.values()) == {"CREATE_COMPLETE"}
        lambdas = boto3.client("lambda")
        api_env = lambdas.get_function_configuration(FunctionName=physical["APIHandler"])
        assert "RESPONDER_PUBLIC_URL" not in api_env["Environment"]["Variables"]
        sns_env = lambdas.get_function_configuration(FunctionName=physical["OnAlarmSns"])
        rest_api_id = physical["RestAPI"]
        assert sns_env["Environment"]["Variables"]["RESPONDER_PUBLIC_URL"].startswith(f"https://{rest_api_id}.execute-api.")
        key_id = physical["ResponderKey"]
        assert boto3.client("kms").get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True

