"""Issue 10 §6: customer-facing errors and authentication outages never wait for 09:00.

Every payload is an edited copy of a real sample (SNS and EventBridge alarm shapes:
single metric, metric math, composite); only the alarm name and the metric change.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.decisions.classify import classify
from chalicelib.models import Severity
from chalicelib.sources import to_signals
from tests.conftest import CONFIG, T0, load_event

Dims = list[tuple[str, str]]
Shape = Callable[[str, str, str, Dims], Any]


def _sns(name: str, edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    event = copy.deepcopy(load_event(name))
    sns = event["Records"][0]["Sns"]
    message = json.loads(sns["Message"])
    edit(message)
    sns["Message"] = json.dumps(message)
    return event


def sns_metric(alarm: str, namespace: str, metric: str, dims: Dims) -> dict[str, Any]:
    def edit(m: dict[str, Any]) -> None:
        m["AlarmName"] = alarm
        m["Trigger"].update(MetricName=metric, Namespace=namespace,
                            Dimensions=[{"name": k, "value": v} for k, v in dims])
    return _sns("sns-cloudwatch-alarm-metric.json", edit)


def sns_metric_math(alarm: str, namespace: str, metric: str, dims: Dims) -> dict[str, Any]:
    def edit(m: dict[str, Any]) -> None:
        m["AlarmName"] = alarm
        for query in m["Trigger"]["Metrics"]:
            if "MetricStat" in query:
                query["MetricStat"]["Metric"].update(
                    MetricName=metric, Namespace=namespace, Dimensions=[{"name": k, "value": v} for k, v in dims])
    return _sns("sns-cloudwatch-alarm-metric-math.json", edit)


def eventbridge_metric(alarm: str, namespace: str, metric: str, dims: Dims) -> dict[str, Any]:
    event = copy.deepcopy(load_event("eventbridge-cloudwatch-alarm-state-change-single-metric.json"))
    event["detail"]["alarmName"] = alarm
    for query in event["detail"]["configuration"]["metrics"]:
        query["metricStat"]["metric"].update(name=metric, namespace=namespace, dimensions=dict(dims))
    return event


def eventbridge_metric_math(alarm: str, namespace: str, metric: str, dims: Dims) -> dict[str, Any]:
    event = copy.deepcopy(load_event("eventbridge-cloudwatch-alarm-state-change-metric-math.json"))
    event["detail"]["alarmName"] = alarm
    for query in event["detail"]["configuration"]["metrics"]:
        if "metricStat" in query:
            query["metricStat"]["metric"].update(name=metric, namespace=namespace, dimensions=dict(dims))
    return event


def sns_composite(alarm: str, *_: Any) -> dict[str, Any]:
    return _sns("sns-cloudwatch-alarm-composite.json", lambda m: m.update(AlarmName=alarm))


def eventbridge_composite(alarm: str, *_: Any) -> dict[str, Any]:
    event = copy.deepcopy(load_event("eventbridge-cloudwatch-alarm-state-change-composite.json"))
    event["detail"]["alarmName"] = alarm
    return event


METRIC_SHAPES: dict[str, Shape] = {
    "sns metric": sns_metric, "sns metric math": sns_metric_math,
    "eventbridge metric": eventbridge_metric, "eventbridge metric math": eventbridge_metric_math,
}
ALL_SHAPES: dict[str, Shape] = {**METRIC_SHAPES, "sns composite": sns_composite,
                                "eventbridge composite": eventbridge_composite}


def classified(payload: Any) -> tuple[Severity, str | None, str]:
    [signal] = to_signals(payload, T0)
    c = classify(signal, CONFIG.severity)
    return c.severity, c.playbook, c.rule


# --- customer-facing error metrics, known by what they count ------------------------------------

CUSTOMER_FACING = [
    ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", [("LoadBalancer", "app/checkout-alb/50dc6c495c0c9188")]),
    ("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", [("LoadBalancer", "app/checkout-alb/50dc6c495c0c9188")]),
    ("AWS/ApplicationELB", "HTTPCode_ELB_502_Count", [("LoadBalancer", "app/checkout-alb/50dc6c495c0c9188")]),
    ("AWS/NetworkELB", "HTTPCode_ELB_5XX_Count", [("LoadBalancer", "net/edge/0123456789abcdef")]),
    ("AWS/ELB", "HTTPCode_Backend_5XX", [("LoadBalancerName", "legacy")]),
    ("AWS/ApiGateway", "5XXError", [("ApiName", "orders"), ("Stage", "prod")]),
    ("AWS/ApiGateway", "5xx", [("ApiId", "a1b2c3"), ("Stage", "$default")]),
    ("AWS/CloudFront", "5xxErrorRate", [("DistributionId", "E1ABCDEF"), ("Region", "Global")]),
    ("AWS/AppSync", "5XXError", [("GraphQLAPIId", "xyz")]),
    ("AWS/Lambda", "Errors", [("FunctionName", "checkout-api-prod")]),
    ("AWS/Lambda", "Errors", [("FunctionName", "ordersGraphQLResolver")]),
]
# neutral names, and names whose words would otherwise pick a lower severity
NAMES = ["team-x-alarm-7", "checkout-health", "sentry-relay-5xx", "telemetry-edge-errors", "Dashboard42"]


@pytest.mark.parametrize("shape", sorted(METRIC_SHAPES))
@pytest.mark.parametrize("namespace, metric, dims", CUSTOMER_FACING, ids=lambda v: str(v))
@pytest.mark.parametrize("name", NAMES)
def test_customer_facing_error_metric_is_at_least_sev2_whatever_the_name(
        shape: str, namespace: str, metric: str, dims: Dims, name: str) -> None:
    severity, _, rule = classified(METRIC_SHAPES[shape](name, namespace, metric, dims))
    assert severity <= Severity.SEV2, rule


@pytest.mark.parametrize("shape", sorted(METRIC_SHAPES))
@pytest.mark.parametrize("namespace, metric, dims", [
    ("AWS/Lambda", "Errors", [("FunctionName", "nightly-report-export")]),   # a batch job, not an API
    ("AWS/ApplicationELB", "HTTPCode_Target_4XX_Count", [("LoadBalancer", "app/checkout-alb/5")]),
    ("AWS/EC2", "CPUUtilization", [("InstanceId", "i-12345678901234567")]),
    ("App/Web", "5XXError", []),                                             # not the API Gateway metric
], ids=lambda v: str(v))
def test_other_metrics_with_neutral_names_stay_sev3(shape: str, namespace: str, metric: str, dims: Dims) -> None:
    assert classified(METRIC_SHAPES[shape]("team-x-alarm-7", namespace, metric, dims))[0] is Severity.SEV3


def test_auth_alarm_on_a_5xx_metric_is_still_the_auth_outage() -> None:
    payload = sns_metric("authentication-api-5xx", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", [])
    assert classified(payload)[:2] == (Severity.SEV1, "auth-outage")


# --- the vocabulary of authentication ----------------------------------------------------------

AUTH_NAMES = [
    "authentication-api-5xx", "signin-errors", "sign-in-errors", "SignInFailures", "oauth-callback-errors",
    "OAuthCallbackErrors", "saml-assertion-failures", "okta", "idp-unreachable", "IdPUnreachable",
    "authorizer-5xx", "ApiAuthorizerErrors", "authorization-denied-spike", "authn-latency", "authz-timeouts",
    "oidc-token-errors", "OpenIdDiscoveryFailed", "sso-portal-down", "cognito-user-pool-throttles",
    "workos-webhook-failures", "LoginFailures", "failed-logins-high", "mfa-sms-failures", "auth0-tenant-errors",
    "identity-provider-timeouts", "AuthenticatorChallengeErrors",
]
NOT_AUTH_NAMES = [
    "author-service-errors", "coauthor-sync-lag", "idea-board-errors", "audit-log-in-s3-delayed",
    "LogInsightsQueryErrors", "signing-key-rotation-failed", "designer-errors", "blogin-errors",
    "authored-content-queue", "midpoint-latency",
]


@pytest.mark.parametrize("shape", sorted(ALL_SHAPES))
@pytest.mark.parametrize("name", AUTH_NAMES)
def test_auth_vocabulary_is_the_auth_outage_in_every_alarm_shape(shape: str, name: str) -> None:
    payload = ALL_SHAPES[shape](name, "App/Web", "Errors", [])
    assert classified(payload)[:2] == (Severity.SEV1, "auth-outage")


@pytest.mark.parametrize("shape", sorted(ALL_SHAPES))
@pytest.mark.parametrize("name", NOT_AUTH_NAMES)
def test_words_that_only_look_like_auth_are_not(shape: str, name: str) -> None:
    severity, playbook, _ = classified(ALL_SHAPES[shape](name, "App/Web", "Errors", []))
    assert (severity, playbook) == (Severity.SEV3, None)


@pytest.mark.parametrize("name", ["source-authority-down", "SourceAuthorityLatency", "npdb-authority-errors"])
def test_source_authority_is_its_own_playbook_not_auth(name: str) -> None:
    assert classified(sns_metric(name, "App/Adapters", "Errors", []))[:2] == (Severity.SEV2, "source-authority-down")
