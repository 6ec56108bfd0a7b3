"""db-connection-saturation: runbook §5.2 (see ``plan``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field

from chalicelib.config.severity import Strict
from chalicelib.errors import PlaybookError
from chalicelib.playbooks.context import PlaybookContext
from chalicelib.playbooks.registry import playbook
from chalicelib.playbooks.runtime import RuntimeValue
from chalicelib.playbooks.steps import Note, Step


class Options(Strict):
    cluster: str = "prod-cluster"
    services: list[str] = Field(default_factory=lambda: ["api"])
    pool_size_parameter: str = "/platform/prod/db/pool_size_per_task"
    max_connections: int = Field(0, ge=0)  # 0: read from max_connections_parameter
    max_connections_parameter: str = "/platform/prod/db/max_connections"
    headroom: float = Field(0.8, gt=0, le=1)  # the alarm's "80% of cap" (runbook §5.2)


@playbook("db-connection-saturation",
          permissions=("ecs:DescribeServices", "ssm:GetParameter", "cloudwatch:GetMetricStatistics"),
          options=Options)
def plan(ctx: PlaybookContext) -> list[Step]:
    """Gather the numbers behind RDS connection saturation and recommend scale-up or pool tuning.

    Trigger: an AWS/RDS ``DatabaseConnections`` alarm.
    Does: reads the running ECS task count of the configured services, the pool size per
    task (SSM parameter), the database's current connections (CloudWatch) and its maximum
    (option or SSM parameter); writes the arithmetic and a recommendation, with a link to
    the slow-query log, on the timeline.
    Never: changes the database, its parameter group, the pool configuration or the services.
    """
    options: Options = ctx.opts(Options)
    instance = dict(ctx.signal.dimensions).get("DBInstanceIdentifier") if ctx.signal else None
    tasks = ctx.reading(f"running ECS tasks of {', '.join(options.services)}", "ecs", "describe_services",
                        {"cluster": options.cluster, "services": options.services},
                        then=lambda answer: sum(int(s.get("runningCount", 0)) for s in answer.get("services", [])))
    pool = _int_parameter(ctx, "pool size per task", options.pool_size_parameter)
    maximum = options.max_connections or _int_parameter(ctx, "max_connections", options.max_connections_parameter)
    level = ctx.later("the alarm level", lambda most: int(most * options.headroom), maximum)

    def recommendation(running: int, per_task: int, alarm_level: int) -> str:
        demand = running * per_task
        if demand > alarm_level:
            return (f"recommendation: pool tuning: the pools can ask for {demand} > {alarm_level}; lower the pool "
                    f"to ≤ {max(alarm_level // max(running, 1), 1)} per task, or scale the RDS instance class up")
        return ("recommendation: scale up the RDS instance (or add a read replica): the pools fit, "
                "so connections come from elsewhere or leak; check idle-in-transaction sessions")

    steps: list[Step] = [
        Note(text=ctx.later("the worst-case demand", lambda running, per_task: (
            f"ECS running tasks ({', '.join(options.services)}): {running}; pool size per task: {per_task}; "
            f"worst-case demand: {running} × {per_task} = {running * per_task} connections"), tasks, pool)),
        Note(text=ctx.later("max_connections", lambda most, alarm_level: (
            f"max_connections: {most}; alarm level ({int(options.headroom * 100)}%): {alarm_level}"),
            maximum, level)),
    ]
    if instance:
        current = _current_connections(ctx, instance)
        steps.append(Note(
            text=ctx.later(f"current connections on {instance}", lambda now_open, most: (
                f"current connections on {instance}: {now_open:.0f} ({now_open / most:.0%} of max)"), current, maximum),
            only_if=ctx.later("CloudWatch has a recent datapoint", lambda now_open: now_open is not None, current)))
    steps.append(Note(text=ctx.later("the recommendation", recommendation, tasks, pool, level)))
    if instance:
        region = ctx.signal.region if ctx.signal and ctx.signal.region else "us-east-1"
        steps.append(Note(text=f"slow-query log: https://{region}.console.aws.amazon.com/rds/home?region={region}"
                               f"#database:id={instance};tab=logs-and-events"))
    return steps


def _int_parameter(ctx: PlaybookContext, label: str, name: str) -> RuntimeValue:
    def whole(answer: dict[str, Any]) -> int:
        try:
            return int(answer["Parameter"]["Value"])
        except ValueError:
            raise PlaybookError(f"SSM parameter {name} is not a whole number") from None
    return ctx.reading(label, "ssm", "get_parameter", {"Name": name}, then=whole)


def _current_connections(ctx: PlaybookContext, instance: str) -> RuntimeValue:
    def latest(stats: dict[str, Any]) -> float | None:
        points = sorted(stats.get("Datapoints", []), key=lambda p: p["Timestamp"])
        return float(points[-1]["Maximum"]) if points else None
    return ctx.reading(f"current connections on {instance}", "cloudwatch", "get_metric_statistics", {
        "Namespace": "AWS/RDS", "MetricName": "DatabaseConnections",
        "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": instance}],
        "StartTime": ctx.now - timedelta(minutes=10), "EndTime": ctx.now, "Period": 60, "Statistics": ["Maximum"]},
        then=latest)
