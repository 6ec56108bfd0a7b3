"""Attacks on issues 16 and 17 (the source registry, the hot path, the sweep fan-out, manual pages):
each test is an input that broke a promise before its fix."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.cli import main
from chalicelib.decisions.incidents import Reason
from chalicelib.handlers import on_event, sweep
from chalicelib.notify.sweep_queue import SweepQueue
from chalicelib.wiring import Deps
from tests.conftest import (
    FakeClock,
    RecordingChannel,
    create_table,
    installed,
    load_event,
    make_deps,
    new_id,
    sns_event,
)
from tests.test_sweep_isolation import sev1_on
from tests.test_sweep_scale import DUE, FlakySqs, Stack, stack  # noqa: F401  (stack: the fixture)

ALARM = "sns-cloudwatch-alarm-metric.json"
STORM = 11  # the trigger, then repeats


@pytest.fixture
def deps(any_store: Any, clock: FakeClock, console: RecordingChannel) -> Iterator[Deps]:
    yield from installed(make_deps(any_store, clock, console))


def handled(deps: Deps, event: dict[str, Any]) -> dict[str, Any]:
    [outcome] = on_event(event, "sns", deps)["outcomes"]
    return outcome


def test_unknown_alarm_message_repeats_keep_their_raw_payload(deps: Deps) -> None:
    """An SNS alarm message missing its AlarmArn converts to ``unknown``; every delivery of it must
    keep its raw payload (what it said) even once its incident only counts repeats. The hot path
    used to count such a repeat and store only the outcome summary: the payload was gone."""
    events = [sns_event(ALARM, message_id=f"m-{n}", AlarmArn=None, NewStateReason=f"reason {n}")
              for n in range(STORM + 3)]
    outcomes = [handled(deps, event) for event in events]
    assert {o["kind"] for o in outcomes} == {"unknown"}
    for n in range(STORM, STORM + 3):
        kept = deps.store.get_delivery(f"sns:m-{n}")["outcome"]
        assert f"reason {n}" in kept["raw"]


def fresh(name: str) -> dict[str, Any]:
    event = copy.deepcopy(load_event(name))
    event["id"] = new_id()
    return event


@pytest.mark.parametrize("any_store", ["sqlite"], indirect=True)
def test_context_join_never_swallows_a_signal_more_severe_than_the_incident(
        deps: Deps, clock: FakeClock, console: RecordingChannel) -> None:
    """A Sev2 AWS Health issue on Bedrock joined any open ``ai-provider-outage`` incident as context
    and paged nobody, also when that incident was a Sev4 (its alarm's description says so): the
    Sev2 was silenced. A signal more severe than the incident it would join pages on its own."""
    name = "ai-gateway-anthropic-latency"
    alarm = sns_event(ALARM, message_id=new_id(), AlarmName=name,
                      AlarmArn=f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}",
                      AlarmDescription="Latency creeping up.\nseverity: SEV4",
                      Trigger={"Namespace": "Platform/AIGateway", "MetricName": "ExecutorFailures", "Dimensions": []})
    [low] = on_event(alarm, "sns", deps)["outcomes"]
    assert (low["severity"], low["playbook"]) == (4, "ai-provider-outage")
    pages = len(console.sent)
    clock.advance(minutes=3)
    [health] = on_event(fresh("aws-health-issue-bedrock-open.json"), "eventbridge", deps)["outcomes"]
    assert health["reason"] != Reason.ANNOTATED.value and health["severity"] == 2
    assert len(console.sent) > pages


@pytest.mark.parametrize("any_store", ["sqlite"], indirect=True)
def test_a_guardduty_user_name_that_is_an_email_reaches_no_page_or_record(
        deps: Deps, console: RecordingChannel) -> None:
    """GuardDuty names the IAM user or role session of a finding (``accessKeyDetails.userName``),
    and people name users after their e-mail. It was the incident's resource: in the Sev1 page
    and the stored record, unmasked."""
    event = fresh("guardduty-finding-instance-credential-exfiltration.json")
    event["detail"]["resource"]["accessKeyDetails"] |= {"userName": "jane.doe@clinic.example", "userType": "IAMUser"}
    [outcome] = on_event(event, "eventbridge", deps)["outcomes"]
    assert outcome["severity"] == 1 and console.sent
    stored = deps.store.get(outcome["incident_id"])
    assert stored is not None
    for text in [repr(page) for page in console.sent] + [stored.model_dump_json()]:
        assert "jane.doe@clinic.example" not in text
    assert "[scrubbed]" in stored.resource


@pytest.mark.parametrize("any_store", ["dynamodb"], indirect=True)
def test_an_incident_written_before_the_sharded_due_index_is_swept_after_the_backfill(
        deps: Deps, clock: FakeClock) -> None:
    """An incident saved by the old code carries ``due_pk`` and no ``due_shard``: the sharded
    index never lists it, so its next escalation step never pages (README: "a one-off scan; not
    written yet"). ``backfill_due_shards`` gives every such item its shard; the sweep sees it."""
    store = deps.store
    opened = handled(deps, sns_event(ALARM, message_id="m-old"))
    incident = store.get(opened["incident_id"])
    assert incident is not None and incident.next_action_at is not None
    store.client.update_item(TableName=store.table, Key={"pk": {"S": f"INCIDENT#{incident.id}"}},
                             UpdateExpression="SET due_pk = :due REMOVE due_shard",
                             ExpressionAttributeValues={":due": {"S": "DUE"}})
    later = incident.next_action_at + timedelta(minutes=1)
    assert store.due(later) == []  # the page path went silent for it
    assert store.backfill_due_shards() == 1
    assert [d.incident_id for d in store.due(later)] == [incident.id]
    assert store.backfill_due_shards() == 0  # once is enough


def test_the_backfill_runs_from_the_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with mock_aws():
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        client = boto3.client("dynamodb", region_name="us-east-1")
        table = create_table(client)
        client.put_item(TableName=table, Item={"pk": {"S": "INCIDENT#inc-old"}, "due_pk": {"S": "DUE"},
                                               "due_at": {"N": "100"}})
        monkeypatch.setenv("RESPONDER_STORE", f"dynamodb://{table}")
        assert main(["backfill-due-shards"]) == 0
        assert json.loads(capsys.readouterr().out) == {"backfilled": 1}
        assert "due_shard" in client.get_item(TableName=table, Key={"pk": {"S": "INCIDENT#inc-old"}})["Item"]


def test_a_sweep_queue_that_refuses_every_send_does_not_silence_the_escalation(request: pytest.FixtureRequest) -> None:
    """The queue's key policy denies the sweep (or the queue was deleted): every hand-off failed,
    each incident "stayed due", and the next step of every open incident never paged, minute
    after minute. What the queue refused is advanced in-process, in the time the sweep has."""
    from botocore.exceptions import ClientError

    world: Stack = request.getfixturevalue("stack")
    incident_id = sev1_on(world.deps, "backup-vault-prod")
    denied = ClientError({"Error": {"Code": "AccessDenied"}}, "SendMessageBatch")
    world.deps.pipeline.escalator.queue = SweepQueue(lambda: FlakySqs([denied] * 5), world.queue_url)
    world.clock.now = DUE
    report = sweep(world.deps)
    assert report["errors"] == 1 and report["in_process"]["incidents"] == 1
    assert [p.incident_id for p in world.console.sent if p.person == "christian"] == [incident_id]
    assert world.deps.pipeline.escalator.metrics.added == [("SweepIncidentFailed", 1)]  # still alarmed
