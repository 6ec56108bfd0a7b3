"""An incident in words for people who do not read ARNs or event codes: post-mortems, investors.

Built from what the incident record keeps (kind, resource, title), so a report of last year's
incidents reads the same as today's. ``service`` names the thing that was hit ("ECS service
checkout-api"); ``headline`` says what happened to it ("Deployment of ECS service checkout-api
failed"). Unknown shapes fall back to the incident's own title: never a guess.
"""

from __future__ import annotations

import re

from chalicelib.models import Incident

# (AWS service, resource type) in an ARN → what people call it
_ARN_TYPES = {
    ("ecs", "service"): "ECS service", ("ecs", "task"): "ECS task", ("rds", "db"): "RDS database",
    ("rds", "cluster"): "Aurora cluster", ("rds", "snapshot"): "RDS snapshot", ("s3", ""): "S3 bucket",
    ("cloudwatch", "alarm"): "CloudWatch alarm", ("codebuild", "build"): "CodeBuild project",
    ("secretsmanager", "secret"): "secret", ("lambda", "function"): "Lambda function",
}
_ARN = re.compile(r"^arn:aws[\w-]*:(?P<service>[\w-]+):[\w-]*:\d*:(?P<rest>.+)$")
# an all-capitals code word (FAILED, POST_BUILD, AWS_RDS_OPERATIONAL_ISSUE), not an acronym (ELB, AWS)
_CODE = re.compile(r"(?<![\w-])(?:[A-Z]{4,}|[A-Z0-9]+(?:_[A-Z0-9]+)+)(?![\w-])")
_ECS_SERVICE_IN_TITLE = re.compile(r"\bservice:(?P<name>[\w.-]+)")

# RDS event codes seen in the severity rules and fixtures (AWS's RDS event catalogue)
_RDS_EVENTS = {
    "RDS-EVENT-0004": "was shut down", "RDS-EVENT-0006": "restarted", "RDS-EVENT-0007": "ran out of storage",
    "RDS-EVENT-0013": "failed over", "RDS-EVENT-0015": "failed over", "RDS-EVENT-0028": "had its backups disabled",
    "RDS-EVENT-0043": "failed", "RDS-EVENT-0049": "failed over", "RDS-EVENT-0050": "failed over",
    "RDS-EVENT-0071": "failed over", "RDS-EVENT-0089": "is low on storage", "RDS-EVENT-0173": "was patched",
}
_ECS_DEPLOYMENT = {"SERVICE_DEPLOYMENT_FAILED": "Deployment of {} failed",
                   "SERVICE_DEPLOYMENT_IN_PROGRESS": "Deployment of {} in progress",
                   "SERVICE_DEPLOYMENT_COMPLETED": "Deployment of {} completed"}
# CloudTrail calls the runbook watches (§5.5, §7): what the call tried to do
_CLOUDTRAIL_CALLS = {
    "PutObjectRetention": "change object retention", "PutObjectLegalHold": "change a legal hold",
    "PutObjectLockConfiguration": "change the Object Lock configuration", "DeleteObject": "delete an object",
    "PutBucketVersioning": "change versioning", "PutBucketLifecycleConfiguration": "change the lifecycle rules",
    "DeleteDBSnapshot": "delete a database snapshot", "ModifyDBInstance": "modify the database",
}


def service(incident: Incident) -> str:
    """The affected thing, named by its kind: ``ECS service checkout-api``, ``S3 bucket backup-vault-prod``."""
    if incident.kind == "ecs_task" and (found := _ECS_SERVICE_IN_TITLE.search(incident.title)):
        return f"ECS service {found['name']}"
    match = _ARN.match(incident.resource)
    if match is None and incident.kind.startswith("sentry") and incident.resource and not incident.resource.isdigit():
        return f"Sentry project {incident.resource}"
    if match is None:
        return incident.resource or incident.title
    service_name, rest = match["service"], match["rest"]
    kind, _, name = rest.partition(":") if re.match(r"^[\w-]+:", rest) else rest.partition("/")
    if not name:  # S3: arn:aws:s3:::bucket
        kind, name = "", rest
    label = _ARN_TYPES.get((service_name, kind))
    if service_name == "ecs":  # service/<cluster>/<name>, task/<cluster>/<id>
        name = name.rsplit("/", 1)[-1]
    if service_name == "codebuild":  # build/<project>:<build number>
        name = name.rsplit(":", 1)[0]
    return f"{label} {name}" if label else rest


def headline(incident: Incident) -> str:
    """What happened, in words: ``Deployment of ECS service checkout-api failed``."""
    title, what = incident.title, service(incident)
    if incident.kind == "ecs_deployment":
        for code, phrase in _ECS_DEPLOYMENT.items():
            if code in title:
                return phrase.format(what)
    if incident.kind == "rds_event":
        for code, phrase in _RDS_EVENTS.items():
            if code in title:
                return f"{what[0].upper()}{what[1:]} {phrase}"
    if incident.kind == "cloudtrail":
        call = title.split(" ", 1)[0]
        if call in _CLOUDTRAIL_CALLS:
            verdict = " (denied)" if title.endswith(" denied") else ""
            return f"Attempt to {_CLOUDTRAIL_CALLS[call]} on {what}{verdict}"
    if incident.kind == "alarm" and what.endswith(f" {title}"):
        return f"{what} fired"
    spoken = _CODE.sub(_spoken, title)
    return spoken[:1].upper() + spoken[1:]


def _spoken(code: re.Match[str]) -> str:
    """``FAILED`` → ``failed``, ``AWS_BEDROCK_OPERATIONAL_ISSUE`` → ``Bedrock operational issue``."""
    words = code.group().lower().split("_")
    if words[0] == "aws" and len(words) > 1:
        words = [words[1].upper() if len(words[1]) <= 3 else words[1].capitalize(), *words[2:]]
    return " ".join(words)
