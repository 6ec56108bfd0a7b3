"""The trimmed AWS data the deployed zip carries (``chalicelib.aws.new_client``, built by
scripts/precompile_zip.py from botocore's own data): it holds every operation the adapters call,
and a client built from it sends the same requests and reads the same answers as stock boto3's."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import botocore
import botocore.exceptions
import pytest
from botocore import xform_name
from moto import mock_aws

from chalicelib import aws
from tests.conftest import ROOT, create_table, load_script

precompile_zip = load_script("precompile_zip")

TABLE, KEY = "responder-test", {"pk": {"S": "INCIDENT#1"}}
# Who calls each shipped service, and how its calls read in that file.
CALLERS = {
    "dynamodb": ("chalicelib/store/dynamodb.py", r'_call\("(\w+)"|client\.(\w+)\('),
    "secretsmanager": ("chalicelib/secrets.py", r"_client\.(\w+)\("),
    "sqs": ("chalicelib/notify/sweep_queue.py", r"client\.(\w+)\("),
    "sns": ("chalicelib/notify/channels.py", r"_client\(\)\.(\w+)\("),
}
# One call of each shipped operation, as the adapters make them (moto answers).
CALLS: list[tuple[str, str, dict[str, Any]]] = [
    ("dynamodb", "put_item", {"TableName": TABLE, "Item": {**KEY, "n": {"N": "1"}, "doc": {"B": b"\x00\x01"}},
                              "ConditionExpression": "attribute_not_exists(pk)"}),
    ("dynamodb", "get_item", {"TableName": TABLE, "Key": KEY, "ConsistentRead": True}),
    ("dynamodb", "update_item", {"TableName": TABLE, "Key": KEY, "UpdateExpression": "ADD n :one",
                                 "ExpressionAttributeValues": {":one": {"N": "1"}}, "ReturnValues": "ALL_NEW"}),
    ("dynamodb", "query", {"TableName": TABLE, "KeyConditionExpression": "pk = :pk",
                           "ExpressionAttributeValues": {":pk": KEY["pk"]}}),
    ("dynamodb", "scan", {"TableName": TABLE, "Limit": 10}),
    ("dynamodb", "batch_get_item", {"RequestItems": {TABLE: {"Keys": [KEY]}}}),
    ("dynamodb", "transact_write_items", {"TransactItems": [
        {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "INCIDENT#2"}}}},
        {"Update": {"TableName": TABLE, "Key": KEY, "UpdateExpression": "SET s = :s",
                    "ExpressionAttributeValues": {":s": {"S": "open"}}}}],
        "ClientRequestToken": "same-token-for-both"}),  # botocore fills in a random one otherwise
    ("dynamodb", "delete_item", {"TableName": TABLE, "Key": {"pk": {"S": "INCIDENT#2"}}}),
    ("secretsmanager", "get_secret_value", {"SecretId": "alarm-responder/link"}),
    ("sqs", "send_message_batch", {"QueueUrl": "", "Entries": [{"Id": "1", "MessageBody": '{"incident":"1"}'}]}),
    ("sns", "publish", {"TopicArn": "", "Message": "SEV1 db down", "Subject": "page"}),
]
VARYING_HEADERS = {"authorization", "x-amz-date", "amz-sdk-invocation-id", "x-amz-security-token"}


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("aws_data")
    installed = Path(boto3.__file__).parent
    assert precompile_zip.shipped_version(installed) == boto3.__version__
    precompile_zip.ship_aws_data(Path(botocore.__file__).parent / "data", folder, precompile_zip.shipped_version(installed))
    return str(folder)


def test_the_shipped_models_hold_every_operation_the_adapters_call(shipped: str) -> None:
    for service, (path, pattern) in CALLERS.items():
        called = {name for match in re.findall(pattern, (ROOT / path).read_text()) for name in
                  (match if isinstance(match, tuple) else (match,)) if name}
        shipped_names = {xform_name(op) for op in aws.SHIPPED_OPERATIONS[service]}
        assert called and called <= shipped_names, (service, called - shipped_names)
        model = aws.new_client(service, data=shipped).meta.service_model
        assert sorted(model.operation_names) == sorted(aws.SHIPPED_OPERATIONS[service])
    assert {(s, op) for s, op, _ in CALLS} == {(s, xform_name(op)) for s, ops in aws.SHIPPED_OPERATIONS.items()
                                               for op in ops}


def test_a_client_from_the_shipped_data_sends_the_same_requests_and_reads_the_same_answers(
        shipped: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each kind of client on its own fresh moto; DynamoDB's answers compared whole (a refused
    condition too), the others' by their fields (moto makes their ids at random)."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    stock = _run_calls(boto3.client)
    lean = _run_calls(lambda service: aws.new_client(service, data=shipped))
    assert len(stock) == len(CALLS) + 1
    for (call, sent, answer), (_, lean_sent, lean_answer) in zip(stock, lean, strict=True):
        assert lean_sent == sent, call
        assert lean_answer == answer, call


def _run_calls(make: Callable[[str], Any]) -> list[tuple[tuple[str, str], Any, Any]]:
    """(call, the request sent, the answer read) of every call in CALLS and a refused condition."""
    with mock_aws():
        create_table(boto3.client("dynamodb"), TABLE)
        boto3.client("secretsmanager").create_secret(Name="alarm-responder/link", SecretString="k" * 32)
        targets = {"sqs": {"QueueUrl": boto3.client("sqs").create_queue(QueueName="sweep")["QueueUrl"]},
                   "sns": {"TopicArn": boto3.client("sns").create_topic(Name="pages")["TopicArn"]}}
        clients: dict[str, Any] = {}
        sent: list[Any] = []
        done = []
        for service, operation, params in [*CALLS, CALLS[0]]:  # the second put_item is refused
            if service not in clients:
                clients[service] = make(service)
                clients[service].meta.events.register_last("request-created", partial(_record, sent))
            try:
                answer = _answer(service, getattr(clients[service], operation)(**(params | targets.get(service, {}))))
            except botocore.exceptions.ClientError as exc:
                answer = (type(exc).__name__, exc.response["Error"], exc.response.get("Item"))
            done.append(((service, operation), sent.pop(), answer))
        assert sent == []
        return done


def _record(sent: list[Any], request: Any, **_: Any) -> None:
    headers = {k.lower(): v for k, v in request.headers.items() if k.lower() not in VARYING_HEADERS}
    sent.append((request.method, request.url, request.body, headers))


def _answer(service: str, response: dict[str, Any]) -> Any:
    answer = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    return answer if service == "dynamodb" else sorted(answer)


def test_without_shipped_data_clients_are_stock_boto3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A work tree has no ``chalicelib/aws_data``; a service the zip carries no data for is stock too."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    assert not Path(aws.SHIPPED_DATA).exists()
    everything = len(boto3.client("dynamodb").meta.service_model.operation_names)
    assert len(aws.new_client("dynamodb", data=str(tmp_path)).meta.service_model.operation_names) == everything
    assert aws.new_client("ecs", data=str(tmp_path)).meta.service_model.service_name == "ecs"


def test_a_client_from_the_shipped_data_does_not_import_boto3(shipped: str) -> None:
    """boto3 (and s3transfer, multiprocessing) stay out of a cold start that uses only these clients."""
    code = ("import json, sys; from chalicelib import aws; aws.new_client('dynamodb', data=sys.argv[1]); "
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'boto3', 's3transfer', 'botocore'})))")
    result = subprocess.run([sys.executable, "-c", code, shipped], cwd=ROOT, capture_output=True, text=True, check=True,
                            env={"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"})
    assert json.loads(result.stdout) == ["botocore"]
