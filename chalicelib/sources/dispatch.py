"""``to_signals``: the first registered source that recognises a payload converts it.

``to_signals`` never raises on bad input: whatever no source recognises, or whatever a
converter rejects, comes back as an ``unknown`` signal with a one-line reason. That
includes structures nested deeper than ``safejson.MAX_DEPTH``: Lambda hands them over as
Python values (no JSON parsing to limit them), and every recursive walk would die of
``RecursionError``, so they are recognised without recursion before any converter runs. That is
the first half of the promise that nothing an event says is lost; the pipeline keeps
the other half.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from chalicelib.models import Signal
from chalicelib.sources import eventbridge, payloads, registry, safejson, sentry
from chalicelib.sources.unknown import unknown_signal


def decode(raw: bytes | str) -> Any:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        return safejson.loads(text)
    except ValueError:
        return text


def to_signals(payload: Any, received: datetime, source_hint: str = "unknown") -> list[Signal]:
    if payloads.deeper_than(payload, safejson.MAX_DEPTH):
        return [_too_deep(payload, received, source_hint)]
    try:
        return _dispatch(payload, received, source_hint)
    except (ValidationError, ValueError, TypeError, KeyError, AttributeError, ArithmeticError,
            RecursionError) as exc:
        # A converter met a shape it did not expect; keep the event, say why.
        reason = f"{type(exc).__name__} while converting: {str(exc).splitlines()[0][:200]}"
        return [unknown_signal(payload, source=source_hint, received=received, reason=reason)]


def _too_deep(payload: Any, received: datetime, source_hint: str) -> Signal:
    # The sender's own id still dedupes a redelivery; the digest (computed without recursion) otherwise.
    source, delivery_id = source_hint, None
    if eventbridge.is_eventbridge(payload) and isinstance(payload.get("id"), str):
        source, delivery_id = "eventbridge", f"eventbridge:{payload['id']}"
    return unknown_signal(payload, source=source, received=received, delivery_id=delivery_id,
                          reason=f"input nested deeper than {safejson.MAX_DEPTH} levels")


def _dispatch(payload: Any, received: datetime, source_hint: str) -> list[Signal]:
    for source in registry.sources():
        if source.recognise(payload):
            return source.converted(payload, received)
    # Envelopes we know, with content no source takes: the unknown signal says which content.
    if eventbridge.is_eventbridge(payload):
        # EventBridge rules may deliver more than we planned for: none of it is dropped.
        return [eventbridge.unrecognised(payload, received)]
    if sentry.looks_like_sentry(payload):
        return sentry.convert(payload, received)  # "Sentry resource … is not handled"
    return [unknown_signal(payload, source=source_hint, received=received,
                           reason="no converter recognises this payload")]
