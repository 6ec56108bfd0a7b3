"""S3 object events by EventBridge (buckets with EventBridge notifications on).

The rule delivers deletions only (a rule on ``Object Created`` would run a Lambda per upload);
a creation handed over another way still converts. Under Object Lock a plain delete only adds a
delete marker (recorded, Sev4); a permanent delete removed a version, so it is
``version_targeted`` like the CloudTrail call that did it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.models import Signal, SignalKind, Transition
from chalicelib.sources.cloudtrail import caller
from chalicelib.sources.common import facts
from chalicelib.sources.eventbridge import EventBridgeEnvelope, converter

OBJECT_EVENTS = ("Object Created", "Object Deleted")


def recognises(payload: Any) -> bool:
    return (isinstance(payload, dict) and payload.get("source") == "aws.s3" and "detail" in payload
            and payload.get("detail-type") in OBJECT_EVENTS)


def _object_event(event: EventBridgeEnvelope, delivery_id: str, occurred: datetime) -> Signal:
    detail = event.detail
    bucket = str((detail.get("bucket") or {}).get("name") or "")
    requester = str(detail.get("requester") or "") or None
    deletion = str(detail.get("deletion-type") or "")
    return Signal(
        kind=SignalKind.S3_OBJECT, source="eventbridge", delivery_id=delivery_id,
        incident_key=f"s3:{bucket}:{event.detail_type}", transition=Transition.NONE,
        occurred_at=occurred, title=f"{event.detail_type} in {bucket}",
        resource=f"arn:aws:s3:::{bucket}", account=event.account, region=event.region,
        facts=facts(event_source="s3.amazonaws.com", event_name=event.detail_type,
                    caller_account=requester, caller=caller(requester, event.account),
                    version_targeted=deletion == "Permanently Deleted", deletion_type=deletion or None),
        details=(("deletion_type", deletion),),
    )


convert = converter(_object_event)
