"""CloudWatch alarms in their three wire shapes, each converted to one ``Signal``.

- the JSON inside an SNS ``Message`` (PascalCase; metric, metric-math, anomaly or composite),
  delivered in a Lambda ``Records`` envelope or an HTTP(S) subscription body (``sns.py``);
- the EventBridge ``CloudWatch Alarm State Change`` detail (camelCase, dimensions as a map);
- the alarm's direct Lambda action (``alarmData``).

The incident key is the alarm ARN in all three, so one transition that arrives by SNS
and by EventBridge lands on the same incident. ``Region`` in SNS messages is a display
name ("US East (N. Virginia)"), so the region code is taken from the ARN.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from pydantic import Field

from chalicelib.models import Signal, SignalKind, Transition
from chalicelib.sources import eventbridge, sns
from chalicelib.sources.common import Wire, arn_account, arn_region, facts, parse_time

_TRANSITIONS = {"ALARM": Transition.TRIGGER, "OK": Transition.RESOLVE}
STATE_CHANGE = "CloudWatch Alarm State Change"


def recognises(payload: Any) -> bool:
    """An SNS delivery (Lambda envelope first: it is how most alarms arrive), an EventBridge
    state change, or a Lambda alarm action."""
    if sns.is_lambda_envelope(payload):
        return True
    if eventbridge.is_eventbridge(payload):
        return bool(payload.get("detail-type") == STATE_CHANGE and payload.get("source") == "aws.cloudwatch")
    return is_lambda_action(payload) or sns.is_http_body(payload)


def convert(payload: dict[str, Any], received: datetime) -> list[Signal]:
    if sns.is_lambda_envelope(payload):
        return sns.from_lambda_envelope(payload, received)
    if eventbridge.is_eventbridge(payload):
        return _state_change(payload, received)
    if is_lambda_action(payload):
        return [_lambda_action(payload, received)]
    return [sns.from_notification(payload, received)]


def is_lambda_action(payload: Any) -> bool:
    return isinstance(payload, dict) and "alarmData" in payload and "alarmArn" in payload


def _state_change(payload: dict[str, Any], received: datetime) -> list[Signal]:
    event = eventbridge.EventBridgeEnvelope.model_validate(payload)
    arn = event.resources[0] if event.resources else f"alarm:{event.detail.get('alarmName')}"
    return [from_camel(event.detail, source="eventbridge", delivery_id=event.delivery_id, arn=arn,
                       account=event.account, received=parse_time(event.time, received))]


def _lambda_action(payload: dict[str, Any], received: datetime) -> Signal:
    data = payload["alarmData"]
    stamp = (data.get("state") or {}).get("timestamp") or payload.get("time")
    return from_camel(data, source="lambda", delivery_id=f"lambda:{payload['alarmArn']}:{stamp}",
                      arn=payload["alarmArn"], account=payload.get("accountId"), received=received)


# --- SNS message -----------------------------------------------------------------


class SnsDimension(Wire):
    name: str
    value: str


class SnsMetric(Wire):
    metric_name: str | None = Field(None, alias="MetricName")
    namespace: str | None = Field(None, alias="Namespace")
    dimensions: list[SnsDimension] = Field(default_factory=list, alias="Dimensions")


class SnsMetricStat(Wire):
    metric: SnsMetric = Field(alias="Metric")


class SnsMetricQuery(Wire):
    id: str | None = Field(None, alias="Id")
    metric_stat: SnsMetricStat | None = Field(None, alias="MetricStat")


class AlarmTrigger(Wire):
    metric_name: str | None = Field(None, alias="MetricName")
    namespace: str | None = Field(None, alias="Namespace")
    dimensions: list[SnsDimension] = Field(default_factory=list, alias="Dimensions")
    metrics: list[SnsMetricQuery] = Field(default_factory=list, alias="Metrics")


class SnsAlarmMessage(Wire):
    alarm_name: str = Field(alias="AlarmName")
    alarm_arn: str = Field(alias="AlarmArn")
    new_state: str = Field(alias="NewStateValue")
    description: str | None = Field(None, alias="AlarmDescription")
    account: str | None = Field(None, alias="AWSAccountId")
    state_change_time: str | None = Field(None, alias="StateChangeTime")
    trigger: AlarmTrigger | None = Field(None, alias="Trigger")
    alarm_rule: str | None = Field(None, alias="AlarmRule")

    def metric_list(self) -> list[SnsMetric]:
        if self.trigger is None:
            return []
        top = SnsMetric(
            MetricName=self.trigger.metric_name,
            Namespace=self.trigger.namespace,
            Dimensions=self.trigger.dimensions,
        )
        queried = [q.metric_stat.metric for q in self.trigger.metrics if q.metric_stat]
        return ([top] if top.metric_name or top.namespace else []) + queried


def is_sns_alarm_message(message: Any) -> bool:
    return isinstance(message, dict) and "AlarmName" in message and "NewStateValue" in message


def from_sns_message(message: dict[str, Any], delivery_id: str, received: datetime) -> Signal:
    alarm = SnsAlarmMessage.model_validate(message)
    metrics = alarm.metric_list()
    return _signal(
        source="sns",
        delivery_id=delivery_id,
        arn=alarm.alarm_arn,
        name=alarm.alarm_name,
        state=alarm.new_state,
        occurred_at=parse_time(alarm.state_change_time, received),
        description=alarm.description,
        account=alarm.account,
        namespaces=[m.namespace for m in metrics if m.namespace],
        metrics=[m.metric_name for m in metrics if m.metric_name],
        dimensions=[(d.name, d.value) for m in metrics for d in m.dimensions],
        tags={},
        composite=alarm.alarm_rule is not None,
    )


# --- EventBridge detail and Lambda action (both camelCase) -------------------------


class CamelMetric(Wire):
    namespace: str | None = None
    name: str | None = None
    dimensions: dict[str, str] = Field(default_factory=dict)


class CamelMetricStat(Wire):
    metric: CamelMetric


class CamelMetricQuery(Wire):
    id: str | None = None
    metric_stat: CamelMetricStat | None = Field(None, alias="metricStat")


class CamelConfiguration(Wire):
    description: str | None = None
    metrics: list[CamelMetricQuery] = Field(default_factory=list)
    alarm_rule: str | None = Field(None, alias="alarmRule")


class CamelState(Wire):
    value: str
    timestamp: str | None = None


class CamelAlarmData(Wire):
    alarm_name: str = Field(alias="alarmName")
    state: CamelState
    configuration: CamelConfiguration = Field(default_factory=CamelConfiguration)
    alarm_tags: dict[str, str] = Field(default_factory=dict, alias="alarmTags")


def from_camel(
    data: dict[str, Any],
    *,
    source: str,
    delivery_id: str,
    arn: str,
    account: str | None,
    received: datetime,
) -> Signal:
    """Convert an EventBridge alarm ``detail`` or a Lambda action's ``alarmData``."""
    alarm = CamelAlarmData.model_validate(data)
    stats = [q.metric_stat.metric for q in alarm.configuration.metrics if q.metric_stat]
    return _signal(
        source=source,
        delivery_id=delivery_id,
        arn=arn,
        name=alarm.alarm_name,
        state=alarm.state.value,
        occurred_at=parse_time(alarm.state.timestamp, received),
        description=alarm.configuration.description,
        account=account,
        namespaces=[m.namespace for m in stats if m.namespace],
        metrics=[m.name for m in stats if m.name],
        dimensions=[(k, v) for m in stats for k, v in m.dimensions.items()],
        tags=alarm.alarm_tags,
        composite=alarm.configuration.alarm_rule is not None,
    )


def _signal(
    *,
    source: str,
    delivery_id: str,
    arn: str,
    name: str,
    state: str,
    occurred_at: datetime,
    description: str | None,
    account: str | None,
    namespaces: list[str],
    metrics: list[str],
    dimensions: list[tuple[str, str]],
    tags: dict[str, str],
    composite: bool,
) -> Signal:
    region = arn_region(arn)
    links = (_console_link(region, name),) if region else ()
    return Signal(
        kind=SignalKind.ALARM,
        source=source,
        delivery_id=delivery_id,
        incident_key=f"alarm:{arn}",
        transition=_TRANSITIONS.get(state.upper(), Transition.NONE),
        occurred_at=occurred_at,
        title=name,
        resource=arn,
        account=account or arn_account(arn),
        region=region,
        state=state.upper(),
        links=links,
        facts=facts(alarm_name=name, namespace=tuple(dict.fromkeys(namespaces)),
                    metric=tuple(dict.fromkeys(metrics)), alarm_type="composite" if composite else "metric"),
        description=description,
        dimensions=tuple(dict.fromkeys(dimensions)),
        tags=tuple(sorted(tags.items())),
        details=(("alarm_type", "composite" if composite else "metric"),),
    )


def _console_link(region: str, alarm_name: str) -> str:
    return (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#alarmsV2:alarm/{quote(alarm_name, safe='')}"
    )
