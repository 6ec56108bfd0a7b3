"""ECS deployment state changes (runbook §1-2): a failed deployment opens the service's
incident, a completed one resolves it, the rest are recorded on it."""

from __future__ import annotations

from datetime import datetime

from chalicelib.models import Signal, SignalKind, Transition
from chalicelib.sources.common import facts, parse_time
from chalicelib.sources.eventbridge import EventBridgeEnvelope, converter

_TRANSITIONS = {
    "SERVICE_DEPLOYMENT_FAILED": Transition.TRIGGER,
    "SERVICE_DEPLOYMENT_COMPLETED": Transition.RESOLVE,
}


def _deployment(event: EventBridgeEnvelope, delivery_id: str, occurred: datetime) -> Signal:
    # The detail names no cluster or service: the service ARN is only in resources[0].
    service_arn = event.resources[0] if event.resources else "unknown-service"
    name = str(event.detail.get("eventName") or "UNKNOWN")
    service = service_arn.rsplit("/", 1)[-1]
    return Signal(
        kind=SignalKind.ECS_DEPLOYMENT, source="eventbridge", delivery_id=delivery_id,
        incident_key=f"ecs-service:{service_arn}", transition=_TRANSITIONS.get(name, Transition.NONE),
        occurred_at=parse_time(event.detail.get("updatedAt"), occurred),
        title=f"{service} {name}", resource=service_arn, account=event.account,
        region=event.region, facts=facts(event_name=name),
        details=(
            ("deployment_id", str(event.detail.get("deploymentId") or "")),
            ("reason", str(event.detail.get("reason") or "")[:300]),
        ),
    )


convert = converter(_deployment)
