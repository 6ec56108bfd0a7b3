"""Every inbound sample parses into the signal its format implies; garbage becomes ``unknown``."""

from __future__ import annotations

import json

import pytest

from chalicelib.models import SignalKind, Transition
from chalicelib.sources import to_signals
from tests.conftest import T0, inbound_event_files, load_event, sns_event

# file → (kind, transition, incident key)
EXPECTED = {
    "cloudwatch-alarm-lambda-action-composite.json": (SignalKind.ALARM, Transition.TRIGGER, "alarm:arn:aws:cloudwatch:us-east-1:123456789012:alarm:SuppressionDemo.Main"),
    "cloudwatch-alarm-lambda-action-metric-math.json": (SignalKind.ALARM, Transition.TRIGGER, "alarm:arn:aws:cloudwatch:eu-west-1:123456789012:alarm:test_alarm"),
    "ecs-deployment-completed.json": (SignalKind.ECS_DEPLOYMENT, Transition.RESOLVE, "ecs-service:arn:aws:ecs:us-east-1:123456789012:service/prod-cluster/checkout-api"),
    "ecs-deployment-failed.json": (SignalKind.ECS_DEPLOYMENT, Transition.TRIGGER, "ecs-service:arn:aws:ecs:us-east-1:123456789012:service/prod-cluster/checkout-api"),
    "ecs-deployment-in-progress.json": (SignalKind.ECS_DEPLOYMENT, Transition.NONE, "ecs-service:arn:aws:ecs:us-east-1:123456789012:service/prod-cluster/checkout-api"),
    "ecs-deployment-rollback-in-progress.json": (SignalKind.ECS_DEPLOYMENT, Transition.NONE, "ecs-service:arn:aws:ecs:us-east-1:123456789012:service/prod-cluster/checkout-api"),
    "ecs-task-state-change-running.json": (SignalKind.ECS_TASK, Transition.NONE, None),
    "ecs-task-state-change-stopped.json": (SignalKind.ECS_TASK, Transition.NONE, None),
    "eventbridge-cloudtrail-s3-deleteobject-bypass-governance.json": (SignalKind.CLOUDTRAIL, Transition.TRIGGER, None),
    "eventbridge-cloudtrail-s3-deleteobject-delete-marker.json": (SignalKind.CLOUDTRAIL, Transition.TRIGGER, None),
    "eventbridge-cloudtrail-s3-deleteobject-denied.json": (SignalKind.CLOUDTRAIL, Transition.TRIGGER, None),
    "eventbridge-cloudtrail-s3-putbucketversioning-suspended.json": (SignalKind.CLOUDTRAIL, Transition.TRIGGER, None),
    "eventbridge-cloudtrail-s3-putobjectlegalhold.json": (SignalKind.CLOUDTRAIL, Transition.TRIGGER, None),
    "eventbridge-cloudtrail-s3-putobjectlockconfiguration.json": (SignalKind.CLOUDTRAIL, Transition.TRIGGER, None),
    "eventbridge-cloudtrail-s3-putobjectretention-denied.json": (SignalKind.CLOUDTRAIL, Transition.TRIGGER, None),
    "eventbridge-cloudtrail-s3-putobjectretention.json": (SignalKind.CLOUDTRAIL, Transition.TRIGGER, None),
    "eventbridge-cloudwatch-alarm-configuration-change-update.json": (SignalKind.ALARM, Transition.NONE, "alarm:arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServerCpuTooHigh"),
    "eventbridge-cloudwatch-alarm-state-change-anomaly.json": (SignalKind.ALARM, Transition.TRIGGER, None),
    "eventbridge-cloudwatch-alarm-state-change-composite.json": (SignalKind.ALARM, Transition.TRIGGER, "alarm:arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServiceAggregatedAlarm"),
    "eventbridge-cloudwatch-alarm-state-change-metric-math.json": (SignalKind.ALARM, Transition.TRIGGER, None),
    "eventbridge-cloudwatch-alarm-state-change-ok.json": (SignalKind.ALARM, Transition.RESOLVE, "alarm:arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServerCpuTooHigh"),
    "eventbridge-cloudwatch-alarm-state-change-single-metric.json": (SignalKind.ALARM, Transition.TRIGGER, "alarm:arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServerCpuTooHigh"),
    "eventbridge-s3-object-deleted-direct.json": (SignalKind.S3_OBJECT, Transition.NONE, None),
    "pagerduty-webhook-incident-acknowledged.json": (SignalKind.PAGERDUTY, Transition.NONE, None),
    "pagerduty-webhook-incident-resolved.json": (SignalKind.PAGERDUTY, Transition.NONE, None),
    "pagerduty-webhook-incident-triggered.json": (SignalKind.PAGERDUTY, Transition.NONE, None),
    "rds-db-instance-event-failover.json": (SignalKind.RDS_EVENT, Transition.TRIGGER, None),
    "rds-db-instance-event-restarted.json": (SignalKind.RDS_EVENT, Transition.TRIGGER, None),
    "rds-db-cluster-event-patched.json": (SignalKind.RDS_EVENT, Transition.TRIGGER,
                                          "rds:arn:aws:rds:us-east-1:123456789012:cluster:my-db-cluster:RDS-EVENT-0173"),
    "sentry-error-created.json": (SignalKind.SENTRY_ERROR, Transition.TRIGGER, "sentry:issue:1170820242"),
    "sentry-event-alert.json": (SignalKind.SENTRY_EVENT_ALERT, Transition.TRIGGER, "sentry:issue:1635244907"),
    "sentry-installation-created.json": (SignalKind.SENTRY_INSTALLATION, Transition.NONE, None),
    "sentry-issue-assigned.json": (SignalKind.SENTRY_ISSUE, Transition.NONE, None),
    "sentry-issue-created.json": (SignalKind.SENTRY_ISSUE, Transition.TRIGGER, "sentry:issue:1635244907"),
    "sentry-issue-ignored.json": (SignalKind.SENTRY_ISSUE, Transition.RESOLVE, None),
    "sentry-issue-resolved.json": (SignalKind.SENTRY_ISSUE, Transition.RESOLVE, None),
    "sentry-legacy-webhooks-plugin-event.json": (SignalKind.SENTRY_ISSUE, Transition.TRIGGER, "sentry:issue:4311163364"),
    "sentry-metric-alert-critical.json": (SignalKind.SENTRY_METRIC_ALERT, Transition.TRIGGER, "sentry:metric:1002003:57"),
    "sentry-metric-alert-resolved.json": (SignalKind.SENTRY_METRIC_ALERT, Transition.RESOLVE, None),
    "sns-cloudwatch-alarm-anomaly-detection.json": (SignalKind.ALARM, Transition.TRIGGER, None),
    "sns-cloudwatch-alarm-composite.json": (SignalKind.ALARM, Transition.TRIGGER, "alarm:arn:aws:cloudwatch:us-east-1:123456789012:alarm:checkout-service-unhealthy"),
    "sns-cloudwatch-alarm-insufficient-data.json": (SignalKind.ALARM, Transition.NONE, None),
    "sns-cloudwatch-alarm-metric-math.json": (SignalKind.ALARM, Transition.TRIGGER, None),
    "sns-cloudwatch-alarm-metric.json": (SignalKind.ALARM, Transition.TRIGGER, "alarm:arn:aws:cloudwatch:us-east-1:123456789012:alarm:checkout-api-alb-5xx-high"),
    "sns-cloudwatch-alarm-ok.json": (SignalKind.ALARM, Transition.RESOLVE, "alarm:arn:aws:cloudwatch:us-east-1:123456789012:alarm:checkout-api-alb-5xx-high"),
    "sns-http-notification-cloudwatch-alarm.json": (SignalKind.ALARM, Transition.TRIGGER, "alarm:arn:aws:cloudwatch:us-east-1:123456789012:alarm:checkout-api-alb-5xx-high"),
    # A subscription confirmation needs a human: it is kept as an unknown signal.
    "sns-http-subscription-confirmation.json": (SignalKind.UNKNOWN, Transition.TRIGGER, "unknown:sns:sns/SubscriptionConfirmation"),
    # the sources the runbook implies (issue 16 §2; more in test_new_sources.py)
    "aws-backup-job-aborted.json": ("backup", Transition.TRIGGER, "backup:arn:aws:rds:us-east-1:123456789012:db:credentialing-prod"),
    "aws-backup-job-failed.json": ("backup", Transition.TRIGGER, "backup:arn:aws:rds:us-east-1:123456789012:db:credentialing-prod"),
    "aws-health-issue-bedrock-closed.json": ("aws_health", Transition.RESOLVE, "aws-health:arn:aws:health:us-east-1::event/BEDROCK/AWS_BEDROCK_OPERATIONAL_ISSUE/AWS_BEDROCK_OPERATIONAL_ISSUE_3f1c9a7e2b"),
    "aws-health-issue-bedrock-open.json": ("aws_health", Transition.TRIGGER, "aws-health:arn:aws:health:us-east-1::event/BEDROCK/AWS_BEDROCK_OPERATIONAL_ISSUE/AWS_BEDROCK_OPERATIONAL_ISSUE_3f1c9a7e2b"),
    "aws-health-issue-rds-open.json": ("aws_health", Transition.TRIGGER, None),
    "aws-health-scheduled-rds-maintenance.json": ("aws_health", Transition.TRIGGER, None),
    "codebuild-build-state-change-deploy-failed.json": ("codebuild", Transition.TRIGGER, "codebuild:credentialing-deploy:deploy"),
    "codebuild-build-state-change-rollback-failed.json": ("codebuild", Transition.TRIGGER, "codebuild:credentialing-deploy:rollback"),
    "ecs-task-state-change-stopped-health-check.json": (SignalKind.ECS_TASK, Transition.TRIGGER, "ecs-task:arn:aws:ecs:us-east-1:123456789012:cluster/prod-cluster:service:checkout-api"),
    "eventbridge-cloudtrail-rds-deletedbsnapshot.json": (SignalKind.CLOUDTRAIL, Transition.TRIGGER, None),
    "eventbridge-cloudtrail-rds-modifydbinstance-retention-0.json": (SignalKind.CLOUDTRAIL, Transition.TRIGGER, None),
    "eventbridge-cloudtrail-rds-modifydbinstance-retention-1.json": (SignalKind.CLOUDTRAIL, Transition.TRIGGER, None),
    "eventbridge-cloudtrail-s3-putbucketlifecycleconfiguration.json": (SignalKind.CLOUDTRAIL, Transition.TRIGGER, None),
    "eventbridge-cloudtrail-s3-putbucketversioning-source-receipts.json": (SignalKind.CLOUDTRAIL, Transition.TRIGGER, None),
    "eventbridge-cloudtrail-secretsmanager-rotationfailed.json": ("secrets_rotation", Transition.TRIGGER, "secret:arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/vendors/nursys-api-key-Ab12Cd"),
    "guardduty-finding-instance-credential-exfiltration.json": ("guardduty", Transition.TRIGGER, "guardduty:a8c4b2e91f7d3a60c5e2b9d48f1a7c3e"),
    "guardduty-finding-recon-low.json": ("guardduty", Transition.TRIGGER, None),
    "guardduty-finding-s3-exfiltration.json": ("guardduty", Transition.TRIGGER, None),
    "rds-db-cluster-event-failover.json": (SignalKind.RDS_EVENT, Transition.TRIGGER, "rds:arn:aws:rds:us-east-1:123456789012:cluster:credentialing-aurora-prod:RDS-EVENT-0071"),
    "rds-db-instance-event-backups-disabled.json": (SignalKind.RDS_EVENT, Transition.TRIGGER, None),
    "rds-db-instance-event-low-storage.json": (SignalKind.RDS_EVENT, Transition.TRIGGER, None),
    "rds-db-instance-event-shutdown.json": (SignalKind.RDS_EVENT, Transition.TRIGGER, None),
    "rds-db-instance-event-storage-full.json": (SignalKind.RDS_EVENT, Transition.TRIGGER, None),
    "rds-db-snapshot-event-failed.json": (SignalKind.RDS_EVENT, Transition.TRIGGER, None),
}


def test_every_inbound_sample_has_an_expectation() -> None:
    assert set(inbound_event_files()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_parses_to_expected_signal(name: str) -> None:
    kind, transition, key = EXPECTED[name]
    [signal] = to_signals(load_event(name), T0)
    assert (signal.kind, signal.transition) == (kind, transition)
    if key:
        assert signal.incident_key == key
    assert signal.delivery_id and signal.title
    if kind is not SignalKind.UNKNOWN:
        assert signal.unknown_reason is None


def test_sns_and_eventbridge_of_one_alarm_share_the_incident_key() -> None:
    [via_sns] = to_signals(load_event("sns-cloudwatch-alarm-metric.json"), T0)
    [via_http] = to_signals(load_event("sns-http-notification-cloudwatch-alarm.json"), T0)
    assert via_sns.incident_key == via_http.incident_key
    assert via_sns.delivery_id != via_http.delivery_id


def test_alarm_facts_from_each_trigger_shape() -> None:
    [metric] = to_signals(load_event("sns-cloudwatch-alarm-metric.json"), T0)
    assert metric.fact_values("namespace") == ("AWS/ApplicationELB",)
    assert metric.fact_values("metric") == ("HTTPCode_Target_5XX_Count",)
    assert metric.dimensions == (("LoadBalancer", "app/checkout-alb/50dc6c495c0c9188"),)
    assert metric.region == "us-east-1"  # from the ARN, not the display name
    [anomaly] = to_signals(load_event("sns-cloudwatch-alarm-anomaly-detection.json"), T0)
    assert anomaly.fact_values("namespace") == ("AWS/RDS",) and "CPUUtilization" in anomaly.fact_values("metric")
    [eb] = to_signals(load_event("eventbridge-cloudwatch-alarm-state-change-metric-math.json"), T0)
    assert set(eb.fact_values("metric")) == {"NetworkIn", "NetworkOut"}
    assert eb.dimensions == (("InstanceId", "i-12345678901234567"),)


def test_alarm_state_change_time_is_parsed_with_its_offset() -> None:
    [signal] = to_signals(load_event("sns-cloudwatch-alarm-metric.json"), T0)
    assert signal.occurred_at.isoformat() == "2025-03-14T09:42:31.774000+00:00"


def test_cloudtrail_signal_keeps_object_key_out_of_title_and_links() -> None:
    event = load_event("eventbridge-cloudtrail-s3-deleteobject-bypass-governance.json")
    [signal] = to_signals(event, T0)
    object_key = event["detail"]["requestParameters"]["key"]
    assert object_key not in signal.model_dump_json()
    details = dict(signal.details)
    assert details["principal"].endswith("jdoe@example.com")
    assert details["source_ip"] == "203.0.113.24" and details["outcome"] == "allowed"
    assert signal.fact("version_targeted") is True
    assert signal.fact("caller_account") == signal.account == "123456789012" and signal.fact("caller") == "internal"


@pytest.mark.parametrize("payload, reason_part", [
    ("plain text garbage", "no converter"),
    ({"hello": "world"}, "no converter"),
    ([1, 2, 3], "no converter"),
    (None, "no converter"),
    ({"version": "0", "id": "x1", "detail-type": "Brand New Thing", "source": "aws.new", "detail": {}},
     "no converter for detail-type 'Brand New Thing'"),
    ({"Records": [{"Sns": {"MessageId": "m-1", "Type": "Notification", "Message": "disk full on host"}}]},
     "not JSON"),
    ({"Records": [{"Sns": {"MessageId": "m-2", "Type": "Notification", "Message": "{\"a\": 1}"}}]},
     "not a CloudWatch alarm"),
    ({"Records": [{"Sns": {"MessageId": "m-3", "Message": "{\"AlarmName\": \"x\", \"NewStateValue\": \"ALARM\"}"}}]},
     "AlarmArn"),
    ({"Records": [{"NotSns": {}}]}, "no converter"),
    ({"action": "created", "data": {"comment": {}}, "installation": {"uuid": "u"}}, "not handled"),
    ({"version": "0", "id": "x2", "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch",
      "detail": {"alarmName": 5}}, "while converting"),
])
def test_unrecognised_input_becomes_unknown_signal_with_reason(payload: object, reason_part: str) -> None:
    [signal] = to_signals(payload, T0, "test")
    assert signal.kind is SignalKind.UNKNOWN
    assert signal.unknown_reason and reason_part in signal.unknown_reason
    assert signal.transition is Transition.TRIGGER  # it opens an incident: a human looks at it


def test_plain_text_sns_redelivery_keeps_its_message_id() -> None:
    event = {"Records": [{"Sns": {"MessageId": "abc", "Type": "Notification", "Message": "not json"}}]}
    [first] = to_signals(event, T0)
    [again] = to_signals(json.loads(json.dumps(event)), T0)
    assert first.delivery_id == again.delivery_id == "sns:abc"


def test_edited_sample_helper_changes_only_the_alarm_fields() -> None:
    event = sns_event("sns-cloudwatch-alarm-metric.json", message_id="m-x", AlarmName="login-errors")
    [signal] = to_signals(event, T0)
    assert signal.fact("alarm_name") == "login-errors" and signal.delivery_id == "sns:m-x"


def test_every_record_of_an_sns_envelope_becomes_a_signal() -> None:
    event = load_event("sns-cloudwatch-alarm-metric.json")
    event["Records"].append(7)
    alarm, broken = to_signals(event, T0)
    assert alarm.kind is SignalKind.ALARM
    assert broken.kind is SignalKind.UNKNOWN and "Records[1] has no Sns object" in (broken.unknown_reason or "")
