"""SNS deliveries: the Lambda ``Records`` envelope and the HTTP(S) subscription body.

``Sns.Message`` is a JSON string inside JSON; for CloudWatch alarms it is the alarm
message. A raw ``Publish`` can put any text there, and that text becomes an
``unknown`` signal (its delivery id is still the SNS ``MessageId``, so a redelivery of
garbage is deduplicated like anything else). Never parse the alarm name out of
``Subject``: SNS truncates it to 100 characters.

``repeat_glance`` is the hot path's narrow read: for a Lambda envelope of one CloudWatch
notification in ALARM, only the delivery id and a digest of the alarm message less its
per-delivery members (no JSON parse), so a repeat of an alarm the pipeline has seen skips
parsing and conversion entirely.
"""

from __future__ import annotations

import re
from datetime import datetime
from hashlib import sha256
from typing import Any, NamedTuple

from pydantic import Field, ValidationError

from chalicelib.models import Signal, bounded_id
from chalicelib.sources import cloudwatch_alarm, safejson
from chalicelib.sources.common import Wire, parse_time
from chalicelib.sources.unknown import unknown_signal


class SnsNotification(Wire):
    message_id: str = Field(alias="MessageId")
    message: str = Field("", alias="Message")
    type: str = Field("Notification", alias="Type")
    topic_arn: str | None = Field(None, alias="TopicArn")
    timestamp: str | None = Field(None, alias="Timestamp")


class Glance(NamedTuple):
    delivery_id: str
    alarm: bytes  # the alarm and its configuration: equal digests convert and classify alike


# A JSON string token exactly as the grammar has it (unrolled: one regex step per run of plain
# characters), so putting one in place of another keeps a valid text valid.
_JSON_STRING = r'"[^"\\\x00-\x1f]*(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\x00-\x1f]*)*"'
# The members that differ between deliveries of one alarm and never decide its conversion or
# classification (``StateChangeTime`` is the signal's ``occurred_at``, a per-delivery field). In
# valid JSON an unescaped ``"Name"`` followed by ``:`` ends a key, so what follows is a value.
_PER_DELIVERY_KEYS = ('"StateChangeTime"', '"NewStateReason"', '"OldStateValue"')
_VALUE = re.compile(r"[ \t\n\r]*:[ \t\n\r]*(" + _JSON_STRING + ")")
_IN_ALARM = re.compile(r'"NewStateValue"[ \t\n\r]*:[ \t\n\r]*"ALARM"')


def blanked(text: str) -> str:
    """``text`` with the string values of its per-delivery members replaced by ``""`` (the keys
    kept), so two texts blank alike only if they differ in nothing but those values. Found with
    ``str.find`` (a regex alternation tried at every quote costs several times more)."""
    spans = []
    for key in _PER_DELIVERY_KEYS:
        at = text.find(key)
        while at >= 0:
            value = _VALUE.match(text, at + len(key))
            if value is not None:
                spans.append((at, *value.span(1)))
            at = text.find(key, at + 1)
    if not spans:
        return text
    pieces: list[str] = []
    done = 0
    for at, start, end in sorted(spans):
        if at >= done:  # a key inside a value already blanked is not a key
            pieces += (text[done:start], '""')
            done = end
    pieces.append(text[done:])
    return "".join(pieces)


def repeat_glance(payload: Any) -> Glance | None:
    """A Lambda envelope of one SNS notification whose Message says ``"NewStateValue": "ALARM"``,
    read without parsing the Message: the alarm is a digest of its text with the per-delivery
    values blanked. None for anything else, which takes the full path.

    Not parsing is safe because a glance only ever finds what the full path remembered: texts equal
    but for those string values are both valid JSON or both not, and parse alike but for them,
    so a text that is not valid JSON, not an alarm or refused (``NaN``, too deep) was never
    remembered and never will be. The digest keeps the memory small whatever the Message's size."""
    try:
        (record,) = payload["Records"]
        sns = record["Sns"]
        message_id, text = sns["MessageId"], sns["Message"]
        if sns.get("Type") != "Notification" or not isinstance(message_id, str) or not isinstance(text, str):
            return None
    except (KeyError, TypeError, ValueError):
        return None
    if _IN_ALARM.search(text) is None:
        return None
    identity = blanked(text).encode("utf-8", "surrogatepass")
    return Glance(bounded_id(f"sns:{message_id}"), sha256(identity).digest())  # SHA-NI: ~2 µs per alarm


def is_lambda_envelope(payload: Any) -> bool:
    return isinstance(payload, dict) and isinstance(payload.get("Records"), list) and any(
        isinstance(r, dict) and "Sns" in r for r in payload["Records"]
    )


def is_http_body(payload: Any) -> bool:
    return isinstance(payload, dict) and "MessageId" in payload and "Type" in payload and "Message" in payload


def from_lambda_envelope(payload: dict[str, Any], received: datetime) -> list[Signal]:
    signals = []
    for index, record in enumerate(payload["Records"]):
        sns = record.get("Sns") if isinstance(record, dict) else None
        if not isinstance(sns, dict):
            signals.append(unknown_signal(record, source="sns", received=received,
                                          reason=f"Records[{index}] has no Sns object"))
            continue
        signals.append(from_notification(sns, received))
    return signals


def from_notification(sns: dict[str, Any], received: datetime) -> Signal:
    try:
        note = SnsNotification.model_validate(sns)
    except ValidationError as exc:
        return unknown_signal(sns, source="sns", received=received,
                              reason=f"SNS notification invalid: {_first_error(exc)}")
    delivery_id = f"sns:{note.message_id}"
    sent = parse_time(note.timestamp, received)
    if note.type != "Notification":
        return unknown_signal(sns, source="sns", received=sent, delivery_id=delivery_id,
                              reason=f"SNS {note.type}: confirm or ignore it by hand",
                              shape=f"sns/{note.type}")
    try:
        message = safejson.loads(note.message)
    except safejson.JsonRejected as exc:  # nested 100,000 deep, or NaN: kept as text, never parsed
        return unknown_signal(note.message, source="sns", received=sent, delivery_id=delivery_id,
                              reason=f"SNS Message refused: {exc}", shape="sns/refused")
    except ValueError:
        return unknown_signal(note.message, source="sns", received=sent, delivery_id=delivery_id,
                              reason="SNS Message is not JSON", shape="sns/text")
    if not cloudwatch_alarm.is_sns_alarm_message(message):
        return unknown_signal(message, source="sns", received=sent, delivery_id=delivery_id,
                              reason="SNS Message is JSON but not a CloudWatch alarm")
    try:
        return cloudwatch_alarm.from_sns_message(message, delivery_id, sent)
    except ValidationError as exc:
        return unknown_signal(message, source="sns", received=sent, delivery_id=delivery_id,
                              reason=f"CloudWatch alarm message invalid: {_first_error(exc)}")


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(root)"
    return f"{where}: {err['msg']}"
