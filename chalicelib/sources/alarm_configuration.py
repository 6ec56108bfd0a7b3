"""CloudWatch alarm configuration changes (created, updated, deleted) by EventBridge.

Recorded on the alarm's own incident (same key as its state changes) without opening one:
someone raising a threshold or deleting an alarm during an incident belongs on its timeline.
"""

from __future__ import annotations

from datetime import datetime

from chalicelib.models import Signal, SignalKind, Transition
from chalicelib.sources.common import facts
from chalicelib.sources.eventbridge import EventBridgeEnvelope, converter


def _configuration_change(event: EventBridgeEnvelope, delivery_id: str, occurred: datetime) -> Signal:
    arn = event.resources[0] if event.resources else ""
    name = str(event.detail.get("alarmName") or arn)
    operation = str(event.detail.get("operation") or "change")
    return Signal(
        kind=SignalKind.ALARM, source="eventbridge", delivery_id=delivery_id,
        incident_key=f"alarm:{arn}", transition=Transition.NONE, occurred_at=occurred,
        title=f"{name} configuration {operation}", resource=arn, account=event.account,
        region=event.region, facts=facts(alarm_name=name, operation=operation),
        details=(("operation", operation),),
    )


convert = converter(_configuration_change)
