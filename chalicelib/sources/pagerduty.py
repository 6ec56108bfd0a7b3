"""PagerDuty v3 webhooks as signals: recorded, never dropped (two-way sync itself is
``notify/pagerduty_sync``, behind ``POST /webhooks/pagerduty``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.models import Signal, SignalKind, Transition
from chalicelib.sources.common import facts, parse_time


def recognises(payload: Any) -> bool:
    return isinstance(payload, dict) and isinstance(payload.get("event"), dict) and "event_type" in payload["event"]


def convert(payload: dict[str, Any], received: datetime) -> list[Signal]:
    event = payload["event"]
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    key = data.get("incident_key") or data.get("id") or "unknown"
    return [Signal(
        kind=SignalKind.PAGERDUTY, source="pagerduty", delivery_id=f"pagerduty:{event.get('id')}",
        incident_key=f"pagerduty:{key}", transition=Transition.NONE,
        occurred_at=parse_time(event.get("occurred_at"), received),
        title=f"PagerDuty {event.get('event_type')}", facts=facts(event_name=str(event.get("event_type"))),
        details=(("pagerduty_incident", str(data.get("id") or "")),),
    )]
