"""Grouping and inhibition: one page per problem for a service (issue 14 §2).

A bad night on one service is many signals: the RDS failover, then Sentry errors, the load
balancer's 5xx, the database connection alarm. ``related_to`` decides, for a trigger whose own
key has nothing open, what the service's open incidents make of it, the way Alertmanager's
inhibition does (a *source* alert silences *target* alerts with the same ``equal`` labels;
here the label is the service, ``config/services.yaml``):

- ``INHIBITED_BY``: an open *cause* of the service explains this *effect*, whatever its
  severity: an inhibit rule of ``services.yaml`` has the cause among its sources and the effect
  among its targets (shipped: no healthy targets, an RDS failover or unavailable instance, a
  deployment explain 5xx, latency, connection alarms, Sentry errors and spikes);
- ``INHIBITED_BY`` too: a deployment of the service is being watched (runbook §2: alarms are
  watched for 10 minutes after a deployment starts): anything of the service attaches to it;
- ``TAKES_OVER``: this signal is the cause of open effects of the service that paged before
  it: it opens and pages on its own, naming them, and holds them (never grouped into them);
- ``GROUPED``: another incident of the service opened within the grouping window, and this
  signal is no more severe than it (a worse one pages on its own, as in ``context.py``);
- ``NEW``: pages on its own.

A grouped or inhibited signal still opens its *own* incident, held: it pages nobody, and the
incident it joined lists it (``related``). Its repeats and its recovery land on it as on any
incident, so when the cause resolves, whatever is still firing is released and pages on its
own; whatever recovered was resolved quietly. Every signal is still recorded.

A cause can arrive after its effects (the 5xx alarm fires before RDS reports the failover).
``effects_of`` finds the service's open incidents it explains that paged on their own before it
opened; the new cause takes them over (``took_over``): its pages name them (they page no further),
and each is held under it (``held_under``): its escalation stops, its timeline says why, and when
the cause resolves it is released like any held effect (a fresh chain if it still fires), or, if it
recovered meanwhile, its resolve notice reaches whoever it paged. Nobody is un-paged silently.

``ServiceGroups`` applies the decision with the store: each service's paging and watched
incidents are listed in one small document (``group:<service>``), read once per trigger of a
mapped service; the hot path (``Pipeline.repeat``) never comes here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from chalicelib.config import ResponderConfig
from chalicelib.config.services import InhibitRule, ServicesConfig
from chalicelib.decisions import comms, escalation
from chalicelib.decisions.incidents import IncidentService, Reason, ever_paged
from chalicelib.decisions.words import any_phrase_in
from chalicelib.errors import ConflictError
from chalicelib.models import (
    Classification,
    Incident,
    IncidentStatus,
    Severity,
    Signal,
    SignalKind,
    TimelineEntry,
    Transition,
)
from chalicelib.store import IncidentStore
from chalicelib.store.retry import retried

MAX_RELATED = 50   # (id, title) pairs an incident lists; ``related_count`` counts them all
MAX_MEMBERS = 20   # incidents a service's group document remembers (the newest)
IN_PROGRESS = "SERVICE_DEPLOYMENT_IN_PROGRESS"

# Kinds that never send a recovery (one Sentry event each): held, they are resolved with their cause.
ONE_SHOT_KINDS = frozenset({SignalKind.SENTRY_ERROR.value, SignalKind.SENTRY_EVENT_ALERT.value})

_ECS_SERVICE_ARN = re.compile(r":service/(?P<cluster>[^/]+)/(?P<service>[^/]+)$")
_ECS_TASK_ARN = re.compile(r":task/(?P<cluster>[^/]+)/")
_RDS_ARN = re.compile(r":rds:[^:]*:[^:]*:(?:db|cluster):(?P<ident>[^:]+)$")
_DIMENSIONS = {"LoadBalancer": "load_balancer", "TargetGroup": "target_group",
               "DBInstanceIdentifier": "rds", "DBClusterIdentifier": "rds"}


class Relation(StrEnum):
    GROUPED = "GROUPED"            # joins the service's incident opened within the window
    INHIBITED_BY = "INHIBITED_BY"  # an open cause (or a watched deployment) of the service explains it
    TAKES_OVER = "TAKES_OVER"      # a cause of the service's open effects, which paged before it: it pages, holds them
    NEW = "NEW"                    # pages on its own


class Related(NamedTuple):
    reason: Relation
    incident: Incident | None = None
    why: str = ""


def service_of(signal: Signal, services: ServicesConfig) -> str | None:
    """The service ``signal``'s resources belong to: ECS service, load balancer or target group,
    RDS instance or cluster, Sentry project; else the first service whose alarm words it names."""
    if not services.services:
        return None
    for what, value in _resources(signal):
        found = services.find(what, value)
        if found:
            return found
    names = [str(v) for v in signal.fact_values("alarm_name")]
    if names:
        for name, words in services.by_words():
            if any_phrase_in(names, words):
                return name
    return None


def _resources(signal: Signal) -> Iterable[tuple[str, str]]:
    dims = dict(signal.dimensions)
    if dims.get("ClusterName") and dims.get("ServiceName"):
        yield "ecs", f"{dims['ClusterName']}/{dims['ServiceName']}"
    for dimension, what in _DIMENSIONS.items():
        if dims.get(dimension):
            yield what, dims[dimension]
    if signal.kind == SignalKind.ECS_DEPLOYMENT:
        match = _ECS_SERVICE_ARN.search(signal.resource)
        if match:
            yield "ecs", f"{match['cluster']}/{match['service']}"
    elif signal.kind == SignalKind.ECS_TASK:
        group, task = signal.fact("task_group"), _ECS_TASK_ARN.search(signal.resource)
        if isinstance(group, str) and group.startswith("service:") and task:
            yield "ecs", f"{task['cluster']}/{group.removeprefix('service:')}"
    elif signal.kind == SignalKind.RDS_EVENT:
        match = _RDS_ARN.search(signal.resource)
        if match:
            yield "rds", match["ident"]
    elif signal.source == "sentry":
        for project in signal.resource.split(","):
            yield "sentry_project", project.strip()


def _rule(rule: str) -> str:
    return rule.removeprefix("rule:")


class Traits(NamedTuple):
    """What inhibit rules match on, of a new signal or of an open incident (its opening signal's)."""

    kind: str
    rule: str  # the severity.yaml rule's name, without ``rule:``
    facts: tuple[tuple[str, object], ...]

    @classmethod
    def of_signal(cls, signal: Signal, rule: str) -> Traits:
        return cls(str(signal.kind), _rule(rule), tuple(signal.facts))

    @classmethod
    def of(cls, incident: Incident) -> Traits:
        return cls(str(incident.kind), _rule(incident.rule), tuple(incident.facts))


def inhibit_rule(cause: Traits, effect: Traits, services: ServicesConfig) -> InhibitRule | None:
    """The first inhibit rule (services.yaml) under which ``cause`` explains ``effect``, or None.
    Both are of one service (``equal: [service]``): the caller's filter."""
    for inhibit in services.inhibit_rules:
        if inhibit.source_matchers.matches(*cause) and inhibit.target_matchers.matches(*effect):
            return inhibit
    return None


def is_a_cause(incident: Incident, services: ServicesConfig) -> bool:
    """Is ``incident`` a source of any inhibit rule (something it could explain)?"""
    traits = Traits.of(incident)
    return any(inhibit.source_matchers.matches(*traits) for inhibit in services.inhibit_rules)


def paging_on_its_own(incident: Incident) -> bool:
    """Open, not held, not silenced: an incident whose pages went out."""
    return incident.held is None and incident.status in (IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED)


def watching(incident: Incident, now: datetime) -> bool:
    """A deployment of the service is being watched (runbook §2)."""
    return incident.watch_until is not None and now < incident.watch_until


def related_to(signal: Signal, open_incidents: Iterable[Incident], services: ServicesConfig, now: datetime, *,
               rule: str = "default", severity: Severity | None = None, service: str | None = None) -> Related:
    """What the service's open incidents make of a trigger ``signal`` (classified by ``rule`` at
    ``severity``) whose own key has nothing open. ``service``: its service, when already known."""
    if signal.transition is not Transition.TRIGGER:
        return Related(Relation.NEW, None, "not a trigger")
    service = service or service_of(signal, services)
    if service is None:
        return Related(Relation.NEW, None, "no service")
    # Only incidents that are not held themselves lead a group: a held one is already explained. Nor
    # does an alarm whose recovery is held (decisions/flapping.py): it says it is fine, so it explains
    # no new signal, which pages on its own rather than wait for the sweep to resolve it.
    live = [i for i in open_incidents if i.is_open and i.service == service and i.held_by is None
            and i.key != signal.incident_key and not i.recovery_held]

    def newest(i: Incident) -> tuple[datetime, str]:
        return i.opened_at, i.id

    watched = [i for i in live if watching(i, now)]
    if watched:
        target = max(watched, key=newest)
        return Related(Relation.INHIBITED_BY, target, f"during the watch of deployment {target.id} of {service}")
    mine = Traits.of_signal(signal, rule)
    causes = [(i, by) for i in live if i.held is None and (by := inhibit_rule(Traits.of(i), mine, services))]
    if causes:
        target, by = max(causes, key=lambda found: newest(found[0]))
        return Related(Relation.INHIBITED_BY, target, f"an effect of {target.id} ({target.title}) on {service}, "
                                                      f"inhibit rule {by.name}")
    # a cause after its effects: it opens and pages, naming them, and takes them over (``effects_of``)
    effects = [i for i in live if paging_on_its_own(i) and inhibit_rule(mine, Traits.of(i), services)]
    if effects:
        target = max(effects, key=newest)
        return Related(Relation.TAKES_OVER, target, f"a cause of {', '.join(sorted(i.id for i in effects))} "
                                                    f"on {service}, which paged before it: it takes them over")
    window = timedelta(minutes=services.grouping.window_minutes)
    recent = [i for i in live if i.held is None and now - i.opened_at <= window]
    if recent:
        target = max(recent, key=newest)
        if severity is not None and severity < target.severity:
            return Related(Relation.NEW, None, f"more severe than {target.id} (SEV{target.severity.value})")
        return Related(Relation.GROUPED, target, f"{service}'s incident {target.id} opened within "
                                                 f"{services.grouping.window_minutes} min")
    return Related(Relation.NEW, None, f"nothing of {service} open within the window")


# --- incidents as the decisions leave them (pure) ---------------------------------------------


def effects_of(cause: Incident, open_incidents: Iterable[Incident],
               services: ServicesConfig) -> list[tuple[Incident, InhibitRule]]:
    """The incidents a new cause takes over: of its service, paging on their own (not held, not
    silenced: those never paged), opened before it, explained by it under an inhibit rule."""
    found = []
    for incident in open_incidents:
        if (incident.id == cause.id or incident.service != cause.service or not paging_on_its_own(incident)
                or incident.opened_at > cause.opened_at):
            continue
        by = inhibit_rule(Traits.of(cause), Traits.of(incident), services)
        if by is not None:
            found.append((incident, by))
    return sorted(found, key=lambda pair: (pair[0].opened_at, pair[0].id))


def took_over(cause: Incident, effects: Iterable[tuple[Incident, InhibitRule]], now: datetime) -> Incident:
    """A new cause listing the effects it takes over, before its first page is written (which names them)."""
    for effect, by in effects:
        cause = with_related(cause, effect, f"paged before this opened (inhibit rule {by.name}); held under this "
                                            "now, its escalation stopped", now, taken=True)
    return cause


def held_under(effect: Incident, cause: Incident, now: datetime) -> Incident:
    """An effect that paged, taken over by ``cause``: held under it, nothing more of its chain sent
    (its chain is kept: its acknowledgement and resolve notices reach whoever it paged)."""
    if not effect.is_open or effect.held is not None:
        return effect  # resolved or held meanwhile: the cause's page names it all the same
    stopped = escalation.cancel_unsent(effect, now, f"held under {cause.id}")
    return stopped.noted(TimelineEntry(at=now, what=f"held under {cause.id} ({cause.title}), which opened after "
                                                    f"it: its escalation stops (it paged already); "
                                                    f"{cause.id}'s pages name it"),
                         held=f"held under {cause.id}, which opened after it", held_by=cause.id)


def held(fresh: Incident, relation: Related) -> Incident:
    """A new incident that pages nobody: no chain, no pages, no duties (its target has them)."""
    assert relation.incident is not None
    word = "grouped into" if relation.reason is Relation.GROUPED else "inhibited by"
    entry = TimelineEntry(at=fresh.opened_at,
                          what=f"held, nobody paged: {word} {relation.incident.id} ({relation.why})")
    return fresh.noted(entry, held=f"{word} {relation.incident.id}", held_by=relation.incident.id,
                       escalation=None, pages=(), duties=())


def watched(fresh: Incident, minutes: int) -> Incident:
    """A deployment in progress: its incident opened quiet, the service watched for ``minutes``."""
    until = fresh.opened_at + timedelta(minutes=minutes)
    entry = TimelineEntry(at=fresh.opened_at, what=f"deployment in progress: {fresh.service} watched until "
                                                   f"{until:%H:%M:%S} UTC; any alarm of it opens this incident")
    return fresh.noted(entry, held=f"watching the deployment until {until:%H:%M:%S} UTC", watch_until=until,
                       escalation=None, pages=(), duties=())


def with_related(incident: Incident, member: Incident, why: str, now: datetime, *, taken: bool = False) -> Incident:
    """``incident`` listing ``member``, which it holds, on its timeline and in ``related``
    (``taken``: a member that paged before, taken over, ``took_over``)."""
    related = incident.related if len(incident.related) >= MAX_RELATED else (
        *incident.related, (member.id, member.title))
    what = "took over" if taken else "related"
    return incident.noted(TimelineEntry(at=now, delivery_id=None,
                                        what=f"{what}: {member.title} ({member.id}, SEV{member.severity.value}), "
                                             f"{why}" + ("" if taken else "; not paged")),
                          related=related, related_count=incident.related_count + 1, last_seen=now,
                          took_over=(*incident.took_over, member.id) if taken else incident.took_over)


def released(incident: Incident, why: str, now: datetime, config: ResponderConfig,
             severity: Severity | None = None) -> Incident:
    """A held incident paging on its own from now: its chain starts (at ``severity`` if worse)."""
    if not incident.is_open or incident.held is None:
        return incident
    if severity is not None and severity < incident.severity:
        owner = config.severity.matrix[severity].owner
        incident = incident.model_copy(update={"severity": severity, "owner": owner})
    # a raise of its own started its chain already (incidents.raise_severity): it goes on; one
    # taken over after it paged starts afresh (it is a problem of its own now), keeping who it reached
    before = incident.escalation
    chain = before or escalation.start(incident.severity, config, now)
    taken = before is not None and ever_paged(incident)
    if taken:
        chain = escalation.start(incident.severity, config, now, restart=escalation.restart_of(chain) + 1,
                                 previous=before)
    started = incident.noted(TimelineEntry(at=now, what=f"paging on its own: {why}"), held=None, held_by=None,
                             watch_until=None, escalation=chain)
    if taken:  # its duties and the founders' word were written when it first opened
        return started
    started = started.model_copy(update={"duties": (*started.duties, *comms.opening_duties(started, config))})
    return started.with_pages(*comms.founder_update(started, "opened", config, now))


# --- the stage: the decision applied with the store -------------------------------------------


class ServiceGroups:
    """Holds, watches and releases incidents of mapped services; ``Pipeline`` calls it."""

    def __init__(self, store: IncidentStore, incidents: IncidentService,
                 config: Callable[[], ResponderConfig]) -> None:
        self.store, self.incidents, self.config = store, incidents, config

    def attach(self, signal: Signal, c: Classification, now: datetime) -> tuple[Reason, Incident] | None:
        """Open ``signal``'s incident held (grouped, inhibited) or watching; None: the usual path decides."""
        if c.service is None or signal.transition is Transition.RESOLVE:
            return None
        services = self.config().services
        if signal.transition is Transition.NONE:
            if signal.kind != SignalKind.ECS_DEPLOYMENT or signal.fact("event_name") != IN_PROGRESS:
                return None
            if self.store.get_open(signal.incident_key) is not None:
                return None  # recorded on the deployment's open incident, as usual
            minutes = services.grouping.deploy_watch_minutes
            trigger = signal.model_copy(update={"transition": Transition.TRIGGER})
            reason, incident = self.incidents.handle(trigger, c, now, lambda fresh: watched(fresh, minutes))
            return (Reason.WATCHING if reason is Reason.OPENED else reason), incident  # type: ignore[return-value]
        if self.store.get_open(signal.incident_key) is not None:
            return None  # a repeat, a raise: its own incident decides
        relation = related_to(signal, self.members(c.service), services, now, rule=c.rule, severity=c.severity,
                              service=c.service)
        target = relation.incident
        if target is None or relation.reason is Relation.TAKES_OVER:
            return None  # it pages on its own (a late cause takes its effects over as it opens: Pipeline)
        reason, incident = self.incidents.handle(signal, c, now, lambda fresh: held(fresh, relation))
        if reason is not Reason.OPENED or incident is None:
            return (reason, incident) if incident is not None else None
        self.incidents.update(target.id, lambda i: with_related(i, incident, relation.why, now))
        return (Reason.GROUPED if relation.reason is Relation.GROUPED else Reason.INHIBITED), incident

    def taking_over(self, fresh: Incident, now: datetime) -> Incident:
        """A new cause that will page lists the open effects of its service that paged before it."""
        services = self.config().services
        if (fresh.service is None or fresh.held is not None or fresh.status is not IncidentStatus.OPEN
                or not is_a_cause(fresh, services)):
            return fresh  # most new incidents: no store read
        return took_over(fresh, effects_of(fresh, self.members(fresh.service), services), now)

    def hold_taken(self, cause: Incident, now: datetime) -> None:
        """Hold what ``cause`` took over under it (once it is stored: its page named them)."""
        for effect_id in cause.took_over:
            self.incidents.update(effect_id, lambda effect: held_under(effect, cause, now))

    def members(self, service: str) -> list[Incident]:
        doc, _ = self.store.get_doc(f"group:{service}")
        found = (self.store.get(str(i)) for i in (doc or {}).get("incidents", []))
        return [i for i in found if i is not None and i.is_open]

    def register(self, incident: Incident) -> None:
        """Remember a paging or watched incident as one its service's next signals may join."""
        if incident.service is None:
            return
        key = f"group:{incident.service}"

        def attempt() -> None:
            doc, version = self.store.get_doc(key)
            ids = [str(i) for i in (doc or {}).get("incidents", []) if str(i) != incident.id]
            open_ids = [i.id for i in (self.store.get(i) for i in ids[-MAX_MEMBERS:]) if i is not None and i.is_open]
            self.store.put_doc(key, {"incidents": [*open_ids[-(MAX_MEMBERS - 1):], incident.id]}, version)
        try:
            retried(attempt, what=key)
        except ConflictError:
            pass  # the incident pages either way; only grouping with it is lost
