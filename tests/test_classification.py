"""The shipped severity config encodes the runbook by what things are (issue table, row by row).

Samples without a row of their own are edited copies of real samples: only the fields
the row is about change (metric, names, caller account, level).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from chalicelib import config
from chalicelib.decisions.classify import classify
from chalicelib.models import Severity
from chalicelib.sources import to_signals
from tests.conftest import T0, load_event, sns_event

CONFIG = config.load()


def classify_payload(payload: Any) -> tuple[int, str | None, str]:
    [signal] = to_signals(payload, T0)
    c = classify(signal, CONFIG.severity)
    return c.severity.value, c.playbook, c.owner


def metric_alarm(name: str, namespace: str, metric: str, dims: list[tuple[str, str]] | None = None,
                 description: str | None = None) -> dict[str, Any]:
    return sns_event(
        "sns-cloudwatch-alarm-metric.json", AlarmName=name, AlarmDescription=description,
        AlarmArn=f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}",
        Trigger={"MetricName": metric, "Namespace": namespace,
                 "Dimensions": [{"value": v, "name": k} for k, v in (dims or [])]})


def cloudtrail(name: str, caller_account: str | None = None) -> dict[str, Any]:
    event = copy.deepcopy(load_event(name))
    if caller_account:
        event["detail"]["userIdentity"]["accountId"] = caller_account
    return event


# --- real samples, unchanged --------------------------------------------------------------

SAMPLES = {
    "eventbridge-cloudtrail-s3-putobjectretention.json": (1, "object-lock-alarm", "founder-primary"),
    "eventbridge-cloudtrail-s3-putobjectretention-denied.json": (1, "object-lock-alarm", "founder-primary"),
    "eventbridge-cloudtrail-s3-putobjectlegalhold.json": (1, "object-lock-alarm", "founder-primary"),
    "eventbridge-cloudtrail-s3-putobjectlockconfiguration.json": (1, "object-lock-alarm", "founder-primary"),
    "eventbridge-cloudtrail-s3-deleteobject-bypass-governance.json": (1, "object-lock-alarm", "founder-primary"),
    "eventbridge-cloudtrail-s3-deleteobject-denied.json": (1, "object-lock-alarm", "founder-primary"),
    "eventbridge-cloudtrail-s3-putbucketversioning-suspended.json": (1, "object-lock-alarm", "founder-primary"),
    # a delete without versionId only adds a delete marker under Object Lock
    "eventbridge-cloudtrail-s3-deleteobject-delete-marker.json": (4, None, "backlog"),
    "eventbridge-s3-object-deleted-direct.json": (4, None, "backlog"),
    "ecs-deployment-failed.json": (2, "deploy-rollback", "engineering-oncall"),
    "ecs-deployment-completed.json": (2, "deploy-rollback", "engineering-oncall"),
    "sentry-metric-alert-critical.json": (2, None, "engineering-oncall"),
    "sentry-issue-created.json": (3, None, "engineering-daytime"),
    "sentry-event-alert.json": (3, None, "engineering-daytime"),
    "sentry-error-created.json": (3, None, "engineering-daytime"),
    "rds-db-instance-event-failover.json": (2, None, "engineering-oncall"),
    "sns-cloudwatch-alarm-metric-math.json": (2, None, "engineering-oncall"),
    # no rule: Sev3, no playbook
    # the real sample is the checkout ALB's target 5xx count: customer-facing, Sev2 whatever its name
    "sns-cloudwatch-alarm-metric.json": (2, None, "engineering-oncall"),
    "sns-cloudwatch-alarm-composite.json": (3, None, "engineering-daytime"),
    "eventbridge-cloudwatch-alarm-state-change-single-metric.json": (3, None, "engineering-daytime"),
    "sns-http-subscription-confirmation.json": (3, None, "engineering-daytime"),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_is_classified_as_the_runbook_says(name: str) -> None:
    assert classify_payload(load_event(name)) == SAMPLES[name]


# --- rows of the table built from edited samples ------------------------------------------------

VARIANTS = {
    "rds DatabaseConnections": (metric_alarm("orders-db-conn-high", "AWS/RDS", "DatabaseConnections",
                                             [("DBInstanceIdentifier", "orders-db-prod")]), 2, "db-connection-saturation"),
    "auth word in alarm name": (metric_alarm("workos-callback-errors", "App/Web", "Errors"), 1, "auth-outage"),
    "auth word camelCase": (metric_alarm("CognitoSignInFailures", "App/Web", "Errors"), 1, "auth-outage"),
    "auth word in namespace": (metric_alarm("p99-high", "Platform/Auth", "Latency"), 1, "auth-outage"),
    "auth word in dimension value": (metric_alarm("errors-high", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count",
                                                  [("TargetGroup", "targetgroup/login-svc/73e2d6bc24d8a067")]), 1, "auth-outage"),
    "sso word": (metric_alarm("sso-saml-assertion-failures", "App/Web", "Errors"), 1, "auth-outage"),
    "ai gateway camelCase namespace": (metric_alarm("executor-failures", "AIGateway", "ExecutorFailures"), 2, "ai-provider-outage"),
    "ai-gateway hyphenated": (metric_alarm("ai-gateway-executor-errors", "App/Web", "Errors"), 2, "ai-provider-outage"),
    "anthropic": (metric_alarm("anthropic-5xx", "App/Web", "Errors"), 2, "ai-provider-outage"),
    "bedrock": (metric_alarm("BedrockThrottles", "App/Web", "Throttles"), 2, "ai-provider-outage"),
    "npdb adapter": (metric_alarm("npdb-adapter-errors", "App/Adapters", "Errors"), 2, "source-authority-down"),
    "state board phrase": (metric_alarm("StateBoardLookupFailures", "App/Adapters", "Failures"), 2, "source-authority-down"),
    "nursys": (metric_alarm("nursys-timeouts", "App/Adapters", "Timeouts"), 2, "source-authority-down"),
    "dea": (metric_alarm("dea-verification-5xx", "App/Adapters", "Errors"), 2, "source-authority-down"),
    "source authority phrase": (metric_alarm("source-authority-latency", "App/Adapters", "Latency"), 2, "source-authority-down"),
    "sentry tooling": (metric_alarm("sentry-ingest-failures", "App/Ops", "Failures"), 3, "observability-outage"),
    "telemetry tooling": (metric_alarm("otel-telemetry-exporter-down", "App/Ops", "Up"), 3, "observability-outage"),
    "no healthy targets": (metric_alarm("checkout-no-healthy-hosts", "AWS/ApplicationELB", "HealthyHostCount"), 1, None),
    "unhealthy host count": (metric_alarm("checkout-unhealthy", "AWS/NetworkELB", "UnHealthyHostCount"), 1, None),
    "route 53 health check": (metric_alarm("api-health-check", "AWS/Route53", "HealthCheckStatus"), 1, None),
    "synthetics canary": (metric_alarm("checkout-canary", "CloudWatchSynthetics", "SuccessPercent"), 1, None),
    # whole tokens only, never substrings
    "author is not auth": (metric_alarm("author-service-errors", "App/Web", "Errors"), 3, None),
    "idea is not dea": (metric_alarm("idea-board-errors", "App/Web", "Errors"), 3, None),
    "oauthproxy is not auth": (metric_alarm("oauthproxy-errors", "App/Web", "Errors"), 3, None),
    "blogin is not login": (metric_alarm("blogin-errors", "App/Web", "Errors"), 3, None),
    # Object Lock calls from another account are Sev2
    "retention from another account": (cloudtrail("eventbridge-cloudtrail-s3-putobjectretention.json", "999988887777"), 2, "object-lock-alarm"),
    "version delete from another account": (cloudtrail("eventbridge-cloudtrail-s3-deleteobject-denied.json", "999988887777"), 2, "object-lock-alarm"),
    "versioning suspended from another account": (cloudtrail("eventbridge-cloudtrail-s3-putbucketversioning-suspended.json", "999988887777"), 2, "object-lock-alarm"),
}


@pytest.mark.parametrize("case", sorted(VARIANTS))
def test_table_row(case: str) -> None:
    payload, severity, playbook = VARIANTS[case]
    got_severity, got_playbook, _ = classify_payload(payload)
    assert (got_severity, got_playbook) == (severity, playbook)


def test_sentry_metric_alert_warning_is_sev3() -> None:
    event = load_event("sentry-metric-alert-critical.json")
    event["action"] = "warning"
    assert classify_payload(event)[:2] == (3, None)


def test_sentry_fatal_issue_is_sev2_and_staging_is_sev4() -> None:
    event = load_event("sentry-issue-created.json")
    event["data"]["issue"]["level"] = "fatal"
    assert classify_payload(event)[:2] == (2, None)
    staging = load_event("sentry-metric-alert-critical.json")
    staging["data"]["metric_alert"]["alert_rule"]["environment"] = "staging"
    assert classify_payload(staging)[0] == 4


def test_description_line_overrides_rules() -> None:
    event = metric_alarm("checkout-5xx", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count",
                         description="Checkout 5xx.\nseverity: SEV1\nplaybook: deploy-rollback\nRunbook: x")
    [signal] = to_signals(event, T0)
    c = classify(signal, CONFIG.severity)
    assert (c.severity, c.playbook, c.rule) == (Severity.SEV1, "deploy-rollback", "override:description")


def test_description_override_keeps_rule_playbook_when_none_given() -> None:
    event = metric_alarm("orders-db-conn", "AWS/RDS", "DatabaseConnections", description="severity: sev4")
    [signal] = to_signals(event, T0)
    c = classify(signal, CONFIG.severity)
    assert (c.severity, c.owner, c.playbook) == (Severity.SEV4, "backlog", "db-connection-saturation")
    assert c.rule == "override:description"


def test_tag_override_keeps_rule_playbook_unless_it_names_another() -> None:
    event = load_event("eventbridge-cloudwatch-alarm-state-change-single-metric.json")
    event["detail"]["alarmName"] = "signin-errors"
    event["detail"]["alarmTags"] = {"severity": "SEV2"}
    [signal] = to_signals(event, T0)
    c = classify(signal, CONFIG.severity)
    assert (c.severity, c.playbook, c.rule) == (Severity.SEV2, "auth-outage", "override:tag")
    event["detail"]["alarmTags"] = {"severity": "SEV2", "playbook": "deploy-rollback"}
    [signal] = to_signals(event, T0)
    assert classify(signal, CONFIG.severity).playbook == "deploy-rollback"


def delete_objects(caller_account: str | None = None, denied: bool = False) -> dict[str, Any]:
    """The delete-marker sample turned into the multi-delete CloudTrail logs: no key, no version id."""
    event = cloudtrail("eventbridge-cloudtrail-s3-deleteobject-delete-marker.json", caller_account)
    detail = event["detail"]
    detail["eventName"] = "DeleteObjects"
    detail["requestParameters"] = {"bucketName": "backup-vault-prod", "delete": "",
                                   "Host": "backup-vault-prod.s3.us-east-1.amazonaws.com"}
    detail["resources"] = [r for r in detail["resources"] if r["type"] == "AWS::S3::Bucket"]
    if denied:
        detail["errorCode"], detail["errorMessage"] = "AccessDenied", "Access Denied"
    return event


@pytest.mark.parametrize("caller, denied, expected", [
    (None, False, (1, "object-lock-alarm", "founder-primary")),
    (None, True, (1, "object-lock-alarm", "founder-primary")),
    ("999988887777", False, (2, "object-lock-alarm", "engineering-oncall")),
])
def test_delete_objects_is_a_possible_version_delete_never_a_marker_only(
        caller: str | None, denied: bool, expected: tuple[int, str, str]) -> None:
    payload = delete_objects(caller, denied)
    assert classify_payload(payload) == expected
    [signal] = to_signals(payload, T0)
    assert signal.fact("version_targeted") is True and "possible version delete" in dict(signal.details)["version_ids"]


def test_alarm_tag_overrides_rules() -> None:
    event = load_event("eventbridge-cloudwatch-alarm-state-change-single-metric.json")
    event["detail"]["alarmTags"] = {"severity": "SEV2", "team": "payments"}
    [signal] = to_signals(event, T0)
    c = classify(signal, CONFIG.severity)
    assert (c.severity, c.rule) == (Severity.SEV2, "override:tag")


def test_severity_mentioned_in_prose_is_not_an_override() -> None:
    event = metric_alarm("checkout-5xx", "App/Web", "Errors", description="Raise severity: SEV1 if it persists")
    assert classify_payload(event)[0] == 3


def test_matrix_response_times_and_owners() -> None:
    matrix = CONFIG.severity.matrix
    assert [(matrix[s].response_minutes, matrix[s].owner) for s in Severity] == [
        (15, "founder-primary"), (120, "engineering-oncall"), (1440, "engineering-daytime"), (None, "backlog")]
