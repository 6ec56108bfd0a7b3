"""ECS task state changes: the rule delivers STOPPED tasks only (a task that died, was killed
for failing its health checks, or could not start). Recorded per cluster and task group.

A task stopped for failed ELB health checks (runbook §1 step 6: the new revision is not
healthy) triggers, and names its service's deployment incident (``joins_key``): while that
one is open, the stop joins it as context, the rollback watch's evidence, instead of paging
again (``decisions/context.py``)."""

from __future__ import annotations

from datetime import datetime

from chalicelib.models import Signal, SignalKind, Transition
from chalicelib.sources.common import facts, parse_time
from chalicelib.sources.eventbridge import EventBridgeEnvelope, converter

HEALTH_CHECK_STOP = "failed ELB health checks"


def deployment_key(cluster_arn: str, group: str) -> str:
    """The ``ecs_deployment`` incident key of the service a task belongs to ("" if not a service's)."""
    if not group.startswith("service:") or ":cluster/" not in cluster_arn:
        return ""
    return "ecs-service:" + cluster_arn.replace(":cluster/", ":service/", 1) + "/" + group.removeprefix("service:")


def _task(event: EventBridgeEnvelope, delivery_id: str, occurred: datetime) -> Signal:
    detail = event.detail
    group = str(detail.get("group") or "")
    cluster_arn = str(detail.get("clusterArn") or "")
    status = str(detail.get("lastStatus") or "UNKNOWN")
    stop_code = str(detail.get("stopCode") or "")
    title = f"task {group or detail.get('taskArn', '')} {status}"
    if stop_code:
        title += f" ({stop_code})"
    unhealthy = status == "STOPPED" and HEALTH_CHECK_STOP in str(detail.get("stoppedReason") or "")
    if unhealthy:
        title = f"task of {group or cluster_arn} stopped: failed ELB health checks"
    return Signal(
        kind=SignalKind.ECS_TASK, source="eventbridge", delivery_id=delivery_id,
        incident_key=f"ecs-task:{cluster_arn}:{group}", transition=Transition.TRIGGER if unhealthy else Transition.NONE,
        occurred_at=parse_time(detail.get("updatedAt"), occurred), title=title,
        resource=str(detail.get("taskArn") or ""), account=event.account, region=event.region,
        facts=facts(event_name=status, stop_code=stop_code or None, task_group=group or None,
                    health_check_failed=unhealthy,
                    joins_key=(deployment_key(cluster_arn, group) or None) if unhealthy else None),
        details=(("stop_code", stop_code),
                 ("task_definition", str(detail.get("taskDefinitionArn") or ""))),
    )


convert = converter(_task)
