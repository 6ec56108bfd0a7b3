"""``services.yaml``: which resources make up each service, and how its signals are grouped.

One entry per service: its ECS cluster and service, load balancers and target groups (the
CloudWatch ``LoadBalancer`` / ``TargetGroup`` dimension values), RDS instances or clusters,
Sentry projects, and words its alarm names use. A signal whose resource is one of these
carries the service (``decisions/grouping.service_of``); signals of one service are grouped
and inhibited (``decisions/grouping.related_to``). A resource named by two services is
refused: a signal must belong to one service, or grouping would be a guess.

The lookup tables are built once, when the file is validated, so finding a signal's service
is a few dictionary reads.
"""

from __future__ import annotations

import re

from pydantic import Field, PrivateAttr, model_validator

from chalicelib.config.severity import Strict

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class EcsService(Strict):
    cluster: str = Field(min_length=1)
    service: str = Field(min_length=1)


class Service(Strict):
    ecs: EcsService | None = None
    load_balancers: tuple[str, ...] = ()   # app/checkout-alb/50dc6c495c0c9188
    target_groups: tuple[str, ...] = ()    # targetgroup/checkout-tg/6d0ecf831eec9f09
    rds: tuple[str, ...] = ()              # DB instance or cluster identifiers
    sentry_projects: tuple[str, ...] = ()  # project slugs, and ids (error events name the id)
    alarm_words: tuple[str, ...] = ()      # whole words of alarm names, when no dimension says


class Grouping(Strict):
    # signals of one service within this long of an open incident's opening join it
    window_minutes: int = Field(30, ge=1, le=24 * 60)
    # a deployment in progress: alarms of its service attach to it this long (runbook §2)
    deploy_watch_minutes: int = Field(10, ge=1, le=120)


class ServicesConfig(Strict):
    grouping: Grouping = Field(default_factory=Grouping)
    services: dict[str, Service] = Field(default_factory=dict)
    _by: dict[tuple[str, str], str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _one_service_per_resource(self) -> ServicesConfig:
        by: dict[tuple[str, str], str] = {}
        for name, service in self.services.items():
            if not _NAME.match(name):
                raise ValueError(f"services.{name}: a service name is lowercase letters, digits and dashes")
            for key in _resources(service):
                other = by.setdefault(key, name)
                if other != name:
                    raise ValueError(f"services.{name}.{key[0]}: {key[1]!r} is already service {other}'s")
        self._by = by
        return self

    def find(self, what: str, value: str) -> str | None:
        """The service owning resource ``value`` of type ``what`` (ecs, load_balancer, …)."""
        return self._by.get((what, value.lower()))

    def by_words(self) -> list[tuple[str, tuple[str, ...]]]:
        return [(name, s.alarm_words) for name, s in self.services.items() if s.alarm_words]


def _resources(service: Service) -> list[tuple[str, str]]:
    found = [("load_balancer", v) for v in service.load_balancers] + [
        ("target_group", v) for v in service.target_groups] + [("rds", v) for v in service.rds] + [
        ("sentry_project", v) for v in service.sentry_projects]
    if service.ecs is not None:
        found.append(("ecs", f"{service.ecs.cluster}/{service.ecs.service}"))
    return [(what, value.lower()) for what, value in found]
