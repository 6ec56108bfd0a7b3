"""Faults end to end: PagerDuty slow or rate-limiting, DynamoDB throttling. Each ends by showing
that nothing was lost: the incident exists once and the page arrived once."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from chalicelib.errors import TransientError
from chalicelib.handlers import on_event
from chalicelib.models import PageStatus
from chalicelib.notify.channels import ChannelError
from chalicelib.settings import Settings
from chalicelib.store.dynamodb import DynamoStore
from chalicelib.store.sqlite import SqliteStore
from chalicelib.wiring import build_deps
from tests.conftest import (
    FakeClock,
    RecordingChannel,
    config_with_channels,
    create_table,
    load_event,
    make_deps,
    new_id,
    sns_event,
)

T = datetime(2025, 3, 14, 14, 0, tzinfo=UTC)


class SlowThenFastPagerDuty:
    """Times out (as urllib does after its timeout) for the first calls, then accepts."""

    def __init__(self, clock: FakeClock, failures: int, status: int | None = None,
                 retry_after: str | None = None) -> None:
        self.clock, self.failures, self.status, self.retry_after = clock, failures, status, retry_after
        self.calls: list[tuple[datetime, str]] = []

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Any:
        assert timeout <= 5  # a page never waits on PagerDuty longer than that
        if len(self.calls) < self.failures:
            self.calls.append((self.clock.now, "failed"))
            if self.status is None:
                raise ChannelError("connection failed: TimeoutError", retryable=True)
            headers_out = {"Retry-After": self.retry_after} if self.retry_after else {}
            return type("R", (), {"status": self.status, "headers": headers_out, "body": b""})()
        self.calls.append((self.clock.now, json.loads(body)["event_action"]))
        return type("R", (), {"status": 202, "headers": {}, "body": b"{}"})()

    def get(self, url: str, timeout: float) -> Any:
        return type("R", (), {"status": 200, "headers": {}, "body": b""})()


def pagerduty_deps(tmp_path: Path, clock: FakeClock, transport: Any) -> Any:
    config_with_channels(tmp_path, "  pd:\n    type: pagerduty\n    routing_key_env: PD_KEY\n",
                         {"engineer-on-call": "[pd]"})
    settings = Settings.from_env({"RESPONDER_CONFIG_DIR": str(tmp_path), "PD_KEY": "K",
                                  "RESPONDER_AUDIT": f"file://{tmp_path}/audit.jsonl"})
    return build_deps(settings, clock=clock, store=SqliteStore(tmp_path / "s.db"), transport=transport,
                      channels={"console": RecordingChannel})


def sev2(deps: Any) -> str:
    outcome = on_event(load_event("ecs-deployment-failed.json") | {"id": new_id()}, "eventbridge", deps)
    return str(outcome["outcomes"][0]["incident_id"])


def test_pagerduty_timing_out_is_retried_and_delivered_once(tmp_path: Path) -> None:
    clock = FakeClock(T)
    pagerduty = SlowThenFastPagerDuty(clock, failures=2)
    deps = pagerduty_deps(tmp_path, clock, pagerduty)
    incident_id = sev2(deps)
    for _ in range(5):
        clock.advance(minutes=1)
        deps.pipeline.sweep()
    assert [what for _, what in pagerduty.calls] == ["failed", "failed", "trigger"]
    [page] = deps.store.get(incident_id).pages
    assert page.status is PageStatus.SENT and page.attempts == 3


def test_pagerduty_429_retry_after_is_honoured(tmp_path: Path) -> None:
    clock = FakeClock(T)
    pagerduty = SlowThenFastPagerDuty(clock, failures=1, status=429, retry_after="180")
    deps = pagerduty_deps(tmp_path, clock, pagerduty)
    incident_id = sev2(deps)
    [page] = deps.store.get(incident_id).pages
    assert page.status is PageStatus.FAILED and page.next_attempt_at == T + timedelta(seconds=180)
    for _ in range(4):
        clock.advance(minutes=1)
        deps.pipeline.sweep()
    assert [what for _, what in pagerduty.calls] == ["failed", "trigger"]
    assert pagerduty.calls[1][0] >= T + timedelta(seconds=180)


class ThrottledOnce:
    """A DynamoDB client (moto) whose first call of ``operation`` is throttled, as AWS does under load."""

    def __init__(self, client: Any, operation: str) -> None:
        self.client, self.operation, self.throttled = client, operation, False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.client, name)
        if name != self.operation:
            return attr

        def call(**kwargs: Any) -> Any:
            if not self.throttled:
                self.throttled = True
                raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
                                  name)
            return attr(**kwargs)
        return call


@pytest.mark.parametrize("operation", ["put_item", "transact_write_items", "get_item"])
def test_dynamodb_throttling_loses_nothing(operation: str) -> None:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        store = DynamoStore(create_table(client), client=ThrottledOnce(client, operation))
        channel = RecordingChannel()
        deps = make_deps(store, FakeClock(T), channel)
        event = sns_event("sns-cloudwatch-alarm-metric.json", message_id=new_id())
        with pytest.raises(TransientError, match="ProvisionedThroughputExceededException"):
            on_event(event, "sns", deps)  # the Lambda fails: SNS/Lambda retries the delivery
        outcome = on_event(event, "sns", deps)["outcomes"][0]  # the retry
        assert outcome["reason"] == "OPENED"
        [incident] = store.list()
        assert len(channel.sent) == 1 and incident.count == 1
