"""EventBridge events: the envelope, then one converter per ``detail-type``.

The envelope is checked here; each detail goes to the converter for its type. A
detail-type with no converter becomes an ``unknown`` signal: EventBridge rules may
deliver more than we planned for, and none of it is dropped.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from chalicelib.models import Signal, SignalKind, Transition
from chalicelib.sources import aws_health, backups, cloudtrail, cloudwatch_alarm, codebuild, guardduty, secrets_rotation
from chalicelib.sources.common import Wire, parse_time
from chalicelib.sources.unknown import unknown_signal


class EventBridgeEnvelope(Wire):
    id: str
    detail_type: str = Field(alias="detail-type")
    source: str
    account: str | None = None  # moto-delivered events lack it
    time: str | None = None
    region: str | None = None
    resources: list[str] = Field(default_factory=list)
    detail: dict[str, Any] = Field(default_factory=dict)


def is_eventbridge(payload: Any) -> bool:
    return isinstance(payload, dict) and "detail-type" in payload and "detail" in payload


def to_signal(payload: dict[str, Any], received: datetime) -> Signal:
    event = EventBridgeEnvelope.model_validate(payload)
    delivery_id = f"eventbridge:{event.id}"
    occurred = parse_time(event.time, received)
    converter = _CONVERTERS.get(event.detail_type)
    if converter is None:
        return unknown_signal(
            payload, source="eventbridge", received=received, delivery_id=delivery_id,
            reason=f"no converter for detail-type {event.detail_type!r} from {event.source!r}",
            shape=f"{event.source}/{event.detail_type}",
        )
    return converter(event, delivery_id, occurred)


def _alarm_state_change(event: EventBridgeEnvelope, delivery_id: str, occurred: datetime) -> Signal:
    arn = event.resources[0] if event.resources else f"alarm:{event.detail.get('alarmName')}"
    return cloudwatch_alarm.from_camel(
        event.detail, source="eventbridge", delivery_id=delivery_id, arn=arn,
        account=event.account, received=occurred,
    )


def _alarm_configuration_change(
    event: EventBridgeEnvelope, delivery_id: str, occurred: datetime
) -> Signal:
    arn = event.resources[0] if event.resources else ""
    name = str(event.detail.get("alarmName") or arn)
    operation = str(event.detail.get("operation") or "change")
    return Signal(
        kind=SignalKind.ALARM, source="eventbridge", delivery_id=delivery_id,
        incident_key=f"alarm:{arn}", transition=Transition.NONE, occurred_at=occurred,
        title=f"{name} configuration {operation}", resource=arn, account=event.account,
        region=event.region, alarm_name=name, details=(("operation", operation),),
    )


def _cloudtrail(event: EventBridgeEnvelope, delivery_id: str, occurred: datetime) -> Signal:
    return cloudtrail.from_eventbridge(
        event.detail, delivery_id=delivery_id, account=event.account, region=event.region,
        received=occurred,
    )


_ECS_TRANSITIONS = {
    "SERVICE_DEPLOYMENT_FAILED": Transition.TRIGGER,
    "SERVICE_DEPLOYMENT_COMPLETED": Transition.RESOLVE,
}


def _ecs_deployment(event: EventBridgeEnvelope, delivery_id: str, occurred: datetime) -> Signal:
    # The detail names no cluster or service: the service ARN is only in resources[0].
    service_arn = event.resources[0] if event.resources else "unknown-service"
    name = str(event.detail.get("eventName") or "UNKNOWN")
    service = service_arn.rsplit("/", 1)[-1]
    return Signal(
        kind=SignalKind.ECS_DEPLOYMENT, source="eventbridge", delivery_id=delivery_id,
        incident_key=f"ecs-service:{service_arn}", transition=_ECS_TRANSITIONS.get(name, Transition.NONE),
        occurred_at=parse_time(event.detail.get("updatedAt"), occurred),
        title=f"{service} {name}", resource=service_arn, account=event.account,
        region=event.region, event_name=name,
        details=(
            ("deployment_id", str(event.detail.get("deploymentId") or "")),
            ("reason", str(event.detail.get("reason") or "")[:300]),
        ),
    )


HEALTH_CHECK_STOP = "failed ELB health checks"


def _ecs_task(event: EventBridgeEnvelope, delivery_id: str, occurred: datetime) -> Signal:
    detail = event.detail
    group = str(detail.get("group") or "")
    cluster_arn = str(detail.get("clusterArn") or "")
    status = str(detail.get("lastStatus") or "UNKNOWN")
    title = f"task {group or detail.get('taskArn', '')} {status}"
    if detail.get("stopCode"):
        title += f" ({detail['stopCode']})"
    # Stopped for failed health checks (runbook §1 step 6): the new revision is not healthy. It joins
    # the service's deployment incident (the rollback watch) while one is open.
    unhealthy = status == "STOPPED" and HEALTH_CHECK_STOP in str(detail.get("stoppedReason") or "")
    deployment_key = ""
    if group.startswith("service:") and ":cluster/" in cluster_arn:
        deployment_key = "ecs-service:" + cluster_arn.replace(":cluster/", ":service/", 1) + "/" + group[8:]
    if unhealthy:
        title = f"task of {group or cluster_arn} stopped: failed ELB health checks"
    return Signal(
        kind=SignalKind.ECS_TASK, source="eventbridge", delivery_id=delivery_id,
        incident_key=f"ecs-task:{cluster_arn}:{group}",
        transition=Transition.TRIGGER if unhealthy else Transition.NONE,
        occurred_at=parse_time(detail.get("updatedAt"), occurred), title=title,
        resource=str(detail.get("taskArn") or ""), account=event.account, region=event.region,
        event_name=status,
        facts=(("health_check_failed", unhealthy), ("joins_key", deployment_key if unhealthy else "")),
        details=(("stop_code", str(detail.get("stopCode") or "")),
                 ("task_definition", str(detail.get("taskDefinitionArn") or ""))),
    )


def _rds_event(event: EventBridgeEnvelope, delivery_id: str, occurred: datetime) -> Signal:
    detail = event.detail
    arn = str(detail.get("SourceArn") or (event.resources[0] if event.resources else ""))
    ident = str(detail.get("SourceIdentifier") or arn).removeprefix("rds:")
    event_id = str(detail.get("EventID") or "RDS-EVENT")
    tags = detail.get("Tags") if isinstance(detail.get("Tags"), dict) else {}
    categories = [str(c) for c in detail.get("EventCategories") or []]
    source_type = str(detail.get("SourceType") or "")
    return Signal(
        kind=SignalKind.RDS_EVENT, source="eventbridge", delivery_id=delivery_id,
        incident_key=f"rds:{arn}:{event_id}", transition=Transition.TRIGGER,
        occurred_at=parse_time(detail.get("Date"), occurred),
        title=f"{ident} {event_id}", resource=arn, account=event.account, region=event.region,
        event_name=event_id, namespaces=("AWS/RDS",),
        tags=tuple(sorted((str(k), str(v)) for k, v in (tags or {}).items())),
        # a snapshot's failure has no id worth matching (runbook §7): its category and type decide
        facts=(("rds_category", categories[0] if categories else ""), ("rds_source_type", source_type)),
        details=(("categories", ",".join(map(str, categories))),
                 ("message", str(detail.get("Message") or "")[:200])),
    )


def _s3_object(event: EventBridgeEnvelope, delivery_id: str, occurred: datetime) -> Signal:
    detail = event.detail
    bucket = str((detail.get("bucket") or {}).get("name") or "")
    return Signal(
        kind=SignalKind.S3_OBJECT, source="eventbridge", delivery_id=delivery_id,
        incident_key=f"s3:{bucket}:{event.detail_type}", transition=Transition.NONE,
        occurred_at=occurred, title=f"{event.detail_type} in {bucket}",
        resource=f"arn:aws:s3:::{bucket}", account=event.account, region=event.region,
        event_source="s3.amazonaws.com", event_name=event.detail_type,
        caller_account=str(detail.get("requester") or "") or None,
        details=(("deletion_type", str(detail.get("deletion-type") or "")),),
    )


_CONVERTERS = {
    "CloudWatch Alarm State Change": _alarm_state_change,
    "CloudWatch Alarm Configuration Change": _alarm_configuration_change,
    "AWS API Call via CloudTrail": _cloudtrail,
    "ECS Deployment State Change": _ecs_deployment,
    "ECS Task State Change": _ecs_task,
    "RDS DB Instance Event": _rds_event,
    "RDS DB Cluster Event": _rds_event,
    "RDS DB Snapshot Event": _rds_event,
    "AWS Health Event": aws_health.to_signal,
    "GuardDuty Finding": guardduty.to_signal,
    "AWS Service Event via CloudTrail": secrets_rotation.to_signal,
    "Backup Job State Change": backups.to_signal,
    "CodeBuild Build State Change": codebuild.to_signal,
    "Object Deleted": _s3_object,
    "Object Created": _s3_object,
}
