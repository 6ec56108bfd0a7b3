"""Playbooks end to end: real sample events, moto (ECS, SSM, SQS, S3, CloudWatch, Logs), and
botocore's Stubber where moto lacks an API (CloudTrail LookupEvents)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.stub import Stubber
from moto import mock_aws

from chalicelib.aws import Aws
from chalicelib.handlers import on_event
from chalicelib.models import IncidentStatus, PageKind, Severity
from chalicelib.playbooks.audit import JsonlAuditLog, S3AuditLog
from chalicelib.settings import Settings
from chalicelib.wiring import Deps, build_deps
from tests.conftest import FakeClock, RecordingChannel, copy_config, load_event, new_id, sns_event


def paged(h: Harness) -> list[str]:
    """Who was paged to act (the playbook's update page, which only reports, left out)."""
    return [p.person for p in h.console.sent if p.kind is not PageKind.UPDATE]

T = datetime(2025, 3, 14, 14, 0, tzinfo=UTC)  # Friday 10:00 in New York
SERVICE_ARN = "arn:aws:ecs:us-east-1:123456789012:service/prod-cluster/checkout-api"


class Http:
    """A fake HTTP transport: GET answers by URL, POST (PagerDuty, Slack) is accepted."""

    def __init__(self, statuses: dict[str, int] | None = None) -> None:
        self.statuses = statuses or {}
        self.gets: list[str] = []

    def get(self, url: str, timeout: float) -> Any:
        self.gets.append(url)
        return type("R", (), {"status": self.statuses.get(url, 200), "headers": {}, "body": b""})()

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Any:
        return type("R", (), {"status": 202, "headers": {}, "body": b""})()


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.clock = FakeClock(T)
        self.console = RecordingChannel()
        self.http = Http()
        self.config_dir = tmp_path / "config"
        self.config_dir.mkdir()
        copy_config(self.config_dir)
        self.clients = {name: boto3.client(name, region_name="us-east-1")
                        for name in ("ecs", "ssm", "sqs", "cloudwatch", "logs", "s3", "cloudtrail")}
        self.audit = JsonlAuditLog(tmp_path / "audit.jsonl")

    def options(self, playbook: str, **values: Any) -> None:
        path = self.config_dir / "playbooks.yaml"
        data = yaml.safe_load(path.read_text())
        data["playbooks"].setdefault(playbook, {}).setdefault("options", {}).update(values)
        path.write_text(yaml.safe_dump(data))

    def settings(self, playbook: str, **values: Any) -> None:
        path = self.config_dir / "playbooks.yaml"
        data = yaml.safe_load(path.read_text())
        if playbook:
            data["playbooks"].setdefault(playbook, {}).update(values)
        else:
            data.update(values)
        path.write_text(yaml.safe_dump(data))

    def deps(self, stage: str = "prod") -> Deps:
        settings = Settings.from_env({"RESPONDER_STAGE": stage, "RESPONDER_CONFIG_DIR": str(self.config_dir),
                                      # a deployed stage names its ack-link address and key
                                      "RESPONDER_PUBLIC_URL": "https://responder.example", "RESPONDER_LINK_SECRET": "k"})
        return build_deps(settings, clock=self.clock, store=None if False else _store(self.tmp, stage),
                          channels={"console": lambda: self.console}, transport=self.http,
                          aws=Aws(self.clients, build_missing=False), audit=self.audit)

    def timeline(self, deps: Deps, incident_id: str) -> list[str]:
        return [e.what for e in deps.store.get(incident_id).timeline]


def _store(tmp: Path, stage: str) -> Any:
    from chalicelib.store.sqlite import SqliteStore

    return SqliteStore(tmp / f"{stage}.db")


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    with mock_aws():
        yield Harness(tmp_path)


def open_incident(deps: Deps, event: dict[str, Any]) -> dict[str, Any]:
    [outcome] = on_event(event, "eventbridge", deps)["outcomes"]
    return outcome


def ecs_with_three_revisions(h: Harness) -> Any:
    ecs = h.clients["ecs"]
    ecs.create_cluster(clusterName="prod-cluster")
    for tag in ("2025.03.01", "2025.03.10", "2025.03.14-1"):
        ecs.register_task_definition(family="checkout-api",
                                     containerDefinitions=[{"name": "app", "image": f"checkout:{tag}", "memory": 256}])
    ecs.create_service(cluster="prod-cluster", serviceName="checkout-api", taskDefinition="checkout-api:2",
                       desiredCount=2)
    ecs.update_service(cluster="prod-cluster", service="checkout-api", taskDefinition="checkout-api:3")
    return ecs


def current_revision(h: Harness) -> str:
    service = h.clients["ecs"].describe_services(cluster="prod-cluster", services=["checkout-api"])["services"][0]
    return str(service["taskDefinition"]).rsplit("/", 1)[-1]


def failed_deployment() -> dict[str, Any]:
    return load_event("ecs-deployment-failed.json") | {"id": new_id()}


# --- deploy-rollback -----------------------------------------------------------------------


def test_rollback_updates_the_service_to_the_last_known_good_revision(h: Harness) -> None:
    ecs_with_three_revisions(h)
    deps = h.deps("prod")
    outcome = open_incident(deps, failed_deployment())
    assert outcome["playbook"] == "deploy-rollback" and outcome["playbook_result"] == "live: 3 steps"
    assert current_revision(h) == "checkout-api:2"
    timeline = h.timeline(deps, outcome["incident_id"])
    assert any("failing revision checkout-api:3; last known-good is checkout-api:2" in t for t in timeline)
    assert any(t.startswith("ecs:UpdateService cluster=prod-cluster, service=checkout-api, "
                            "taskDefinition=checkout-api:2: done") for t in timeline)
    calls = [r["step"] for r in h.audit.records() if r["kind"] == "step" and r["step"]["type"] == "api_call"]
    assert calls == [{"type": "api_call", "service": "ecs", "operation": "update_service", "mutating": True,
                      "params": {"cluster": "prod-cluster", "service": "checkout-api",
                                 "taskDefinition": "checkout-api:2"},
                      "target": "ecs-service:prod-cluster/checkout-api", "why": "roll back checkout-api:3 → checkout-api:2"}]
    assert "forceNewDeployment" not in json.dumps(calls)


def test_rollback_prefers_the_active_deployment_ecs_still_runs(h: Harness) -> None:
    ecs = h.clients["ecs"]
    deps = h.deps("prod")
    with Stubber(ecs) as stub:
        stub.add_response("describe_services", {"services": [{
            "serviceName": "checkout-api", "taskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/checkout-api:7",
            "deployments": [
                {"id": "ecs-svc/1", "status": "PRIMARY", "taskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/checkout-api:7"},
                {"id": "ecs-svc/2", "status": "ACTIVE", "taskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/checkout-api:5"}]}],
            "failures": []}, {"cluster": "prod-cluster", "services": ["checkout-api"]})
        stub.add_response("update_service", {"service": {"serviceName": "checkout-api"}},
                          {"cluster": "prod-cluster", "service": "checkout-api", "taskDefinition": "checkout-api:5"})
        open_incident(deps, failed_deployment())
        stub.assert_no_pending_responses()


def test_second_failure_within_the_hour_trips_the_breaker_and_escalates(h: Harness) -> None:
    ecs_with_three_revisions(h)
    deps = h.deps("prod")
    first = open_incident(deps, failed_deployment())
    assert current_revision(h) == "checkout-api:2"
    assert paged(h) == ["engineer-on-call"]
    h.clock.advance(minutes=4)  # the rollback deployment fails too, while it is still being watched
    again = on_event(failed_deployment(), "eventbridge", deps)["outcomes"][0]
    assert again["reason"] == "ALREADY_OPEN"
    assert current_revision(h) == "checkout-api:2"  # no second rollback
    timeline = h.timeline(deps, first["incident_id"])
    assert any("BREAKER_OPEN: not called" in t for t in timeline)
    assert any(t.startswith("escalated at once (breaker open: second deploy-rollback within 60 min") for t in timeline)
    assert paged(h) == ["engineer-on-call", "giles"]  # Sev2 step 2, now, not at +60
    h.clock.advance(minutes=30)  # resolved, then a third failure inside the hour: still no rollback
    deps.pipeline.resolve(first["incident_id"], "giles")
    third = open_incident(deps, failed_deployment())
    assert third["reason"] == "OPENED" and current_revision(h) == "checkout-api:2"
    assert any("BREAKER_OPEN" in t for t in h.timeline(deps, third["incident_id"]))


def test_verified_rollback_closes_the_breaker_but_the_rate_limit_still_holds(h: Harness) -> None:
    ecs_with_three_revisions(h)
    deps = h.deps("prod")
    first = open_incident(deps, failed_deployment())
    for _ in range(11):
        h.clock.advance(minutes=1)
        deps.pipeline.sweep()
    assert any("deploy-rollback verified" in t for t in h.timeline(deps, first["incident_id"]))
    deps.pipeline.resolve(first["incident_id"], "giles")
    h.clients["ecs"].update_service(cluster="prod-cluster", service="checkout-api", taskDefinition="checkout-api:3")
    second = open_incident(deps, failed_deployment())
    assert current_revision(h) == "checkout-api:2"  # a second verified rollback is allowed ...
    for _ in range(11):
        h.clock.advance(minutes=1)
        deps.pipeline.sweep()
    deps.pipeline.resolve(second["incident_id"], "giles")
    h.clients["ecs"].update_service(cluster="prod-cluster", service="checkout-api", taskDefinition="checkout-api:3")
    third = open_incident(deps, failed_deployment())
    assert current_revision(h) == "checkout-api:3"  # ... a third in the same hour is not
    assert any("RATE_LIMITED: not called" in t for t in h.timeline(deps, third["incident_id"]))


def test_dry_run_produces_the_same_plan_and_changes_nothing(h: Harness, tmp_path: Path) -> None:
    ecs_with_three_revisions(h)
    dry = h.deps("dev")
    outcome = open_incident(dry, failed_deployment())
    assert outcome["playbook_result"] == "dry run: 3 steps"
    assert current_revision(h) == "checkout-api:3"
    dry_steps = [r["step"] for r in h.audit.records() if r["kind"] == "step"]
    assert any("DRY_RUN: not called" in t for t in h.timeline(dry, outcome["incident_id"]))
    live = h.deps("prod")
    open_incident(live, failed_deployment())
    live_steps = [r["step"] for r in h.audit.records() if r["kind"] == "step"][len(dry_steps):]
    strip = [{k: v for k, v in s.items() if k != "until"} for s in dry_steps]
    assert strip == [{k: v for k, v in s.items() if k != "until"} for s in live_steps]
    assert current_revision(h) == "checkout-api:2"


def test_rollback_watch_failure_escalates(h: Harness) -> None:
    ecs_with_three_revisions(h)
    cw = h.clients["cloudwatch"]
    cw.put_metric_alarm(AlarmName="checkout-api-alb-5xx-high", MetricName="HTTPCode_Target_5XX_Count",
                        Namespace="AWS/ApplicationELB", Statistic="Sum", Period=60, EvaluationPeriods=1,
                        Threshold=10, ComparisonOperator="GreaterThanThreshold")
    h.options("deploy-rollback", alarm_names={"checkout-api": ["checkout-api-alb-5xx-high"]},
              health_urls={"checkout-api": "https://checkout.example.com/health"})
    deps = h.deps("prod")
    outcome = open_incident(deps, failed_deployment())
    for minute in range(1, 4):
        h.clock.advance(minutes=1)
        if minute == 3:
            cw.set_alarm_state(AlarmName="checkout-api-alb-5xx-high", StateValue="ALARM", StateReason="test")
        deps.pipeline.sweep()
    assert h.http.gets == ["https://checkout.example.com/health"] * 3
    timeline = h.timeline(deps, outcome["incident_id"])
    assert any("verification failed: alarm checkout-api-alb-5xx-high in ALARM" in t for t in timeline)
    assert paged(h) == ["engineer-on-call", "giles"]
    assert deps.store.get(outcome["incident_id"]).watch is None


def test_alarm_without_a_recent_deployment_is_not_rolled_back(h: Harness) -> None:
    ecs_with_three_revisions(h)
    deps = h.deps("prod")
    event = sns_event("sns-cloudwatch-alarm-metric.json", message_id=new_id(),
                      AlarmDescription="severity: SEV2\nplaybook: deploy-rollback",
                      Trigger={"Namespace": "AWS/ECS", "MetricName": "CPUUtilization",
                               "Dimensions": [{"name": "ClusterName", "value": "prod-cluster"},
                                              {"name": "ServiceName", "value": "checkout-api"}]})
    h.clock.now = datetime.now(UTC) + timedelta(hours=2)  # moto stamps deployments with the real clock
    [outcome] = on_event(event, "sns", deps)["outcomes"]
    assert outcome["playbook"] == "deploy-rollback"
    assert any("was not deployed in the last 60 minutes" in t for t in h.timeline(deps, outcome["incident_id"]))
    assert current_revision(h) == "checkout-api:3"


def test_failing_playbook_never_loses_the_incident(h: Harness) -> None:
    deps = h.deps("prod")  # no ECS cluster at all: DescribeServices fails
    outcome = open_incident(deps, failed_deployment())
    assert outcome["reason"] == "OPENED" and outcome["playbook_result"].startswith("ecs.describe_services: ")
    incident = deps.store.get(outcome["incident_id"])
    assert any(t.what.startswith("playbook deploy-rollback failed: ecs.describe_services:") for t in incident.timeline)
    assert incident.status is IncidentStatus.OPEN and paged(h) == ["engineer-on-call"]
    h.clock.advance(minutes=61)
    deps.pipeline.sweep()  # it escalates as usual
    assert paged(h) == ["engineer-on-call", "giles"]


def test_per_incident_action_limit_escalates(h: Harness) -> None:
    ecs_with_three_revisions(h)
    h.settings("", max_mutating_actions_per_incident=0)
    deps = h.deps("prod")
    outcome = open_incident(deps, failed_deployment())
    assert current_revision(h) == "checkout-api:3"
    assert any("LIMIT_REACHED: not called" in t for t in h.timeline(deps, outcome["incident_id"]))
    assert paged(h) == ["engineer-on-call", "giles"]


# --- the other playbooks -------------------------------------------------------------------------


def rds_connections_alarm() -> dict[str, Any]:
    return sns_event("sns-cloudwatch-alarm-metric.json", message_id=new_id(), AlarmName="orders-db-connections-high",
                     AlarmArn="arn:aws:cloudwatch:us-east-1:123456789012:alarm:orders-db-connections-high",
                     Trigger={"Namespace": "AWS/RDS", "MetricName": "DatabaseConnections",
                              "Dimensions": [{"name": "DBInstanceIdentifier", "value": "orders-db-prod"}]})


def test_db_connection_saturation_gathers_numbers_and_recommends(h: Harness) -> None:
    h.clients["ssm"].put_parameter(Name="/platform/prod/db/pool_size_per_task", Value="20", Type="String")
    h.clients["ssm"].put_parameter(Name="/platform/prod/db/max_connections", Value="100", Type="String")
    h.clients["cloudwatch"].put_metric_data(Namespace="AWS/RDS", MetricData=[{
        "MetricName": "DatabaseConnections", "Value": 92, "Timestamp": T - timedelta(minutes=2),
        "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": "orders-db-prod"}]}])
    deps = h.deps("prod")
    with Stubber(h.clients["ecs"]) as stub:
        stub.add_response("describe_services", {"services": [{"serviceName": "api", "runningCount": 6}], "failures": []},
                          {"cluster": "prod-cluster", "services": ["api"]})
        [outcome] = on_event(rds_connections_alarm(), "sns", deps)["outcomes"]
    assert (outcome["severity"], outcome["playbook"]) == (2, "db-connection-saturation")
    timeline = "\n".join(h.timeline(deps, outcome["incident_id"]))
    assert "worst-case demand: 6 × 20 = 120 connections" in timeline
    assert "current connections on orders-db-prod: 92 (92% of max)" in timeline
    assert "recommendation: pool tuning" in timeline and "lower the pool to ≤ 13 per task" in timeline
    assert "#database:id=orders-db-prod;tab=logs-and-events" in timeline
    assert not [r for r in h.audit.records() if r.get("step", {}).get("mutating")]


def ai_alarm(name: str = "ai-gateway-anthropic-executor-failures") -> dict[str, Any]:
    return sns_event("sns-cloudwatch-alarm-metric.json", message_id=new_id(), AlarmName=name,
                     AlarmArn=f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}",
                     Trigger={"Namespace": "Platform/AIGateway", "MetricName": "ExecutorFailures", "Dimensions": []})


def bedrock_alarm(h: Harness, state: str) -> None:
    cw = h.clients["cloudwatch"]
    cw.put_metric_alarm(AlarmName="ai-gateway-bedrock-executor-failures", MetricName="ExecutorFailures",
                        Namespace="Platform/AIGateway", Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=5,
                        ComparisonOperator="GreaterThanThreshold")
    cw.set_alarm_state(AlarmName="ai-gateway-bedrock-executor-failures", StateValue=state, StateReason="test")


def test_ai_outage_switches_to_bedrock(h: Harness) -> None:
    h.clients["ssm"].put_parameter(Name="/platform/prod/flags/ai_route", Value="anthropic", Type="String")
    bedrock_alarm(h, "OK")
    deps = h.deps("prod")
    [outcome] = on_event(ai_alarm(), "sns", deps)["outcomes"]
    assert outcome["playbook"] == "ai-provider-outage"
    assert h.clients["ssm"].get_parameter(Name="/platform/prod/flags/ai_route")["Parameter"]["Value"] == "bedrock"
    incident = deps.store.get(outcome["incident_id"])
    assert incident.severity is Severity.SEV2
    assert [d.kind for d in incident.duties] == ["customer_notification", "design_partner_notification"]


def test_ai_outage_with_bedrock_down_queues_and_raises_to_sev1(h: Harness) -> None:
    h.clients["ssm"].put_parameter(Name="/platform/prod/flags/ai_route", Value="anthropic", Type="String")
    bedrock_alarm(h, "ALARM")
    deps = h.deps("prod")
    [outcome] = on_event(ai_alarm(), "sns", deps)["outcomes"]
    assert h.clients["ssm"].get_parameter(Name="/platform/prod/flags/ai_route")["Parameter"]["Value"] == "queue"
    incident = deps.store.get(outcome["incident_id"])
    assert incident.severity is Severity.SEV1 and incident.owner == "founder-primary"
    assert paged(h) == ["engineer-on-call", "giles"]


def test_auth_outage_enables_admin_auth_fallback(h: Harness) -> None:
    h.clients["ssm"].put_parameter(Name="/platform/prod/flags/admin_auth_fallback", Value="disabled", Type="String")
    deps = h.deps("prod")
    event = sns_event("sns-cloudwatch-alarm-metric.json", message_id=new_id(), AlarmName="cognito-signin-5xx",
                      AlarmArn="arn:aws:cloudwatch:us-east-1:123456789012:alarm:cognito-signin-5xx")
    [outcome] = on_event(event, "sns", deps)["outcomes"]
    assert (outcome["severity"], outcome["playbook"]) == (1, "auth-outage")
    flag = h.clients["ssm"].get_parameter(Name="/platform/prod/flags/admin_auth_fallback")["Parameter"]["Value"]
    assert flag == "enabled"
    duties = {(d.kind, d.due_at) for d in deps.store.get(outcome["incident_id"]).duties}
    # the playbook's own SLA clock (60 min) beside the generic Sev1 one (240 min)
    assert ("customer_notification", T + timedelta(minutes=60)) in duties


def npdb_alarm() -> dict[str, Any]:
    return sns_event("sns-cloudwatch-alarm-metric.json", message_id=new_id(), AlarmName="npdb-adapter-errors",
                     AlarmArn="arn:aws:cloudwatch:us-east-1:123456789012:alarm:npdb-adapter-errors",
                     Trigger={"MetricName": "Errors", "Namespace": "App/Adapters", "Dimensions": []})


def test_source_authority_vendor_down_queues_reverification(h: Harness) -> None:
    queue = h.clients["sqs"].create_queue(QueueName="reverify-retry")["QueueUrl"]
    h.options("source-authority-down", reverify_queue_url=queue)
    h.http.statuses["https://www.npdb.hrsa.gov/status"] = 503
    deps = h.deps("prod")
    [outcome] = on_event(npdb_alarm(), "sns", deps)["outcomes"]
    assert outcome["playbook"] == "source-authority-down"
    [message] = h.clients["sqs"].receive_message(QueueUrl=queue)["Messages"]
    assert json.loads(message["Body"]) == {"action": "hold_and_retry", "authority": "npdb",
                                           "incident": outcome["incident_id"], "reason": "vendor unavailable"}
    incident = deps.store.get(outcome["incident_id"])
    assert any("npdb status endpoint: down (HTTP 503)" in t.what for t in incident.timeline)
    assert ("postmortem", T + timedelta(hours=24)) in [(d.kind, d.due_at) for d in incident.duties]


def test_source_authority_up_attaches_our_adapter_errors(h: Harness) -> None:
    h.clock.now = now = datetime.now(UTC).replace(microsecond=0)  # CloudWatch Logs refuses events weeks old
    logs = h.clients["logs"]
    logs.create_log_group(logGroupName="/platform/prod/adapters/npdb")
    logs.create_log_stream(logGroupName="/platform/prod/adapters/npdb", logStreamName="api-1")
    logs.put_log_events(logGroupName="/platform/prod/adapters/npdb", logStreamName="api-1", logEvents=[
        # (moto ignores the "?ERROR ?Exception" filter pattern, so only error lines are put here)
        {"timestamp": int((now - timedelta(minutes=5)).timestamp() * 1000), "message": "ERROR NpdbTimeout after 30s"}])
    queue = h.clients["sqs"].create_queue(QueueName="reverify-retry")["QueueUrl"]
    h.options("source-authority-down", reverify_queue_url=queue)
    deps = h.deps("prod")
    [outcome] = on_event(npdb_alarm(), "sns", deps)["outcomes"]
    timeline = h.timeline(deps, outcome["incident_id"])
    assert any("npdb is up: our side. 1 adapter errors in the last 30 min" in t and "NpdbTimeout" in t
               for t in timeline)
    assert "Messages" not in h.clients["sqs"].receive_message(QueueUrl=queue)


def test_object_lock_alarm_answers_who_attempted_what(h: Harness) -> None:
    deps = h.deps("prod")
    with Stubber(h.clients["cloudtrail"]) as stub:
        stub.add_response("lookup_events", {"Events": [
            {"EventId": "e1", "EventName": "PutObjectRetention", "EventTime": T, "Username": "jdoe@example.com"},
            {"EventId": "e2", "EventName": "DeleteObject", "EventTime": T, "Username": "jdoe@example.com"},
            {"EventId": "e3", "EventName": "DeleteObject", "EventTime": T, "Username": "jdoe@example.com"}]})
        outcome = open_incident(deps, load_event("eventbridge-cloudtrail-s3-putobjectretention.json"))
    assert (outcome["severity"], outcome["playbook"]) == (1, "object-lock-alarm")
    timeline = "\n".join(h.timeline(deps, outcome["incident_id"]))
    assert "principal=arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_AdministratorAccess" in timeline
    assert "source_ip=203.0.113.24" in timeline and "outcome=allowed" in timeline
    assert "caller is inside our account: Sev1" in timeline
    assert "jdoe@example.com's CloudTrail calls in the last 60 min: DeleteObject ×2, PutObjectRetention ×1" in timeline
    assert "db/2025-03-14/orders-db-prod.dump.zst" not in timeline  # object keys stay out


def test_observability_outage_confirms_cloudwatch_reports_and_pages_nobody_at_night(h: Harness) -> None:
    night = datetime(2025, 3, 14, 7, 0, tzinfo=UTC)
    h.clock.now = night
    h.clients["cloudwatch"].put_metric_data(Namespace="AWS/ApplicationELB", MetricData=[
        {"MetricName": "RequestCount", "Value": 1200, "Timestamp": night - timedelta(minutes=3)}])
    deps = h.deps("prod")
    event = sns_event("sns-cloudwatch-alarm-metric.json", message_id=new_id(), AlarmName="sentry-ingest-failures",
                      AlarmArn="arn:aws:cloudwatch:us-east-1:123456789012:alarm:sentry-ingest-failures",
                      Trigger={"MetricName": "IngestFailures", "Namespace": "App/Ops", "Dimensions": []})
    [outcome] = on_event(event, "sns", deps)["outcomes"]
    assert (outcome["severity"], outcome["playbook"], outcome["pages"]) == (3, "observability-outage", 0)
    timeline = "\n".join(h.timeline(deps, outcome["incident_id"]))
    assert "Sentry / observability down ≠ production down" in timeline
    assert "CloudWatch is reporting" in timeline and h.console.sent == []


def test_audit_records_go_to_an_object_lock_bucket(h: Harness) -> None:
    s3 = h.clients["s3"]
    s3.create_bucket(Bucket="alarm-responder-prod-audit", ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket="alarm-responder-prod-audit", ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Years": 7}}})
    S3AuditLog("alarm-responder-prod-audit", client=s3).append(
        {"at": T.isoformat(), "incident": "inc-1", "kind": "step", "result": "done"})
    [obj] = s3.list_objects_v2(Bucket="alarm-responder-prod-audit")["Contents"]
    assert obj["Key"].startswith("audit/2025-03-14/inc-1/")
    head = s3.head_object(Bucket="alarm-responder-prod-audit", Key=obj["Key"])
    assert head["ObjectLockMode"] == "COMPLIANCE"
    version = s3.list_object_versions(Bucket="alarm-responder-prod-audit")["Versions"][0]["VersionId"]
    with pytest.raises(Exception, match="AccessDenied"):
        s3.delete_object(Bucket="alarm-responder-prod-audit", Key=obj["Key"], VersionId=version)


def test_simulate_shows_the_plan_and_runs_nothing(h: Harness) -> None:
    from chalicelib.pipeline import simulate
    from chalicelib.sources import to_signals

    ecs_with_three_revisions(h)
    deps = h.deps("prod")
    [signal] = to_signals(copy.deepcopy(failed_deployment()), T)
    plan = simulate(signal, deps.config, T, executor=deps.pipeline.executor)
    kinds = [(s["type"], s.get("operation")) for s in plan.playbook_steps]
    assert kinds == [("note", None), ("api_call", "update_service"), ("watch", None)]
    assert all(s["dry_run"] is False for s in plan.playbook_steps)
    assert current_revision(h) == "checkout-api:3" and deps.store.list() == [] and h.audit.records() == []


def test_a_run_audits_the_reads_its_plan_made(h: Harness) -> None:
    ecs_with_three_revisions(h)
    deps = h.deps("prod")
    open_incident(deps, failed_deployment())
    [reads] = [r["reads"] for r in h.audit.records() if r["kind"] == "reads"]
    assert reads[0] == "ecs.describe_services" and set(reads) <= {"ecs.describe_services", "ecs.list_task_definitions"}


def test_a_failed_read_is_audited_with_the_failure(h: Harness) -> None:
    deps = h.deps("prod")  # no ECS cluster: DescribeServices fails
    open_incident(deps, failed_deployment())
    kinds = [(r["kind"], r.get("reads") or r.get("result")) for r in h.audit.records()]
    assert kinds[0] == ("reads", ["ecs.describe_services"]) and kinds[1][0] == "plan"
    assert kinds[1][1].startswith("failed: ecs.describe_services: ")
