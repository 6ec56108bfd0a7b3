"""The EventBridge envelope, shared by every source an EventBridge rule delivers.

Each source's module converts its ``detail`` (``converter`` adapts it to the registry's
``convert(payload, received)``); an event no source recognises becomes an ``unknown``
signal (``unrecognised``): EventBridge rules may deliver more than we planned for, and none
of it is dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import Field

from chalicelib.models import Signal
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

    @property
    def delivery_id(self) -> str:
        return f"eventbridge:{self.id}"


DetailConverter = Callable[[EventBridgeEnvelope, str, datetime], Signal]


def is_eventbridge(payload: Any) -> bool:
    return isinstance(payload, dict) and "detail-type" in payload and "detail" in payload


def converter(convert_detail: DetailConverter) -> Callable[[Any, datetime], list[Signal]]:
    """``convert_detail(event, delivery_id, occurred)`` as a registry converter: the envelope
    validated, the delivery id EventBridge's own, the time the event's (else ``received``)."""

    def convert(payload: Any, received: datetime) -> list[Signal]:
        event = EventBridgeEnvelope.model_validate(payload)
        return [convert_detail(event, event.delivery_id, parse_time(event.time, received))]

    convert.__doc__ = convert_detail.__doc__
    return convert


def unrecognised(payload: dict[str, Any], received: datetime) -> Signal:
    event = EventBridgeEnvelope.model_validate(payload)
    return unknown_signal(
        payload, source="eventbridge", received=received, delivery_id=event.delivery_id,
        reason=f"no converter for detail-type {event.detail_type!r} from {event.source!r}",
        shape=f"{event.source}/{event.detail_type}",
    )
