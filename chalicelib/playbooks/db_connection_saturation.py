"""db-connection-saturation: runbook §5.2 (see ``plan``)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from chalicelib.config.severity import Strict
from chalicelib.errors import PlaybookError
from chalicelib.playbooks.context import PlaybookContext
from chalicelib.playbooks.registry import playbook
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
    described = ctx.read("ecs", "describe_services", {"cluster": options.cluster, "services": options.services})
    tasks = sum(int(s.get("runningCount", 0)) for s in described.get("services", []))
    pool = _int_parameter(ctx, options.pool_size_parameter)
    maximum = options.max_connections or _int_parameter(ctx, options.max_connections_parameter)
    current = _current_connections(ctx, instance) if instance else None
    demand = tasks * pool
    lines = [
        f"ECS running tasks ({', '.join(options.services)}): {tasks}; pool size per task: {pool}; "
        f"worst-case demand: {tasks} × {pool} = {demand} connections",
        f"max_connections: {maximum}; alarm level ({int(options.headroom * 100)}%): {int(maximum * options.headroom)}",
    ]
    if current is not None:
        lines.append(f"current connections on {instance}: {current:.0f} ({current / maximum:.0%} of max)")
    if demand > maximum * options.headroom:
        per_task = max(int(maximum * options.headroom) // max(tasks, 1), 1)
        lines.append(f"recommendation: pool tuning: the pools can ask for {demand} > "
                     f"{int(maximum * options.headroom)}; lower the pool to ≤ {per_task} per task, "
                     "or scale the RDS instance class up")
    else:
        lines.append("recommendation: scale up the RDS instance (or add a read replica): the pools fit, "
                     "so connections come from elsewhere or leak; check idle-in-transaction sessions")
    if instance:
        region = ctx.signal.region if ctx.signal and ctx.signal.region else "us-east-1"
        lines.append(f"slow-query log: https://{region}.console.aws.amazon.com/rds/home?region={region}"
                     f"#database:id={instance};tab=logs-and-events")
    return [Note(text=line) for line in lines]


def _int_parameter(ctx: PlaybookContext, name: str) -> int:
    value = ctx.read("ssm", "get_parameter", {"Name": name})["Parameter"]["Value"]
    try:
        return int(value)
    except ValueError:
        raise PlaybookError(f"SSM parameter {name} is not a whole number") from None


def _current_connections(ctx: PlaybookContext, instance: str) -> float | None:
    stats = ctx.read("cloudwatch", "get_metric_statistics", {
        "Namespace": "AWS/RDS", "MetricName": "DatabaseConnections",
        "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": instance}],
        "StartTime": ctx.now - timedelta(minutes=10), "EndTime": ctx.now, "Period": 60, "Statistics": ["Maximum"]})
    points = sorted(stats.get("Datapoints", []), key=lambda p: p["Timestamp"])
    return float(points[-1]["Maximum"]) if points else None
