"""ai-provider-outage: runbook §5.3 (see ``plan``)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from chalicelib.config.severity import Strict
from chalicelib.models import DutyKind, Severity
from chalicelib.playbooks.context import PlaybookContext
from chalicelib.playbooks.registry import playbook
from chalicelib.playbooks.steps import AddDuty, ApiCall, Note, RaiseSeverity, Step


class Options(Strict):
    route_parameter: str = "/platform/prod/flags/ai_route"
    fallback_value: str = "bedrock"
    queue_value: str = "queue"
    fallback_alarm: str = "ai-gateway-bedrock-executor-failures"
    partner_notice_hours: int = Field(24, ge=1)  # per the design-partner BAA terms


@playbook("ai-provider-outage",
          permissions=("ssm:GetParameter", "ssm:PutParameter", "cloudwatch:DescribeAlarms"),
          options=Options)
def plan(ctx: PlaybookContext) -> list[Step]:
    """Switch the AI route to the Bedrock fallback, or to queue mode if Bedrock is failing too.

    Trigger: AI gateway executor failures (alarms naming anthropic, bedrock, ai-gateway).
    Does: reads the route flag (SSM) and the fallback's own alarm; if the fallback is
    healthy, sets the flag to the fallback route; if its alarm is in ALARM too, sets queue
    mode ("verification in progress" for affected workflows) and raises the incident to
    Sev1; marks the design-partner notification (BAA terms) as due.
    Never: changes provider credentials, model settings, or anything but the route flag.
    """
    options: Options = ctx.opts(Options)
    opened_by_fallback = ctx.signal is not None and ctx.signal.alarm_name == options.fallback_alarm
    current = ctx.reading("the current ai route", "ssm", "get_parameter", {"Name": options.route_parameter},
                          then=lambda answer: answer["Parameter"]["Value"])
    fallback_down = ctx.reading(
        f"the fallback alarm {options.fallback_alarm} is in ALARM", "cloudwatch", "describe_alarms",
        {"AlarmNames": [options.fallback_alarm]},
        # the fallback's own alarm opening this incident says it is failing, whatever the read says
        then=lambda alarms: opened_by_fallback or any(a.get("StateValue") == "ALARM"
                                                      for a in alarms.get("MetricAlarms", [])))
    target = ctx.later(f"{options.fallback_value!r}, or {options.queue_value!r} if the fallback is failing too",
                       lambda down: options.queue_value if down else options.fallback_value, fallback_down)
    return [
        Note(text=ctx.later("the ai route and the fallback alarm's state",
                            lambda route, down: f"ai route is {route!r}; fallback alarm {options.fallback_alarm} is "
                                                + ("in ALARM" if down else "not in ALARM"), current, fallback_down)),
        ApiCall(service="ssm", operation="put_parameter",
                params={"Name": options.route_parameter, "Value": target, "Type": "String", "Overwrite": True},
                target=f"ssm:{options.route_parameter}",
                why=ctx.later("the route", lambda route: f"route AI calls to {route!r}", target),
                only_if=ctx.later("the route is not already that", lambda route, to: route != to, current, target)),
        RaiseSeverity(severity=Severity.SEV1,
                      reason="Anthropic and the Bedrock fallback are both failing: calls are queued",
                      only_if=fallback_down),
        AddDuty(kind=DutyKind.DESIGN_PARTNER_NOTIFICATION,
                due_at=ctx.now + timedelta(hours=options.partner_notice_hours),
                reason="design partners are told of AI degradation per BAA terms"),
    ]
