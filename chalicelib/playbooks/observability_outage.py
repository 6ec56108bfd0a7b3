"""observability-outage: runbook §5.6 (see ``plan``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field

from chalicelib.config.severity import Strict
from chalicelib.playbooks.context import PlaybookContext
from chalicelib.playbooks.registry import playbook
from chalicelib.playbooks.steps import Note, Step


class Options(Strict):
    heartbeat_namespace: str = "AWS/ApplicationELB"
    heartbeat_metric: str = "RequestCount"
    heartbeat_dimensions: dict[str, str] = Field(default_factory=dict)
    lookback_minutes: int = Field(10, ge=1)


@playbook("observability-outage", permissions=("cloudwatch:GetMetricStatistics",), options=Options)
def plan(ctx: PlaybookContext) -> list[Step]:
    """Record that Sentry being down is not production being down, after checking CloudWatch.

    Trigger: observability tooling alarms (sentry, observability, telemetry).
    Does: confirms CloudWatch is still reporting (datapoints of a heartbeat metric in the
    last minutes) and notes that CloudWatch metrics stay authoritative; the incident is
    Sev3, so its chain pages engineering-daytime in business hours only, never at night.
    Never: pages anyone by itself, or changes Sentry or CloudWatch settings.
    """
    options: Options = ctx.opts(Options)

    def reporting(stats: dict[str, Any]) -> str:
        if stats.get("Datapoints"):
            return (f"CloudWatch is reporting: {options.heartbeat_namespace} {options.heartbeat_metric} has "
                    f"datapoints in the last {options.lookback_minutes} min")
        return (f"CloudWatch shows no {options.heartbeat_metric} datapoints in the last {options.lookback_minutes} "
                "min: check CloudWatch itself before trusting dashboards")

    return [
        Note(text="Sentry / observability down ≠ production down (runbook §5.6); no customer impact expected"),
        Note(text=ctx.reading("whether CloudWatch is reporting", "cloudwatch", "get_metric_statistics", {
            "Namespace": options.heartbeat_namespace, "MetricName": options.heartbeat_metric,
            "Dimensions": [{"Name": k, "Value": v} for k, v in options.heartbeat_dimensions.items()],
            "StartTime": ctx.now - timedelta(minutes=options.lookback_minutes), "EndTime": ctx.now,
            "Period": 60, "Statistics": ["SampleCount"]}, then=reporting)),
    ]
