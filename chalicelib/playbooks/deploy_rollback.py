"""deploy-rollback: runbook §1-2 (see ``plan``)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from pydantic import Field

from chalicelib.config.severity import Strict
from chalicelib.errors import PlaybookError
from chalicelib.models import SignalKind
from chalicelib.playbooks.context import PlaybookContext
from chalicelib.playbooks.registry import playbook
from chalicelib.playbooks.runtime import compute
from chalicelib.playbooks.steps import ApiCall, Note, Step, Watch

_SERVICE_ARN = re.compile(r"^arn:aws[\w-]*:ecs:[\w-]+:\d+:service/(?:(?P<cluster>[^/]+)/)?(?P<service>[^/]+)$")
_REVISION = re.compile(r"^(?P<family>.+):(?P<revision>\d+)$")


class Options(Strict):
    watch_minutes: int = Field(10, ge=1, le=60)
    deployed_within_minutes: int = Field(60, ge=1)
    health_urls: dict[str, str] = Field(default_factory=dict)  # service name → https://…/health
    alarm_names: dict[str, list[str]] = Field(default_factory=dict)  # service name → alarms to watch


@playbook("deploy-rollback",
          permissions=("ecs:DescribeServices", "ecs:ListTaskDefinitions", "ecs:UpdateService",
                       "cloudwatch:DescribeAlarms"),
          options=Options)
def plan(ctx: PlaybookContext) -> list[Step]:
    """Roll an ECS service back to its last known-good task definition revision, then watch it.

    Trigger: ECS ``SERVICE_DEPLOYMENT_FAILED``, or a 5xx / health alarm of an ECS service
    (dimensions ``ClusterName`` + ``ServiceName``) deployed within the last hour (runbook §1-2).
    Does: finds the revision the service ran before the failing deployment (its ACTIVE
    deployment, else the newest older ACTIVE revision of the family), calls ``UpdateService``
    with that revision, then watches the service's alarms and ``/health`` for 10 minutes
    through the sweep; a failed watch escalates.
    Never: uses ``forceNewDeployment`` (on its own a no-op, runbook §1), deregisters or
    registers task definitions, rolls forward, or touches another service.
    """
    options: Options = ctx.opts(Options)
    cluster, service = service_of(ctx)
    if service is None:
        return [Note(text="deploy-rollback: no ECS service in this incident; nothing to roll back")]
    described = ctx.reading(f"{cluster}/{service}'s deployments", "ecs", "describe_services",
                            {"cluster": cluster, "services": [service]},
                            then=lambda answer: _the_service(answer, cluster, service))
    failing = ctx.later("the failing revision", lambda found: _short(found["taskDefinition"]), described)
    recent: Any = True
    if ctx.incident.kind is SignalKind.ALARM:
        since = ctx.now - timedelta(minutes=options.deployed_within_minutes)
        recent = ctx.later(f"a deployment in the last {options.deployed_within_minutes} minutes",
                           lambda found: _deployed_since(found.get("deployments") or [], since), described)
    good = ctx.later("last known-good revision",
                     lambda found, bad: last_known_good(ctx, found.get("deployments") or [], bad), described, failing,
                     reads=("ecs:ListTaskDefinitions familyPrefix=<the failing revision's family> status=ACTIVE "
                            "(unless an older deployment is still ACTIVE)",))

    def verdict() -> str:  # reads only what the answer needs: no revision list for an old deployment
        if not compute(recent):
            return (f"deploy-rollback: {cluster}/{service} was not deployed in the last "
                    f"{options.deployed_within_minutes} minutes; not rolling back")
        if compute(good) is None:
            return f"deploy-rollback: no ACTIVE revision older than {compute(failing)}; roll back by hand"
        return (f"deploy-rollback: {cluster}/{service} runs failing revision {compute(failing)}; "
                f"last known-good is {compute(good)}")

    rollback = ctx.later("an older ACTIVE revision" + (" and a recent deployment" if recent is not True else ""),
                         lambda: bool(compute(recent)) and compute(good) is not None, reads=good.reads)
    return [
        Note(text=ctx.later("the failing and the last known-good revision", verdict, reads=good.reads)),
        ApiCall(service="ecs", operation="update_service",
                params={"cluster": cluster, "service": service, "taskDefinition": good},
                target=f"ecs-service:{cluster}/{service}",
                why=ctx.later("failing → known-good", lambda bad, ok: f"roll back {bad} → {ok}", failing, good),
                only_if=rollback),
        Watch(until=ctx.now + timedelta(minutes=options.watch_minutes), cluster=cluster, service=service,
              alarm_names=tuple(options.alarm_names.get(service, [])),
              health_url=options.health_urls.get(service), only_if=rollback),
    ]


def _the_service(answer: dict[str, Any], cluster: str, service: str) -> dict[str, Any]:
    found = answer.get("services") or []
    if not found:
        raise PlaybookError(f"ECS service {cluster}/{service} not found")
    described: dict[str, Any] = found[0]
    return described


def service_of(ctx: PlaybookContext) -> tuple[str, str | None]:
    """(cluster, service) from an ECS service ARN, or from an alarm's ECS dimensions."""
    match = _SERVICE_ARN.match(ctx.incident.resource)
    if match:
        return match.group("cluster") or "default", match.group("service")
    dims = dict(ctx.signal.dimensions) if ctx.signal else {}
    if dims.get("ServiceName"):
        return dims.get("ClusterName", "default"), dims["ServiceName"]
    return "default", None


def last_known_good(ctx: PlaybookContext, deployments: list[dict[str, object]], failing: str) -> str | None:
    for deployment in deployments:
        definition = _short(str(deployment.get("taskDefinition", "")))
        if deployment.get("status") == "ACTIVE" and definition != failing:
            return definition  # the previous deployment ECS is still running: it was serving before
    parsed = _REVISION.match(failing)
    if not parsed:
        return None
    family, revision = parsed.group("family"), int(parsed.group("revision"))
    older, token = [], None
    while True:
        params: dict[str, object] = {"familyPrefix": family, "status": "ACTIVE"}
        if token:
            params["nextToken"] = token
        page = ctx.read("ecs", "list_task_definitions", params)
        for arn in page.get("taskDefinitionArns", []):
            candidate = _REVISION.match(_short(arn))
            if candidate and candidate.group("family") == family and int(candidate.group("revision")) < revision:
                older.append(int(candidate.group("revision")))
        token = page.get("nextToken")
        if not token:
            break
    return f"{family}:{max(older)}" if older else None


def _deployed_since(deployments: list[dict[str, object]], since: datetime) -> bool:
    return any(d.get("status") == "PRIMARY" and isinstance(d.get("createdAt"), datetime)
               and d["createdAt"] >= since for d in deployments)  # type: ignore[operator]


def _short(task_definition: str) -> str:
    return task_definition.rsplit("/", 1)[-1]
