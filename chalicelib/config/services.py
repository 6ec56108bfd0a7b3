"""``services.yaml``: which resources make up each service, and how its signals are grouped.

One entry per service: its ECS cluster and service, load balancers and target groups (the
CloudWatch ``LoadBalancer`` / ``TargetGroup`` dimension values), RDS instances or clusters,
Sentry projects, and words its alarm names use. A signal whose resource is one of these
carries the service (``decisions/grouping.service_of``); signals of one service are grouped
and inhibited (``decisions/grouping.related_to``). A resource named by two services is
refused: a signal must belong to one service, or grouping would be a guess.

``inhibit_rules:`` say which open incidents explain which new signals of the same service, as
Alertmanager's do: an open incident the ``source_matchers`` match (a *cause*) holds a new
signal the ``target_matchers`` match (its *effect*) when both are of one service (``equal:
[service]``, the only label here). Each side matches on ``rule`` (the severity.yaml rule that
classified it), ``kind`` and ``facts`` (the facts its source declares): every field given must
match, any of a field's values may; several rules are alternatives. Kinds, facts and their values
are checked against the sources at load, rule names against severity.yaml (``config.load``), and
an unknown field is refused, naming the inhibit rule.

The lookup tables are built once, when the file is validated, so finding a signal's service
is a few dictionary reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import Field, PrivateAttr, field_validator, model_validator

from chalicelib.config.severity import Strict, fact_value_lists, undeclared_facts
from chalicelib.sources import registry

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


MATCHER_FIELDS = ("rule", "kind", "facts")
RULE_FIELDS = ("name", "source_matchers", "target_matchers", "equal")


def _text(value: object) -> str:
    """A fact value as both sides compare it: text without case (an incident keeps its facts as text)."""
    return str(value).lower()


class InhibitMatch(Strict):
    """One side of an inhibit rule: every field given must match; any of a field's values may."""

    rule: tuple[str, ...] = ()   # severity.yaml rule names: the rule that classified it
    kind: tuple[str, ...] = ()   # signal kinds (an incident's: the kind of the signal that opened it)
    facts: dict[str, tuple[registry.FactValue, ...]] = Field(default_factory=dict)
    _wanted: dict[str, frozenset[str]] = PrivateAttr(default_factory=dict)

    @field_validator("rule", "kind", mode="before")
    @classmethod
    def _one_is_a_list(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    _one_value_is_a_list = field_validator("facts", mode="before")(fact_value_lists)

    @model_validator(mode="after")
    def _index(self) -> InhibitMatch:
        self._wanted = {name: frozenset(_text(v) for v in values) for name, values in self.facts.items()}
        return self

    def problem(self) -> str | None:
        """Why this side could never match (nothing to match on, an unknown kind or fact), or None."""
        if not (self.rule or self.kind or self.facts):
            return f"give at least one of {', '.join(MATCHER_FIELDS)}"
        unknown = [k for k in self.kind if k not in registry.kinds()]
        if unknown:
            return f"kind {unknown[0]!r} is produced by no registered source"
        found = undeclared_facts(self.facts)
        return f"facts: {found}" if found else None

    def matches(self, kind: str, rule: str, facts: Iterable[tuple[str, object]]) -> bool:
        """``kind``, ``rule`` (its name, without ``rule:``) and ``facts`` of a signal or an incident."""
        if (self.kind and kind not in self.kind) or (self.rule and rule not in self.rule):
            return False
        if not self._wanted:
            return True
        have: dict[str, set[str]] = {}
        for name, value in facts:
            if name in self._wanted:
                have.setdefault(name, set()).add(_text(value))
        return all(have.get(name, set()) & wanted for name, wanted in self._wanted.items())


class InhibitRule(Strict):
    """While an incident ``source_matchers`` match is open, new signals ``target_matchers`` match
    with the same ``equal`` labels page nobody: they are held under it (decisions/grouping.py)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    source_matchers: InhibitMatch
    target_matchers: InhibitMatch
    equal: tuple[str, ...] = ("service",)

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        # refused here rather than by extra="forbid", so the message names the rule, not its index
        if not isinstance(data, dict):
            return data
        name = data.get("name", "?")
        for key in data:
            if key not in RULE_FIELDS:
                raise ValueError(f"inhibit rule {name!r}: unknown field {key!r} (one of {', '.join(RULE_FIELDS)})")
        for side in ("source_matchers", "target_matchers"):
            matchers = data.get(side)
            if not isinstance(matchers, dict):
                raise ValueError(f"inhibit rule {name!r}: {side} must be a mapping of {', '.join(MATCHER_FIELDS)}")
            for key in matchers:
                if key not in MATCHER_FIELDS:
                    raise ValueError(f"inhibit rule {name!r}: {side}.{key} is not a matcher field "
                                     f"(one of {', '.join(MATCHER_FIELDS)}; facts go under facts:)")
        return data

    @model_validator(mode="after")
    def _can_match(self) -> InhibitRule:
        for side in ("source_matchers", "target_matchers"):
            problem = getattr(self, side).problem()
            if problem:
                raise ValueError(f"inhibit rule {self.name!r}: {side}: {problem}")
        if self.equal != ("service",):
            raise ValueError(f"inhibit rule {self.name!r}: equal must be [service] (the only label signals carry "
                             "here: their service in this file)")
        return self

    def rule_names(self) -> Iterable[tuple[str, str]]:
        """(side, severity.yaml rule name) for each rule it names, for ``config.load`` to check."""
        return [(side, r) for side in ("source_matchers", "target_matchers") for r in getattr(self, side).rule]


class ServicesConfig(Strict):
    grouping: Grouping = Field(default_factory=Grouping)
    services: dict[str, Service] = Field(default_factory=dict)
    inhibit_rules: tuple[InhibitRule, ...] = ()
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
        names = [r.name for r in self.inhibit_rules]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"inhibit_rules: names repeat: {', '.join(repeated)}")
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
