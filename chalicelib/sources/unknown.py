"""The catch-all: input no converter recognised still becomes a signal.

Unknown input of one shape (same source and same detail-type or first keys) shares an
incident, so a flood of one new event type opens one incident, not thousands. The raw
payload is kept with the delivery record (see ``pipeline``), never in a page or a log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.models import Signal, SignalKind, Transition
from chalicelib.sources import payloads
from chalicelib.sources.common import digest


def unknown_signal(
    payload: Any,
    *,
    source: str,
    received: datetime,
    reason: str,
    delivery_id: str | None = None,
    shape: str | None = None,
) -> Signal:
    # payloads.encode is json.dumps(sort_keys=True) without recursion: Lambda may hand over any depth.
    raw = payload if isinstance(payload, str | bytes) else payloads.encode(payload)
    shape = shape or _shape(payload)
    return Signal(
        kind=SignalKind.UNKNOWN,
        source=source,
        delivery_id=delivery_id or f"{source}:sha256:{digest(raw)}",
        incident_key=f"unknown:{source}:{shape}",
        transition=Transition.TRIGGER,
        occurred_at=received,
        title=f"unrecognised {source} input ({shape})",
        unknown_reason=reason[:300],
        details=(("payload_sha256", digest(raw)),),
    )


def _shape(payload: Any) -> str:
    # Key names of arbitrary JSON could carry anything, so the shape is a digest of them.
    if isinstance(payload, dict):
        return "keys-" + digest(",".join(sorted(str(k) for k in payload)))[:10]
    return type(payload).__name__
