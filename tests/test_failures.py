"""Failure paths: nothing is lost when the store, a secret or a channel misbehaves."""

from __future__ import annotations

import io
import json
import logging
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from chalicelib.errors import DeliveryInProgress, StoreError, TransientError
from chalicelib.handlers import on_event, on_sentry_webhook
from chalicelib.observability import JsonFormatter
from chalicelib.secrets import SecretsManagerSecret
from chalicelib.store import Claim
from chalicelib.store.dynamodb import DynamoStore
from chalicelib.store.sqlite import SqliteStore
from tests.conftest import FakeClock, RecordingChannel, load_event, make_deps, new_id, sns_event


class FailingOnce:
    """Wraps a store; the first ``create`` raises a transient error, as a throttled DynamoDB would."""

    def __init__(self, inner: SqliteStore) -> None:
        self.inner, self.failed = inner, False

    def create(self, incident: Any) -> Any:
        if not self.failed:
            self.failed = True
            raise TransientError("dynamodb transact_write_items: ProvisionedThroughputExceededException")
        return self.inner.create(incident)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_transient_store_failure_releases_the_delivery_for_lambdas_retry(sqlite_store: SqliteStore) -> None:
    channel = RecordingChannel()
    deps = make_deps(FailingOnce(sqlite_store), FakeClock(), channel)
    event = sns_event("sns-cloudwatch-alarm-metric.json", message_id=new_id())
    with pytest.raises(TransientError):
        on_event(event, "sns", deps)
    assert sqlite_store.list() == [] and channel.sent == []
    retry = on_event(event, "sns", deps)  # Lambda's async retry of the same delivery
    assert retry["outcomes"][0]["reason"] == "OPENED" and len(channel.sent) == 1


def test_dynamodb_throttling_becomes_transient_error() -> None:
    client = boto3.client("dynamodb", region_name="us-east-1")
    store = DynamoStore("t", client=client)
    with Stubber(client) as stub:
        stub.add_client_error("put_item", service_error_code="ProvisionedThroughputExceededException",
                              http_status_code=400)
        with pytest.raises(TransientError, match="ProvisionedThroughputExceededException"):
            store.claim_delivery("d", FakeClock()(), 60)
        stub.add_client_error("batch_get_item", service_error_code="ResourceNotFoundException", http_status_code=400)
        with pytest.raises(StoreError, match="ResourceNotFoundException"):
            store.get("inc-1")


def test_failed_channel_is_recorded_on_the_incident(sqlite_store: SqliteStore) -> None:
    channel = RecordingChannel(fail=True)
    deps = make_deps(sqlite_store, FakeClock(), channel)
    on_event(sns_event("sns-cloudwatch-alarm-metric.json", message_id=new_id()), "sns", deps)
    [incident] = sqlite_store.list()
    [page] = incident.pages
    assert page.status == "failed" and "recording channel set to fail" in (page.error or "")
    assert any("failed" in e.what for e in incident.timeline)


def test_secrets_manager_secret_is_cached_and_refreshed_after_ttl() -> None:
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        client.create_secret(Name="alarm-responder/dev/sentry-client-secret", SecretString="first")
        clock = FakeClock()
        secret = SecretsManagerSecret("alarm-responder/dev/sentry-client-secret", clock, client)
        assert secret() == "first"
        client.put_secret_value(SecretId="alarm-responder/dev/sentry-client-secret", SecretString="rotated")
        assert secret() == "first"
        clock.advance(minutes=6)
        assert secret() == "rotated"
        missing = SecretsManagerSecret("alarm-responder/dev/nope", clock, client)
        with pytest.raises(StoreError, match="ResourceNotFoundException") as info:
            missing()
        assert "rotated" not in str(info.value)


def test_sentry_route_with_secret_from_secrets_manager(sqlite_store: SqliteStore) -> None:
    import hashlib
    import hmac

    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        client.create_secret(Name="sentry-secret", SecretString="from-secrets-manager")
        from chalicelib.settings import Settings
        from chalicelib.wiring import build_deps

        deps = build_deps(Settings.from_env({"SENTRY_CLIENT_SECRET_ARN": "sentry-secret"}), clock=FakeClock(),
                          store=sqlite_store, channels={"console": RecordingChannel}, aws_clients={"secretsmanager": client})
        body = json.dumps(load_event("sentry-issue-created.json")).encode()
        good = hmac.new(b"from-secrets-manager", body, hashlib.sha256).hexdigest()
        assert on_sentry_webhook({"Sentry-Hook-Signature": good}, body, deps).status == 200
        assert on_sentry_webhook({"Sentry-Hook-Signature": "0" * 64}, body, deps).status == 401


def test_log_lines_carry_outcomes_not_payloads(sqlite_store: SqliteStore) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("responder")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        deps = make_deps(sqlite_store, FakeClock(), RecordingChannel())
        event = {"Records": [{"Sns": {"MessageId": new_id(), "Type": "Notification",
                                      "Message": "patient Jane Roe jane.roe@example.org 123-45-6789"}}]}
        on_event(event, "sns", deps)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines and lines[0]["outcome"]["kind"] == "unknown"
    text = stream.getvalue()
    for planted in ("Jane Roe", "jane.roe@example.org", "123-45-6789"):
        assert planted not in text


def test_lease_expiry_lets_a_retry_finish_a_delivery_whose_worker_died(sqlite_store: SqliteStore) -> None:
    clock = FakeClock()
    channel = RecordingChannel()
    deps = make_deps(sqlite_store, clock, channel)
    event = sns_event("sns-cloudwatch-alarm-metric.json", message_id=new_id())
    delivery = "sns:" + event["Records"][0]["Sns"]["MessageId"]
    assert sqlite_store.claim_delivery(delivery, clock(), 60) is Claim.CLAIMED  # a worker took it, then died
    with pytest.raises(DeliveryInProgress):  # Lambda's first retry, inside the lease: retried again later
        on_event(event, "sns", deps)
    clock.advance(seconds=61)
    assert on_event(event, "sns", deps)["outcomes"][0]["reason"] == "OPENED"
    assert clock() - sqlite_store.list()[0].opened_at == timedelta(0)
