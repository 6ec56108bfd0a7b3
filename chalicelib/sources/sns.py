"""SNS deliveries: the Lambda ``Records`` envelope and the HTTP(S) subscription body.

``Sns.Message`` is a JSON string inside JSON; for CloudWatch alarms it is the alarm
message. A raw ``Publish`` can put any text there, and that text becomes an
``unknown`` signal (its delivery id is still the SNS ``MessageId``, so a redelivery of
garbage is deduplicated like anything else). Never parse the alarm name out of
``Subject``: SNS truncates it to 100 characters.

``repeat_glance`` is the hot path's narrow read: for a Lambda envelope of one CloudWatch
notification in ALARM, only the delivery id and what identifies the alarm and its
configuration, so a repeat of an alarm the pipeline has seen skips conversion entirely.
"""

from __future__ import annotations

from datetime import datetime
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
    alarm: tuple[str, ...]  # the alarm and its configuration: equal tuples convert and classify alike


# What a signal converted from an alarm message is made of, except the state change itself (time,
# reason, previous state): CloudWatch bumps AlarmConfigurationUpdatedTimestamp on any edit.
_ALARM_IDENTITY = ("AlarmArn", "AlarmName", "AlarmDescription", "AWSAccountId",
                   "AlarmConfigurationUpdatedTimestamp", "Trigger", "AlarmRule")


def repeat_glance(payload: Any) -> Glance | None:
    """A Lambda envelope of exactly one CloudWatch alarm notification in ALARM, read narrowly (the
    Message is still parsed with ``safejson``); None for anything else, which takes the full path."""
    try:
        (record,) = payload["Records"]
        sns = record["Sns"]
        message_id, text = sns["MessageId"], sns["Message"]
        if sns.get("Type") != "Notification" or not isinstance(message_id, str) or not isinstance(text, str):
            return None
        message = safejson.loads(text)
        if not isinstance(message, dict) or message.get("NewStateValue") != "ALARM":
            return None
        alarm = tuple(repr(message.get(name)) for name in _ALARM_IDENTITY)
    except (KeyError, TypeError, ValueError):
        return None
    return Glance(bounded_id(f"sns:{message_id}"), alarm)


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
