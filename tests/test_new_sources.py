"""The sources the runbook implies (issue 16 §2): conversion, classification, the deployed rules,
and what each one does to incidents (context joins, the PHI question, the daily secrets check)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.aws import Aws
from chalicelib.decisions import comms, context
from chalicelib.decisions.classify import classify
from chalicelib.decisions.incidents import Reason
from chalicelib.handlers import check_secret_rotation, on_event
from chalicelib.models import Severity, Transition
from chalicelib.sources import backups, codebuild, guardduty, registry, secrets_rotation, to_signals
from chalicelib.store.sqlite import SqliteStore
from tests.conftest import CONFIG, T0, FakeClock, RecordingChannel, load_event, make_deps, new_id, sns_event

# fixture → (severity, rule): the classification row of every new sample (runbook section in severity.yaml)
ROWS = {
    "aws-health-issue-bedrock-open.json": (Severity.SEV2, "rule:aws-health-issue-on-a-dependency"),
    "aws-health-issue-rds-open.json": (Severity.SEV2, "rule:aws-health-issue-on-a-dependency"),
    "aws-health-scheduled-rds-maintenance.json": (Severity.SEV4, "rule:aws-health-scheduled-change"),
    "rds-db-instance-event-storage-full.json": (Severity.SEV1, "rule:rds-storage-exhausted"),
    "rds-db-instance-event-low-storage.json": (Severity.SEV3, "rule:rds-storage-low"),
    "rds-db-instance-event-shutdown.json": (Severity.SEV2, "rule:rds-instance-unavailable"),
    "rds-db-instance-event-backups-disabled.json": (Severity.SEV2, "rule:rds-automated-backups-disabled"),
    "rds-db-cluster-event-failover.json": (Severity.SEV2, "rule:rds-cluster-failover"),
    "rds-db-snapshot-event-failed.json": (Severity.SEV2, "rule:rds-snapshot-failed"),
    "guardduty-finding-instance-credential-exfiltration.json": (Severity.SEV1, "rule:guardduty-exposure-high"),
    "guardduty-finding-s3-exfiltration.json": (Severity.SEV1, "rule:guardduty-exposure-high"),
    "guardduty-finding-recon-low.json": (Severity.SEV4, "rule:guardduty-low"),
    "eventbridge-cloudtrail-secretsmanager-rotationfailed.json": (Severity.SEV2, "rule:secret-rotation-failed"),
    "aws-backup-job-failed.json": (Severity.SEV2, "rule:backup-job-failed"),
    "aws-backup-job-aborted.json": (Severity.SEV2, "rule:backup-job-failed"),
    "eventbridge-cloudtrail-rds-modifydbinstance-retention-0.json": (Severity.SEV1, "rule:recovery-weakened-internal"),
    "eventbridge-cloudtrail-rds-modifydbinstance-retention-1.json": (Severity.SEV1, "rule:recovery-weakened-internal"),
    "eventbridge-cloudtrail-rds-deletedbsnapshot.json": (Severity.SEV1, "rule:recovery-weakened-internal"),
    "eventbridge-cloudtrail-s3-putbucketlifecycleconfiguration.json":
        (Severity.SEV1, "rule:source-receipt-bucket-changed-internal"),
    # suspending versioning is already the Object Lock rules' Sev1 (runbook §5.5), whichever bucket
    "eventbridge-cloudtrail-s3-putbucketversioning-source-receipts.json":
        (Severity.SEV1, "rule:versioning-suspended-internal"),
    "codebuild-build-state-change-deploy-failed.json": (Severity.SEV3, "rule:codebuild-deploy-failed"),
    "codebuild-build-state-change-rollback-failed.json": (Severity.SEV2, "rule:codebuild-rollback-failed"),
    "ecs-task-state-change-stopped-health-check.json": (Severity.SEV3, "rule:ecs-task-stopped"),
}


def one(name: str, event: Any = None) -> Any:
    [signal] = to_signals(event if event is not None else load_event(name), T0)
    assert signal.unknown_reason is None, signal.unknown_reason
    return signal


@pytest.mark.parametrize("name", sorted(ROWS))
def test_classification_row(name: str) -> None:
    severity, rule = ROWS[name]
    decided = classify(one(name), CONFIG.severity)
    assert (decided.severity, decided.rule) == (severity, rule)


# --- conversion -------------------------------------------------------------------------------

def test_health_issue_facts_key_and_the_closed_event_resolves_it() -> None:
    opened, closed = one("aws-health-issue-bedrock-open.json"), one("aws-health-issue-bedrock-closed.json")
    assert opened.kind == "aws_health" and opened.transition is Transition.TRIGGER
    assert dict(opened.facts) == {"health_service": "BEDROCK", "event_type_code": "AWS_BEDROCK_OPERATIONAL_ISSUE",
                                  "event_type_category": "issue", "status_code": "open", "hard_dependency": True,
                                  "joins_playbook": "ai-provider-outage"}
    assert closed.transition is Transition.RESOLVE and closed.incident_key == opened.incident_key
    assert context.wanted_playbook(closed) == ""  # a resolve joins nothing: it closes its own
    rds = one("aws-health-issue-rds-open.json")
    assert rds.resource == "arn:aws:rds:us-east-1:123456789012:db:credentialing-prod"
    assert rds.fact("joins_playbook") == ""
    scheduled = one("aws-health-scheduled-rds-maintenance.json")
    assert (scheduled.fact("event_type_category"), scheduled.fact("status_code")) == ("scheduledChange", "upcoming")


def test_health_issue_elsewhere_is_default_sev3() -> None:
    event = load_event("aws-health-issue-rds-open.json")
    event["detail"]["service"] = "GAMELIFT"
    decided = classify(one("", event), CONFIG.severity)
    assert (decided.severity, decided.rule) == (Severity.SEV3, "default")


@pytest.mark.parametrize("score, band", [(8.9, "high"), (7.0, "high"), (6.9, "medium"), (4.0, "medium"),
                                         (3.9, "low"), (0.1, "low")])
def test_guardduty_severity_bands(score: float, band: str) -> None:
    assert guardduty.severity_band(score) == band


@pytest.mark.parametrize("finding_type, exposure", [
    ("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS", True),
    ("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS", True),
    ("Exfiltration:S3/MaliciousIPCaller", True),
    ("Recon:EC2/PortProbeUnprotectedPort", False),
    ("UnauthorizedAccess:EC2/SSHBruteForce", False),
])
def test_guardduty_exposure_class(finding_type: str, exposure: bool) -> None:
    assert guardduty.is_exposure_type(finding_type) is exposure


def test_guardduty_medium_and_high_non_exposure_findings() -> None:
    event = load_event("guardduty-finding-recon-low.json")
    event["detail"]["severity"] = 5.0
    assert classify(one("", event), CONFIG.severity).severity is Severity.SEV3
    event["detail"]["severity"] = 8.0
    assert classify(one("", event), CONFIG.severity).severity is Severity.SEV2


def test_guardduty_key_is_the_finding_and_the_title_names_no_principal() -> None:
    signal = one("guardduty-finding-instance-credential-exfiltration.json")
    assert signal.incident_key == "guardduty:a8c4b2e91f7d3a60c5e2b9d48f1a7c3e"
    assert signal.resource == "credentialing-api-task-role" and "198.51.100.77" not in signal.model_dump_json()


def test_rotation_failed_names_the_secret_never_a_value() -> None:
    signal = one("eventbridge-cloudtrail-secretsmanager-rotationfailed.json")
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/vendors/nursys-api-key-Ab12Cd"
    assert (signal.kind, signal.incident_key, signal.resource) == ("secrets_rotation", f"secret:{arn}", arn)
    assert signal.title == "secret prod/vendors/nursys-api-key: RotationFailed"


@pytest.mark.parametrize("holder", ["serviceEventDetails", "requestParameters"])
def test_rotation_failed_finds_the_secret_where_else_aws_puts_it(holder: str) -> None:
    event = load_event("eventbridge-cloudtrail-secretsmanager-rotationfailed.json")
    arn = event["detail"].pop("additionalEventData")["SecretId"]
    event["detail"][holder] = {"secretId": arn}
    assert one("", event).resource == arn


def test_overdue_secrets_from_the_list_secrets_shape() -> None:
    secrets = load_event("secretsmanager-list-secrets-response.json")["SecretList"]
    signals = list(secrets_rotation.overdue_signals(secrets, T0))
    assert [s.resource.rsplit(":", 1)[-1] for s in signals] == ["prod/vendors/nursys-api-key-Ab12Cd",
                                                                  "prod/vendors/dea-csa-api-key-Ef34Gh"]
    assert signals[0].title == "secret prod/vendors/nursys-api-key last rotated 114 days ago (limit 90)"
    assert signals[1].title.startswith("secret prod/vendors/dea-csa-api-key never rotated, created 303 days ago")
    assert {s.incident_key for s in signals} == {f"secret:{s['ARN']}" for s in secrets[:2]}
    assert all(classify(s, CONFIG.severity).severity is Severity.SEV3 for s in signals)


@pytest.mark.parametrize("name, params, weakening", [
    ("ModifyDBInstance", {"backupRetentionPeriod": 0}, "pitr_disabled"),
    ("ModifyDBInstance", {"backupRetentionPeriod": 7}, "retention_lowered"),
    ("ModifyDBInstance", {"backupRetentionPeriod": 30}, ""),
    ("ModifyDBInstance", {"dBInstanceClass": "db.r6g.xlarge"}, ""),
    ("DeleteDBClusterSnapshot", {}, "snapshot_deleted"),
    ("DeleteBucketLifecycle", {"bucketName": "x"}, "bucket_lifecycle_changed"),
])
def test_what_weakens_recovery(name: str, params: dict[str, Any], weakening: str) -> None:
    assert backups.weakening(name, params) == weakening


def test_harmless_instance_change_is_recorded_not_paged() -> None:
    event = load_event("eventbridge-cloudtrail-rds-modifydbinstance-retention-0.json")
    event["detail"]["requestParameters"] = {"dBInstanceIdentifier": "credentialing-prod", "dBInstanceClass": "db.r6g.xl"}
    assert classify(one("", event), CONFIG.severity).rule == "rule:recovery-change-harmless"


def test_recovery_weakened_from_another_account_is_sev2() -> None:
    event = load_event("eventbridge-cloudtrail-rds-deletedbsnapshot.json")
    event["detail"]["userIdentity"]["accountId"] = "999988887777"
    decided = classify(one("", event), CONFIG.severity)
    assert (decided.severity, decided.rule) == (Severity.SEV2, "rule:recovery-weakened-external")


def test_backup_job_keyed_by_resource_and_completed_resolves() -> None:
    failed = one("aws-backup-job-failed.json")
    done = load_event("aws-backup-job-failed.json")
    done["id"], done["detail"]["state"] = "c0ffee00-0000-4000-8000-000000000001", "COMPLETED"
    completed = one("", done)
    assert failed.incident_key == completed.incident_key == "backup:arn:aws:rds:us-east-1:123456789012:db:credentialing-prod"
    assert (failed.transition, completed.transition) == (Transition.TRIGGER, Transition.RESOLVE)


def test_rollback_build_told_by_its_environment_variable_or_source_version() -> None:
    deploy, rollback = one("codebuild-build-state-change-deploy-failed.json"), one(
        "codebuild-build-state-change-rollback-failed.json")
    assert (deploy.fact("rollback_build"), rollback.fact("rollback_build")) == (False, True)
    assert deploy.incident_key != rollback.incident_key
    assert deploy.links and deploy.links[0].startswith("https://console.aws.amazon.com/cloudwatch/")
    info = load_event("codebuild-build-state-change-deploy-failed.json")["detail"]["additional-information"]
    info["environment"]["environment-variables"] = []
    info["source-version"] = "refs/heads/rollback/credentialing-api-86"
    assert codebuild.is_rollback(info)


def test_ecs_health_check_stop_names_its_deployment() -> None:
    signal = one("ecs-task-state-change-stopped-health-check.json")
    assert signal.transition is Transition.TRIGGER
    deployment = one("ecs-deployment-failed.json")
    assert signal.fact("joins_key") == deployment.incident_key
    assert one("ecs-task-state-change-stopped.json").fact("health_check_failed") is False


# --- the deployed rules ---------------------------------------------------------------------------

def pattern_matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """EventBridge matching, for the operators our rules use (values, prefix)."""
    for key, wanted in pattern.items():
        if key not in event:
            return False
        if isinstance(wanted, dict):
            if not isinstance(event[key], dict) or not pattern_matches(wanted, event[key]):
                return False
        elif not any(event[key] == w or (isinstance(w, dict) and str(event[key]).startswith(w["prefix"]))
                     for w in wanted):
            return False
    return True


def deployed_patterns() -> dict[str, dict[str, Any]]:
    import app as app_module

    return {s.name: s.event_pattern for s in app_module.app.event_sources if hasattr(s, "event_pattern")}


NEW_RULES = {"on_aws_health", "on_guardduty", "on_secret_rotation_failed", "on_backup_job", "on_cloudtrail_recovery",
             "on_codebuild"}


@pytest.mark.parametrize("name", [*sorted(ROWS), "aws-health-issue-bedrock-closed.json"])
def test_every_new_sample_is_delivered_by_exactly_one_rule(name: str) -> None:
    matching = [rule for rule, pattern in deployed_patterns().items() if pattern_matches(pattern, load_event(name))]
    assert len(matching) == 1, matching


def test_app_declares_the_new_sources_rules_as_catalogued() -> None:
    catalogued = {rule.name: rule.pattern for rule in registry.eventbridge_rules()}
    deployed = deployed_patterns()
    assert NEW_RULES <= set(deployed)
    assert {name: deployed[name] for name in NEW_RULES} == {name: catalogued[name] for name in NEW_RULES}


def test_the_daily_secret_check_is_a_daily_schedule() -> None:
    import app as app_module

    [schedule] = [s for s in app_module.app.event_sources if s.name == "secret_rotation_check"]
    assert (schedule.schedule_expression.value, schedule.schedule_expression.unit) == (1, "DAYS")


# --- what they do to incidents --------------------------------------------------------------------

@pytest.fixture
def world(tmp_path: Any) -> tuple[Any, FakeClock, RecordingChannel]:
    clock, console = FakeClock(), RecordingChannel()
    return make_deps(SqliteStore(tmp_path / "s.db"), clock, console), clock, console


def fresh(name: str) -> dict[str, Any]:
    event = copy.deepcopy(load_event(name))
    event["id"] = new_id()
    return event


def test_health_issue_joins_the_open_ai_provider_incident_as_context(world: Any) -> None:
    deps, clock, console = world
    alarm_name = "ai-gateway-anthropic-executor-failures"
    alarm = sns_event("sns-cloudwatch-alarm-metric.json", message_id=new_id(), AlarmName=alarm_name,
                      AlarmArn=f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{alarm_name}",
                      Trigger={"Namespace": "Platform/AIGateway", "MetricName": "ExecutorFailures", "Dimensions": []})
    [opened] = on_event(alarm, "sns", deps)["outcomes"]
    assert opened["playbook"] == "ai-provider-outage"
    pages_before = len(console.sent)
    clock.advance(minutes=3)
    [health] = on_event(fresh("aws-health-issue-bedrock-open.json"), "eventbridge", deps)["outcomes"]
    assert (health["reason"], health["incident_id"]) == (Reason.ANNOTATED.value, opened["incident_id"])
    assert len(console.sent) == pages_before  # context, not a second page
    incident = deps.store.get(opened["incident_id"])
    assert any("context (by_playbook" in e.what and "AWS_BEDROCK_OPERATIONAL_ISSUE" in e.what
               for e in incident.timeline)
    assert [i.id for i in deps.store.list()] == [opened["incident_id"]]


def test_health_issue_with_nothing_open_opens_its_own_and_closed_resolves_it(world: Any) -> None:
    deps, clock, console = world
    [opened] = on_event(fresh("aws-health-issue-bedrock-open.json"), "eventbridge", deps)["outcomes"]
    assert (opened["reason"], opened["severity"]) == (Reason.OPENED.value, 2) and console.sent
    clock.advance(minutes=70)
    [closed] = on_event(fresh("aws-health-issue-bedrock-closed.json"), "eventbridge", deps)["outcomes"]
    assert (closed["reason"], closed["incident_id"]) == (Reason.RESOLVED.value, opened["incident_id"])


def test_health_check_stop_joins_the_service_deployment_incident(world: Any) -> None:
    deps, _clock, console = world
    [deploy] = on_event(fresh("ecs-deployment-failed.json"), "eventbridge", deps)["outcomes"]
    pages = len(console.sent)
    [task] = on_event(fresh("ecs-task-state-change-stopped-health-check.json"), "eventbridge", deps)["outcomes"]
    assert (task["reason"], task["incident_id"]) == (Reason.ANNOTATED.value, deploy["incident_id"])
    assert len(console.sent) == pages


def test_health_check_stop_without_a_deployment_opens_sev3(world: Any) -> None:
    deps, _, _ = world
    [task] = on_event(fresh("ecs-task-state-change-stopped-health-check.json"), "eventbridge", deps)["outcomes"]
    assert (task["reason"], task["severity"], task["rule"]) == (
        Reason.OPENED.value, 3, "rule:ecs-task-stopped")


def test_guardduty_sev1_asks_a_human_about_phi_and_never_marks_it(world: Any) -> None:
    deps, clock, _ = world
    [outcome] = on_event(fresh("guardduty-finding-s3-exfiltration.json"), "eventbridge", deps)["outcomes"]
    incident = deps.store.get(outcome["incident_id"])
    assert incident.severity is Severity.SEV1 and not incident.phi_exposure_suspected
    [question] = [d for d in incident.duties if d.kind == comms.PHI_DECISION]
    assert question.due_at == T0 + timedelta(minutes=15) and "a human decides" in question.reason
    clock.advance(minutes=5)
    marked = deps.pipeline.mark_phi_exposure(incident.id, "giles")
    assert marked.phi_exposure_suspected
    assert next(d for d in marked.duties if d.kind == comms.PHI_DECISION).done_by == "giles"


def test_guardduty_below_sev1_asks_nothing(world: Any) -> None:
    deps, _, _ = world
    [outcome] = on_event(fresh("guardduty-finding-recon-low.json"), "eventbridge", deps)["outcomes"]
    incident = deps.store.get(outcome["incident_id"])
    assert incident.severity is Severity.SEV4 and not incident.duties


@mock_aws
def test_daily_secret_check_opens_one_incident_per_old_secret_and_reruns_join_them(tmp_path: Any) -> None:
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    for name in ("prod/vendors/nursys-api-key", "prod/vendors/dea-csa-api-key"):
        sm.create_secret(Name=name, SecretString="not-read-by-the-check")
    created = sm.list_secrets()["SecretList"][0]["CreatedDate"]
    clock, console = FakeClock(created.astimezone(UTC) + timedelta(days=91)), RecordingChannel()
    deps = make_deps(SqliteStore(tmp_path / "s.db"), clock, console, aws=Aws({"secretsmanager": sm}))
    first = check_secret_rotation(deps)
    assert (first["secrets"], first["overdue"]) == (2, 2)
    assert {o["reason"] for o in first["outcomes"]} == {Reason.OPENED.value}
    assert {o["severity"] for o in first["outcomes"]} == {3}
    assert "not-read-by-the-check" not in str(first) + str([p.text for p in console.sent])
    clock.advance(days=1)
    second = check_secret_rotation(deps)
    assert {o["reason"] for o in second["outcomes"]} == {Reason.ALREADY_OPEN.value}
    assert len(deps.store.list()) == 2


@mock_aws
def test_daily_secret_check_leaves_recent_secrets_alone(tmp_path: Any) -> None:
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    sm.create_secret(Name="prod/vendors/npdb-api-key", SecretString="x")
    clock = FakeClock(datetime.now(UTC) + timedelta(days=10))
    deps = make_deps(SqliteStore(tmp_path / "s.db"), clock, RecordingChannel(), aws=Aws({"secretsmanager": sm}))
    assert check_secret_rotation(deps) == {"secrets": 1, "overdue": 0, "outcomes": []}
