"""Source payloads → ``Signal``: one module per source, and ``to_signals`` to pick one.

``to_signals`` never raises on bad input: whatever it cannot recognise, or whatever a
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

from chalicelib.models import Signal, SignalKind, Transition
from chalicelib.sources import cloudwatch_alarm, eventbridge, payloads, safejson, sentry, sns
from chalicelib.sources.common import parse_time
from chalicelib.sources.unknown import unknown_signal

__all__ = ["decode", "to_signals"]


def decode(raw: bytes | str) -> Any:
    """JSON-decode ``raw`` (depth-limited, finite numbers only); return the text itself if it is
    not JSON or is refused."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    try:
        return safejson.loads(text)
    except ValueError:
        return text


def to_signals(payload: Any, received: datetime, source_hint: str = "unknown") -> list[Signal]:
    """Convert one delivery (as Lambda or a webhook hands it over) into signals."""
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
    if sns.is_lambda_envelope(payload):
        return sns.from_lambda_envelope(payload, received)
    if eventbridge.is_eventbridge(payload):
        return [eventbridge.to_signal(payload, received)]
    if isinstance(payload, dict) and "alarmData" in payload and "alarmArn" in payload:
        return [_lambda_alarm_action(payload, received)]
    if sns.is_http_body(payload):
        return [sns.from_notification(payload, received)]
    if sentry.looks_like_sentry(payload):
        raw = payloads.encode(payload).encode()
        return [sentry.to_signal(payload, resource=None, request_id=None, raw=raw, received=received)]
    if isinstance(payload, dict) and isinstance(payload.get("event"), dict) and "event_type" in payload["event"]:
        return [_pagerduty_webhook(payload, received)]
    return [unknown_signal(payload, source=source_hint, received=received,
                           reason="no converter recognises this payload")]


def _lambda_alarm_action(payload: dict[str, Any], received: datetime) -> Signal:
    data = payload["alarmData"]
    stamp = (data.get("state") or {}).get("timestamp") or payload.get("time")
    return cloudwatch_alarm.from_camel(
        data, source="lambda", delivery_id=f"lambda:{payload['alarmArn']}:{stamp}",
        arn=payload["alarmArn"], account=payload.get("accountId"), received=received,
    )


def _pagerduty_webhook(payload: dict[str, Any], received: datetime) -> Signal:
    # Two-way sync is its own feature; here the event is recorded, never dropped.
    event = payload["event"]
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    key = data.get("incident_key") or data.get("id") or "unknown"
    return Signal(
        kind=SignalKind.PAGERDUTY, source="pagerduty", delivery_id=f"pagerduty:{event.get('id')}",
        incident_key=f"pagerduty:{key}", transition=Transition.NONE,
        occurred_at=parse_time(event.get("occurred_at"), received),
        title=f"PagerDuty {event.get('event_type')}", event_name=str(event.get("event_type")),
        details=(("pagerduty_incident", str(data.get("id") or "")),),
    )
