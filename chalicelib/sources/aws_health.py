"""AWS Health events (``aws.health``, ``AWS Health Event``): runbook §3 and §5.3.

A provider's own word that a service we run on is impaired, or will be maintained. One
incident per Health event (its ``eventArn``): ``open``/``upcoming`` trigger it, ``closed``
resolves it. An ``issue`` on a service a playbook answers for (Bedrock → the AI provider
outage, Cognito → the auth outage) names that playbook in ``joins_playbook``: while an
incident running it is open, the pipeline adds the Health event to that incident's timeline
as context instead of paging a second time (``decisions.context``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.models import Signal, Transition
from chalicelib.sources.eventbridge import EventBridgeEnvelope, converter

# Services the platform runs on (runbook §1-3, §5): an issue on one of them is a hard dependency.
HARD_DEPENDENCIES = frozenset({
    "BEDROCK", "RDS", "ECS", "FARGATE", "COGNITO", "S3", "ELASTICLOADBALANCING", "ECR", "CODEBUILD",
    "SECRETSMANAGER", "KMS", "CLOUDWATCH", "EVENTS", "LAMBDA", "DYNAMODB", "SNS", "VPC", "EC2",
})
# A Health issue on these services belongs to the incident of the playbook that handles them.
PLAYBOOK_FOR_SERVICE = {"BEDROCK": "ai-provider-outage", "COGNITO": "auth-outage"}

_TRANSITIONS = {"open": Transition.TRIGGER, "upcoming": Transition.TRIGGER, "closed": Transition.RESOLVE}


def facts_of(detail: dict[str, Any]) -> dict[str, str | bool]:
    service = str(detail.get("service") or "UNKNOWN").upper()
    category = str(detail.get("eventTypeCategory") or "unknown")
    return {
        "health_service": service,
        "event_type_code": str(detail.get("eventTypeCode") or "UNKNOWN"),
        "event_type_category": category,
        "status_code": str(detail.get("statusCode") or "unknown"),
        "hard_dependency": service in HARD_DEPENDENCIES,
        "joins_playbook": PLAYBOOK_FOR_SERVICE.get(service, "") if category == "issue" else "",
    }


def to_signal(event: EventBridgeEnvelope, delivery_id: str, occurred: datetime) -> Signal:
    detail = event.detail
    facts = facts_of(detail)
    arn = str(detail.get("eventArn") or delivery_id)
    region = str(detail.get("eventRegion") or event.region or "")
    entities = [str(e.get("entityValue")) for e in detail.get("affectedEntities") or []
                if isinstance(e, dict) and e.get("entityValue")]
    status = str(facts["status_code"])
    title = (f"AWS Health {facts['event_type_category']} {status}: {facts['event_type_code']}"
             + (f" in {region}" if region else ""))
    return Signal(
        kind="aws_health", source="eventbridge", delivery_id=delivery_id,
        incident_key=f"aws-health:{arn}", transition=_TRANSITIONS.get(status, Transition.NONE),
        occurred_at=occurred, title=title, resource=entities[0] if entities else arn,
        account=event.account, region=region or None, facts=tuple(facts.items()),
        details=(("event_arn", arn), ("affected_entities", ", ".join(entities[:10]) or "none listed"),
                 ("description", _description(detail)[:300])),
    )


convert = converter(to_signal)


def _description(detail: dict[str, Any]) -> str:
    for item in detail.get("eventDescription") or []:
        if isinstance(item, dict) and item.get("latestDescription"):
            return str(item["latestDescription"])
    return ""
