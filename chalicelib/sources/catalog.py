"""Every source the responder hears, in the order ``to_signals`` asks them.

Stdlib only (see the package docstring): ``app.py`` declares one Lambda per EventBridge rule
listed here, ``models`` checks kinds and facts against it, ``severity.yaml`` may name only the
facts declared here. Order matters where shapes overlap: SNS envelopes first.
"""

from __future__ import annotations

from chalicelib.sources.registry import EventBridgeRule, Fact, Source

# CloudTrail S3 calls that can touch Object Lock protection (runbook §5.5).
OBJECT_LOCK_EVENT_NAMES = (
    "PutObjectRetention", "PutObjectLegalHold", "PutObjectLockConfiguration",
    "DeleteObject", "DeleteObjects", "PutBucketVersioning",
)

# --- facts several sources share (one name, one type, one meaning) -----------------------

ALARM_NAME = Fact("alarm_name", str, "the CloudWatch alarm's name (rule words are looked for in it)")
NAMESPACE = Fact("namespace", str, "a metric namespace the signal concerns (AWS/RDS …), one per metric")
EVENT_NAME = Fact("event_name", str, "what happened, in the sender's words (API call, ECS event, RDS EventID)")
EVENT_SOURCE = Fact("event_source", str, "the AWS service endpoint (s3.amazonaws.com)")
CALLER_ACCOUNT = Fact("caller_account", str, "the AWS account of whoever made the call")
CALLER = Fact("caller", str, "internal (the caller's account is the event's) or external",
              values=("internal", "external"))
VERSION_TARGETED = Fact("version_targeted", bool,
                        "an object version was (or may have been) deleted, not just hidden by a delete marker")
SENTRY_FACTS = (
    Fact("sentry_resource", str, "the webhook resource: issue, event_alert, error, metric_alert, installation"),
    Fact("sentry_action", str, "created, resolved, critical, warning …"),
    Fact("sentry_level", str, "fatal, error, warning, info, debug"),
    Fact("sentry_environment", str, "the Sentry environment (production, staging …)"),
)
SENTRY_ROUTE = "route:/webhooks/sentry"
# Where a signal belongs when another incident is open (decisions/context.py).
JOINS_KEY = Fact("joins_key", str, "the incident key this signal joins as context while that incident is open")
JOINS_PLAYBOOK = Fact("joins_playbook", str, "the playbook whose open incident this signal joins as context")
FAILED_OR_OK = ("FAILED", "TIMED_OUT", "FAULT", "STOPPED", "IN_PROGRESS", "SUCCEEDED")

SOURCES: tuple[Source, ...] = (
    Source(
        name="cloudwatch_alarm", kind="alarm",
        doc="CloudWatch alarm state changes by SNS, EventBridge or a Lambda action (runbook §4-5)",
        triggers=("sns", EventBridgeRule("on_alarm_state_change", {
            "source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"]})),
        facts=(ALARM_NAME, NAMESPACE, Fact("metric", str, "a metric the alarm watches, one per metric"),
               Fact("alarm_type", str, "metric or composite")),
        fixtures=("sns-cloudwatch-alarm-metric.json", "eventbridge-cloudwatch-alarm-state-change-single-metric.json",
                  "cloudwatch-alarm-lambda-action-metric-math.json", "sns-http-notification-cloudwatch-alarm.json"),
        recognises="chalicelib.sources.cloudwatch_alarm:recognises",
        convert="chalicelib.sources.cloudwatch_alarm:convert",
        customer_facing=True,
    ),
    Source(
        name="alarm_configuration", kind="alarm",
        doc="CloudWatch alarm created, updated or deleted: recorded on the alarm's incident (runbook §4)",
        triggers=(EventBridgeRule("on_alarm_configuration_change", {
            "source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm Configuration Change"]}),),
        facts=(ALARM_NAME, Fact("operation", str, "create, update or delete")),
        fixtures=("eventbridge-cloudwatch-alarm-configuration-change-update.json",),
        convert="chalicelib.sources.alarm_configuration:convert",
    ),
    Source(
        name="cloudtrail_s3", kind="cloudtrail",
        doc="CloudTrail S3 calls that weaken Object Lock protection (runbook §5.5)",
        triggers=(EventBridgeRule("on_cloudtrail_s3", {
            "source": ["aws.s3"], "detail-type": ["AWS API Call via CloudTrail"],
            "detail": {"eventSource": ["s3.amazonaws.com"], "eventName": list(OBJECT_LOCK_EVENT_NAMES)}}),),
        facts=(EVENT_SOURCE, EVENT_NAME, Fact("error_code", str, "why the call was denied (AccessDenied)"),
               CALLER_ACCOUNT, CALLER, VERSION_TARGETED,
               Fact("versioning_status", str, "the bucket versioning a PutBucketVersioning asks for")),
        fixtures=("eventbridge-cloudtrail-s3-putobjectretention.json",
                  "eventbridge-cloudtrail-s3-deleteobject-bypass-governance.json",
                  "eventbridge-cloudtrail-s3-putbucketversioning-suspended.json"),
        convert="chalicelib.sources.cloudtrail:convert",
    ),
    Source(
        name="ecs_deployment", kind="ecs_deployment",
        doc="ECS service deployments failing, completing or rolling back (runbook §1-2)",
        triggers=(EventBridgeRule("on_ecs_deployment", {
            "source": ["aws.ecs"], "detail-type": ["ECS Deployment State Change"]}),),
        facts=(EVENT_NAME,),
        fixtures=("ecs-deployment-failed.json", "ecs-deployment-completed.json"),
        convert="chalicelib.sources.ecs_deployment:convert",
        customer_facing=True,
    ),
    Source(
        name="ecs_task", kind="ecs_task",
        doc="ECS tasks that stopped (crashed, failed health checks, could not start) (runbook §1-2)",
        triggers=(EventBridgeRule("on_ecs_task_stopped", {
            "source": ["aws.ecs"], "detail-type": ["ECS Task State Change"],
            "detail": {"lastStatus": ["STOPPED"]}}),),
        facts=(EVENT_NAME, Fact("stop_code", str, "why ECS stopped it (TaskFailedToStart, EssentialContainerExited …)"),
               Fact("task_group", str, "the task's group (service:checkout-api)"),
               Fact("health_check_failed", bool, "stopped because it failed its load balancer health checks"),
               JOINS_KEY),
        fixtures=("ecs-task-state-change-stopped.json", "ecs-task-state-change-stopped-health-check.json"),
        convert="chalicelib.sources.ecs_task:convert",
    ),
    Source(
        name="rds_event", kind="rds_event",
        doc="RDS instance and cluster events: failover, restarts, storage, backups (runbook §3, §7)",
        triggers=(EventBridgeRule("on_rds_event", {
            "source": ["aws.rds"],
            "detail-type": ["RDS DB Instance Event", "RDS DB Cluster Event", "RDS DB Snapshot Event"]}),),
        facts=(EVENT_NAME, NAMESPACE, Fact("event_category", str, "an RDS event category (failover, backup …)"),
               Fact("source_type", str, "DB_INSTANCE, CLUSTER, SNAPSHOT or CLUSTER_SNAPSHOT")),
        fixtures=("rds-db-instance-event-failover.json", "rds-db-cluster-event-patched.json",
                  "rds-db-instance-event-storage-full.json", "rds-db-instance-event-low-storage.json",
                  "rds-db-instance-event-shutdown.json", "rds-db-instance-event-backups-disabled.json",
                  "rds-db-cluster-event-failover.json", "rds-db-snapshot-event-failed.json"),
        convert="chalicelib.sources.rds_event:convert",
        customer_facing=True,
    ),
    Source(
        name="s3_object", kind="s3_object",
        doc="S3 object deletions in buckets that send EventBridge notifications (runbook §5.5)",
        triggers=(EventBridgeRule("on_s3_object_deleted", {
            "source": ["aws.s3"], "detail-type": ["Object Deleted"]}),),
        facts=(EVENT_SOURCE, EVENT_NAME, CALLER_ACCOUNT, CALLER, VERSION_TARGETED,
               Fact("deletion_type", str, "Delete Marker Created or Permanently Deleted")),
        fixtures=("eventbridge-s3-object-deleted-direct.json",),
        recognises="chalicelib.sources.s3_object:recognises", convert="chalicelib.sources.s3_object:convert",
    ),
    Source(
        name="cloudtrail_recovery", kind="cloudtrail",
        doc="CloudTrail calls that weaken recovery: RDS backup retention, snapshot deletes, bucket lifecycle (§7)",
        triggers=(EventBridgeRule("on_cloudtrail_recovery", {
            "source": ["aws.rds", "aws.s3"], "detail-type": ["AWS API Call via CloudTrail"],
            "detail": {"eventName": ["ModifyDBInstance", "ModifyDBCluster", "DeleteDBSnapshot",
                                     "DeleteDBClusterSnapshot", "PutBucketLifecycleConfiguration",
                                     "PutBucketLifecycle", "DeleteBucketLifecycle"]}}),),
        facts=(EVENT_SOURCE, EVENT_NAME, CALLER_ACCOUNT, CALLER,
               Fact("bucket", str, "the S3 bucket a call names"),
               Fact("recovery_weakening", str, "what the call does to recovery (sources/backups.py)",
                    values=("pitr_disabled", "retention_lowered", "snapshot_deleted", "bucket_lifecycle_changed"))),
        fixtures=("eventbridge-cloudtrail-rds-modifydbinstance-retention-0.json",
                  "eventbridge-cloudtrail-rds-modifydbinstance-retention-1.json",
                  "eventbridge-cloudtrail-rds-deletedbsnapshot.json",
                  "eventbridge-cloudtrail-s3-putbucketlifecycleconfiguration.json",
                  "eventbridge-cloudtrail-s3-putbucketversioning-source-receipts.json"),
        convert="chalicelib.sources.cloudtrail:convert",
    ),
    Source(
        name="aws_health", kind="aws_health",
        doc="AWS Health issues and scheduled changes for the services we run on (runbook §3, §5.3)",
        triggers=(EventBridgeRule("on_aws_health", {"source": ["aws.health"], "detail-type": ["AWS Health Event"]}),),
        facts=(Fact("health_service", str, "the AWS service (BEDROCK, RDS, ECS, COGNITO …)"),
               Fact("event_type_code", str, "AWS_<SERVICE>_OPERATIONAL_ISSUE …"),
               Fact("event_type_category", str, "issue, scheduledChange, accountNotification or investigation",
                    values=("issue", "scheduledChange", "accountNotification", "investigation", "unknown")),
               Fact("status_code", str, "open, upcoming or closed"),
               Fact("hard_dependency", bool, "the platform runs on this service"),
               JOINS_PLAYBOOK),
        fixtures=("aws-health-issue-bedrock-open.json", "aws-health-issue-bedrock-closed.json",
                  "aws-health-issue-rds-open.json", "aws-health-scheduled-rds-maintenance.json"),
        convert="chalicelib.sources.aws_health:convert",
    ),
    Source(
        name="guardduty", kind="guardduty",
        doc="GuardDuty findings; credential or data exfiltration asks a human about PHI (runbook §4, §6)",
        triggers=(EventBridgeRule("on_guardduty", {
            "source": ["aws.guardduty"], "detail-type": ["GuardDuty Finding"]}),),
        facts=(Fact("finding_type", str, "ThreatPurpose:ResourceType/ThreatFamily.Detail"),
               Fact("finding_severity", float, "GuardDuty's score, 0.1-10"),
               Fact("severity_band", str, "GuardDuty's band of the score", values=("high", "medium", "low")),
               Fact("exposure_class", bool, "credential exfiltration, S3 data exfiltration, a compromised role")),
        fixtures=("guardduty-finding-instance-credential-exfiltration.json", "guardduty-finding-s3-exfiltration.json",
                  "guardduty-finding-recon-low.json"),
        convert="chalicelib.sources.guardduty:convert",
    ),
    Source(
        name="secrets_rotation", kind="secrets_rotation",
        doc="Secrets Manager rotation failures, and the daily check for secrets older than 90 days (runbook §6)",
        triggers=(EventBridgeRule("on_secret_rotation_failed", {
            "source": ["aws.secretsmanager"], "detail-type": ["AWS Service Event via CloudTrail"],
            "detail": {"eventName": ["RotationFailed"]}}),),
        facts=(Fact("rotation_problem", str, "failed (RotationFailed) or overdue (the daily check)",
                    values=("failed", "overdue")),
               Fact("secret_name", str, "the secret's name (never its value)")),
        fixtures=("eventbridge-cloudtrail-secretsmanager-rotationfailed.json",),
        convert="chalicelib.sources.secrets_rotation:convert",
    ),
    Source(
        name="backup", kind="backup",
        doc="AWS Backup jobs that failed, aborted or expired; a completed one resolves (runbook §7)",
        triggers=(EventBridgeRule("on_backup_job", {
            "source": ["aws.backup"], "detail-type": ["Backup Job State Change"],
            "detail": {"state": ["FAILED", "ABORTED", "EXPIRED", "COMPLETED"]}}),),
        facts=(Fact("backup_state", str, "the job's state (FAILED, ABORTED, EXPIRED, COMPLETED …)"),
               Fact("backup_resource_type", str, "RDS, EFS, DynamoDB …")),
        fixtures=("aws-backup-job-failed.json", "aws-backup-job-aborted.json"),
        convert="chalicelib.sources.backups:convert",
    ),
    Source(
        name="codebuild", kind="codebuild",
        doc="CodeBuild builds of the deploy path: a failed rollback build is worse than a failed deploy (§1-2)",
        triggers=(EventBridgeRule("on_codebuild", {
            "source": ["aws.codebuild"], "detail-type": ["CodeBuild Build State Change"],
            "detail": {"build-status": ["FAILED", "TIMED_OUT", "FAULT", "SUCCEEDED"]}}),),
        facts=(Fact("project_name", str, "the CodeBuild project"),
               Fact("build_status", str, "FAILED, TIMED_OUT, FAULT, SUCCEEDED …", values=FAILED_OR_OK),
               Fact("rollback_build", bool, "the build's DEPLOY_MODE variable says rollback")),
        fixtures=("codebuild-build-state-change-deploy-failed.json",
                  "codebuild-build-state-change-rollback-failed.json"),
        convert="chalicelib.sources.codebuild:convert",
    ),
    Source(
        name="sentry_issue", kind="sentry_issue",
        doc="Sentry issues created, resolved, archived (and legacy plugin alerts) (runbook §4)",
        triggers=(SENTRY_ROUTE,), facts=SENTRY_FACTS,
        fixtures=("sentry-issue-created.json", "sentry-legacy-webhooks-plugin-event.json"),
        recognises="chalicelib.sources.sentry:recognises_issue", convert="chalicelib.sources.sentry:convert",
        customer_facing=True,
    ),
    Source(
        name="sentry_event_alert", kind="sentry_event_alert",
        doc="Sentry issue-alert rules firing on an event (runbook §4)",
        triggers=(SENTRY_ROUTE,), facts=SENTRY_FACTS, fixtures=("sentry-event-alert.json",),
        recognises="chalicelib.sources.sentry:recognises_event_alert", convert="chalicelib.sources.sentry:convert",
        customer_facing=True,
    ),
    Source(
        name="sentry_error", kind="sentry_error",
        doc="Sentry error webhooks, one per error event (runbook §4)",
        triggers=(SENTRY_ROUTE,), facts=SENTRY_FACTS, fixtures=("sentry-error-created.json",),
        recognises="chalicelib.sources.sentry:recognises_error", convert="chalicelib.sources.sentry:convert",
        customer_facing=True,
    ),
    Source(
        name="sentry_metric_alert", kind="sentry_metric_alert",
        doc="Sentry metric alerts: critical, warning, resolved (runbook §4)",
        triggers=(SENTRY_ROUTE,), facts=SENTRY_FACTS,
        fixtures=("sentry-metric-alert-critical.json", "sentry-metric-alert-resolved.json"),
        recognises="chalicelib.sources.sentry:recognises_metric_alert", convert="chalicelib.sources.sentry:convert",
        customer_facing=True,
    ),
    Source(
        name="sentry_installation", kind="sentry_installation",
        doc="The Sentry integration installed or removed: recorded, never paged",
        triggers=(SENTRY_ROUTE,), facts=SENTRY_FACTS, fixtures=("sentry-installation-created.json",),
        recognises="chalicelib.sources.sentry:recognises_installation", convert="chalicelib.sources.sentry:convert",
    ),
    Source(
        name="pagerduty", kind="pagerduty",
        doc="PagerDuty v3 webhooks (acknowledged, resolved in PagerDuty): recorded, never paged (runbook §8)",
        triggers=("route:/webhooks/pagerduty",), facts=(EVENT_NAME,),
        fixtures=("pagerduty-webhook-incident-acknowledged.json",),
        recognises="chalicelib.sources.pagerduty:recognises", convert="chalicelib.sources.pagerduty:convert",
    ),
)
