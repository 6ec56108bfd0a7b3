"""RDS instance and cluster events (runbook §3, §7): failover, restarts, storage, backups.

One incident per resource and event id; ``event_name`` is the RDS ``EventID``
(``RDS-EVENT-0049``), which the rules in severity.yaml name.
"""

from __future__ import annotations

from datetime import datetime

from chalicelib.models import Signal, SignalKind, Transition
from chalicelib.sources.common import facts, parse_time
from chalicelib.sources.eventbridge import EventBridgeEnvelope, converter


def _rds_event(event: EventBridgeEnvelope, delivery_id: str, occurred: datetime) -> Signal:
    detail = event.detail
    arn = str(detail.get("SourceArn") or (event.resources[0] if event.resources else ""))
    ident = str(detail.get("SourceIdentifier") or arn).removeprefix("rds:")
    event_id = str(detail.get("EventID") or "RDS-EVENT")
    tags = detail.get("Tags") if isinstance(detail.get("Tags"), dict) else {}
    categories = detail.get("EventCategories")
    categories = [str(c) for c in categories] if isinstance(categories, list) else []
    return Signal(
        kind=SignalKind.RDS_EVENT, source="eventbridge", delivery_id=delivery_id,
        incident_key=f"rds:{arn}:{event_id}", transition=Transition.TRIGGER,
        occurred_at=parse_time(detail.get("Date"), occurred),
        title=f"{ident} {event_id}", resource=arn, account=event.account, region=event.region,
        facts=facts(event_name=event_id, namespace="AWS/RDS", event_category=categories,
                    source_type=str(detail.get("SourceType") or "") or None),
        tags=tuple(sorted((str(k), str(v)) for k, v in (tags or {}).items())),
        details=(("categories", ",".join(categories)),
                 ("message", str(detail.get("Message") or "")[:200])),
    )


convert = converter(_rds_event)
