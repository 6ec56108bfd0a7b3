"""Page channels and the pager: PagerDuty Events v2, Slack, SNS, console; failures isolated."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib import config
from chalicelib.channels import ConsoleChannel, PagerDutyChannel, SlackChannel, SnsChannel
from chalicelib.errors import ChannelError
from chalicelib.incidents import Reason
from chalicelib.models import Incident, PageKind, Severity, SignalKind
from chalicelib.paging import Pager, PageRequest, plan_pages, render
from tests.conftest import T0, RecordingChannel, load_event

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
    assert transport.calls[0] == (url, {"text": "[SEV1] OPEN alarm: a"})
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


def test_one_failing_channel_never_blocks_the_others() -> None:
    good, bad = RecordingChannel(), RecordingChannel(fail=True)
    pager = Pager({"good": lambda: good, "bad": lambda: bad})
    requests = [page().model_copy(update={"channel": c}) for c in ("bad", "good", "missing")]
    records = pager.deliver(requests, T0)
    assert [r.status for r in records] == ["failed", "sent", "failed"]
    assert "recording channel set to fail" in (records[0].error or "")
    assert "not configured" in (records[2].error or "")
    assert len(good.sent) == 1


def incident(severity: Severity = Severity.SEV1) -> Incident:
    return Incident(id="inc-1", key="k", kind=SignalKind.ALARM, title="auth-login-5xx", resource="arn:a",
                    severity=severity, owner="founder-primary", playbook=None, rule="r", opened_at=T0,
                    last_seen=T0)


def test_plan_pages_follows_routing_and_matrix() -> None:
    cfg = config.load()
    [request] = plan_pages(Reason.OPENED, incident(), cfg)
    assert (request.role, request.person, request.channel) == ("founder-primary", "giles", "console")
    assert plan_pages(Reason.ALREADY_OPEN, incident(), cfg) == []
    assert plan_pages(Reason.OPENED, incident(Severity.SEV4).model_copy(update={"owner": "backlog"}), cfg) == []
    assert render(incident(), PageKind.TRIGGER).startswith("[SEV1] OPEN alarm: auth-login-5xx | arn:a | incident inc-1")
