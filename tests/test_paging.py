"""Page channels and the pager: PagerDuty Events v2, Slack, SNS, console; failures isolated."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.errors import ChannelError
from chalicelib.models import Incident, PageKind, PageRecord, Severity, SignalKind
from chalicelib.notify.channels import ConsoleChannel, PagerDutyChannel, SlackChannel, SnsChannel
from chalicelib.notify.paging import Pager, PageRequest, render
from tests.conftest import T0, load_event

ROUTING_KEY = "R0TESTROUTINGKEY0000000000000000"


class FakeTransport:
    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses) or [202]
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Any:
        self.calls.append((url, json.loads(body)))
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return type("R", (), {"status": status, "headers": {}, "body": b"{}"})()


def page(kind: PageKind = PageKind.TRIGGER, severity: Severity = Severity.SEV1, text: str = "x") -> PageRequest:
    return PageRequest(role="founder-primary", person="giles", channel="pd", kind=kind, text=text,
                       incident_id="inc-abc", severity=severity, source="arn:aws:cloudwatch:…:alarm:a",
                       links=("https://example.com/a",))


def test_pagerduty_trigger_matches_events_v2_shape() -> None:
    transport = FakeTransport(202)
    PagerDutyChannel(lambda: ROUTING_KEY, "https://events.pagerduty.com/v2/enqueue", transport).send(page())
    url, body = transport.calls[0]
    sample = load_event("pagerduty-events-v2-trigger.json")
    assert url == "https://events.pagerduty.com/v2/enqueue"
    assert set(body) <= set(sample) and {"routing_key", "event_action", "dedup_key", "payload"} <= set(body)
    assert set(body["payload"]) <= set(sample["payload"])
    assert body["dedup_key"] == "inc-abc" and body["event_action"] == "trigger"
    assert body["payload"]["severity"] == "critical"


@pytest.mark.parametrize("severity, expected", [(Severity.SEV1, "critical"), (Severity.SEV2, "error"),
                                                (Severity.SEV3, "warning"), (Severity.SEV4, "info")])
def test_pagerduty_severity_mapping(severity: Severity, expected: str) -> None:
    transport = FakeTransport()
    PagerDutyChannel(lambda: ROUTING_KEY, "https://events.eu.pagerduty.com/v2/enqueue", transport).send(
        page(severity=severity))
    assert transport.calls[0][0] == "https://events.eu.pagerduty.com/v2/enqueue"
    assert transport.calls[0][1]["payload"]["severity"] == expected


def test_pagerduty_resolve_shape_and_summary_limit() -> None:
    transport = FakeTransport()
    channel = PagerDutyChannel(lambda: ROUTING_KEY, "https://events.pagerduty.com/v2/enqueue", transport)
    channel.send(page(kind=PageKind.RESOLVE))
    assert set(transport.calls[0][1]) == set(load_event("pagerduty-events-v2-resolve.json"))
    channel.send(page(text="y" * 5000))
    assert len(transport.calls[1][1]["payload"]["summary"]) == 1024


@pytest.mark.parametrize("status, retryable", [(500, True), (429, True), (400, False)])
def test_pagerduty_errors_are_classified_and_never_echo_the_key(status: int, retryable: bool) -> None:
    channel = PagerDutyChannel(lambda: ROUTING_KEY, "https://events.pagerduty.com/v2/enqueue", FakeTransport(status))
    with pytest.raises(ChannelError) as info:
        channel.send(page())
    assert info.value.retryable is retryable and ROUTING_KEY not in str(info.value)


def test_slack_posts_text_and_hides_webhook_url_on_error() -> None:
    url = "https://hooks.slack.com/services/T000/B000/SECRETSECRET"
    transport = FakeTransport(200, 500)
    channel = SlackChannel(lambda: url, transport)
    channel.send(page(text="[SEV1] OPEN alarm: a"))
    sent_to, body = transport.calls[0]
    assert sent_to == url and body["text"] == "[SEV1] OPEN alarm: a"  # the notification's fallback
    assert [b["type"] for b in body["blocks"]] == ["section", "actions"]  # tests/test_slack.py: the buttons
    with pytest.raises(ChannelError) as info:
        channel.send(page())
    assert "SECRET" not in str(info.value)


def test_sns_channel_publishes_with_moto() -> None:
    with mock_aws():
        sns = boto3.client("sns", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        topic = sns.create_topic(Name="founders-sms")["TopicArn"]
        queue = sqs.create_queue(QueueName="q")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        SnsChannel(lambda: topic, lambda: sns).send(page(text="[SEV1] OPEN alarm: a"))
        [message] = sqs.receive_message(QueueUrl=queue)["Messages"]
        assert json.loads(message["Body"])["Message"] == "[SEV1] OPEN alarm: a"
        with pytest.raises(ChannelError, match="SNS publish failed: NotFound"):
            SnsChannel(lambda: topic + "-missing", lambda: sns).send(page())


def test_console_channel_prints() -> None:
    stream = io.StringIO()
    ConsoleChannel(stream).send(page(text="hello"))
    assert "PAGE trigger → giles (founder-primary): hello" in stream.getvalue()


def test_pager_names_an_unconfigured_channel() -> None:
    with pytest.raises(ChannelError, match="channel 'missing' is not configured"):
        Pager({}).send(record("missing"), incident())


def record(channel: str) -> PageRecord:
    return PageRecord(id=f"s/0:giles:{channel}", step="s/0", role="founder-primary", person="giles",
                      channel=channel, kind=PageKind.TRIGGER, at=T0, text="x")


def incident(severity: Severity = Severity.SEV1) -> Incident:
    return Incident(id="inc-1", key="k", kind=SignalKind.ALARM, title="auth-login-5xx", resource="arn:a",
                    severity=severity, owner="founder-primary", playbook=None, rule="r", opened_at=T0,
                    last_seen=T0)


def test_page_text_is_built_from_safe_fields() -> None:
    assert render(incident(), PageKind.TRIGGER) == "[SEV1] OPEN alarm: auth-login-5xx | arn:a | incident inc-1"
    assert render(incident(), PageKind.RESOLVE).startswith("[SEV1] RESOLVED alarm: auth-login-5xx")


def test_retry_after_header_is_honoured_in_the_error() -> None:
    class Limited(FakeTransport):
        def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Any:
            super().post(url, body, headers, timeout)
            return type("R", (), {"status": 429, "headers": {"Retry-After": "120"}, "body": b""})()

    with pytest.raises(ChannelError) as info:
        PagerDutyChannel(lambda: ROUTING_KEY, "https://events.pagerduty.com/v2/enqueue", Limited()).send(page())
    assert info.value.retryable and info.value.retry_after == 120.0
