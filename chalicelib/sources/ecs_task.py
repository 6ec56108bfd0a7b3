"""ECS task state changes: the rule delivers STOPPED tasks only (a task that died, was killed
for failing its health checks, or could not start). Recorded per cluster and task group."""

from __future__ import annotations

from datetime import datetime

from chalicelib.models import Signal, SignalKind, Transition
from chalicelib.sources.common import facts, parse_time
from chalicelib.sources.eventbridge import EventBridgeEnvelope, converter


def _task(event: EventBridgeEnvelope, delivery_id: str, occurred: datetime) -> Signal:
    detail = event.detail
    group = str(detail.get("group") or "")
    status = str(detail.get("lastStatus") or "UNKNOWN")
    stop_code = str(detail.get("stopCode") or "")
    title = f"task {group or detail.get('taskArn', '')} {status}"
    if stop_code:
        title += f" ({stop_code})"
    return Signal(
        kind=SignalKind.ECS_TASK, source="eventbridge", delivery_id=delivery_id,
        incident_key=f"ecs-task:{detail.get('clusterArn', '')}:{group}", transition=Transition.NONE,
        occurred_at=parse_time(detail.get("updatedAt"), occurred), title=title,
        resource=str(detail.get("taskArn") or ""), account=event.account, region=event.region,
        facts=facts(event_name=status, stop_code=stop_code or None, task_group=group or None),
        details=(("stop_code", stop_code),
                 ("task_definition", str(detail.get("taskDefinitionArn") or ""))),
    )


convert = converter(_task)
