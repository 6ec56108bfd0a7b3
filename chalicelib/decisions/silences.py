"""Silences and maintenance windows (issue 14 §1): who is paged, never what is kept.

A signal that opens an incident while a silence (made through ``POST /silences`` or ``silence
add``, stored by ``chalicelib.silences``) or a recurring maintenance window (``routing.yaml``
``maintenance_windows:``) matches it is still recorded: the incident is opened in the
``silenced`` state, its timeline names the window, and nobody is paged. Sev1 is never silenced
unless the window says ``include_sev1: true``. When the window ends and the incident is still
open, the sweep pages it as a normal incident (``window_ended``).

Matchers, all of which must match:

- ``kind``: the signal's kind (``alarm``, ``rds_event`` …), exactly;
- ``resource``: the signal's resource, exactly or as a glob (``db-prod-*``);
- ``service``: the service the service map (``services.yaml``) assigns the signal, found as
  grouping finds it (``grouping.service_of``: ECS cluster/service, load balancer or target group,
  RDS instance, Sentry project, alarm-name words); for a signal the map assigns nothing, the
  ECS service it names (an alarm's ``ServiceName`` dimension, a task's ``service:`` group) or
  its ``service`` tag;
- ``words``: each of these whole words (``decisions/words.py``: ``5xx`` matches ``alb-5xx-high``,
  ``cpu`` not ``cpus``) in the alarm name, else the title;
- ``severity``: the classified severity (``SEV2`` or ``2``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import NamedTuple
from zoneinfo import ZoneInfo

from chalicelib.config import ResponderConfig
from chalicelib.config.routing import WEEKDAYS, MaintenanceWindow
from chalicelib.config.services import ServicesConfig
from chalicelib.decisions import comms, escalation, grouping, words
from chalicelib.models import Classification, Frozen, Incident, IncidentStatus, Severity, Signal, TimelineEntry


class SilenceReason(StrEnum):
    NOT_SILENCED = "NOT_SILENCED"            # no silence or window matches: paged as usual
    SILENCED = "SILENCED"                    # a silence made through the API or CLI matches
    IN_WINDOW = "IN_WINDOW"                  # a recurring maintenance window matches
    SEV1_NOT_SILENCED = "SEV1_NOT_SILENCED"  # one matches, but the signal is Sev1 and it does not say include_sev1


class Silence(Frozen):
    """A silence as stored (``chalicelib.silences``): from ``starts_at`` to ``ends_at``, or until ended."""

    id: str
    matchers: dict[str, str]
    starts_at: datetime
    ends_at: datetime
    reason: str
    by: str
    created_at: datetime
    include_sev1: bool = False
    ended_by: str | None = None
    ended_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.until

    @property
    def until(self) -> datetime:
        return min(self.ends_at, self.ended_at) if self.ended_at else self.ends_at


class Verdict(NamedTuple):
    reason: SilenceReason
    by: str | None = None          # "silence sil-1a2b (reason)" or "maintenance window rds (reason)"
    until: datetime | None = None  # when it stops silencing


def service_of(signal: Signal, classification: Classification, services: ServicesConfig | None = None) -> str | None:
    """The service a ``service`` matcher compares with: the service map's (the classification
    carries it when the pipeline classified; else ``grouping.service_of`` finds it), else what
    the signal itself names."""
    mapped = classification.service or (grouping.service_of(signal, services) if services is not None else None)
    return mapped or named_service(signal)


def named_service(signal: Signal) -> str | None:
    """The fallback for signals the map assigns nothing: the ECS service or ``service`` tag it names."""
    for name, value in signal.dimensions:
        if name == "ServiceName":
            return value
    group = signal.fact("task_group")
    if isinstance(group, str) and group.startswith("service:"):
        return group.removeprefix("service:")
    return next((value for name, value in signal.tags if name.lower() == "service"), None)


def matches(matchers: Mapping[str, str], signal: Signal, classification: Classification,
            services: ServicesConfig | None = None) -> bool:
    """Does every matcher match? (``check_matchers`` refused unknown fields when they were made.)"""
    for name, wanted in matchers.items():
        if name == "kind" and str(signal.kind) != wanted:
            return False
        if name == "resource" and not fnmatchcase(signal.resource, wanted):
            return False
        if name == "service" and service_of(signal, classification, services) != wanted:
            return False
        if name == "words":
            alarm_name = signal.fact("alarm_name")
            name_of = [alarm_name if isinstance(alarm_name, str) else signal.title]
            if not all(words.any_phrase_in(name_of, [word]) for word in wanted.replace(",", " ").split()):
                return False
        if name == "severity" and classification.severity.value != int(wanted.upper().removeprefix("SEV")):
            return False
    return True


def unmapped_service_warning(matchers: Mapping[str, str], services: ServicesConfig) -> str | None:
    """A ``service`` matcher naming no service of the map is accepted (the signals' own names may
    still match it), with this warning, so a typo is seen when the silence is made."""
    wanted = matchers.get("service")
    if wanted is None or wanted in services.services:
        return None
    known = ", ".join(sorted(services.services)) or "none"
    return (f"matchers.service: {wanted!r} is not a service of services.yaml (known: {known}); it matches only "
            "signals the map assigns no service whose ServiceName dimension, ECS task group or service tag "
            "names it")


def occurrence(window: MaintenanceWindow, now: datetime, zone: tzinfo) -> tuple[datetime, datetime] | None:
    """The occurrence of ``window`` that ``now`` falls in (start, end in UTC), if any."""
    local = ZoneInfo(window.timezone) if window.timezone else zone
    today = now.astimezone(local).date()
    for day in (today - timedelta(days=1), today):
        if WEEKDAYS[day.weekday()] not in window.days:
            continue
        start = datetime.combine(day, window.start, local)
        end_day = day if window.end > window.start else day + timedelta(days=1)
        end = datetime.combine(end_day, window.end, local)
        if start <= now < end:
            return start.astimezone(UTC), end.astimezone(UTC)
    return None


def silenced_by(signal: Signal, classification: Classification, silences: Iterable[Silence],
                windows: Mapping[str, MaintenanceWindow], now: datetime, zone: tzinfo = UTC,
                services: ServicesConfig | None = None) -> Verdict:
    """Which silence or window (if any) keeps this signal's new incident from paging, and until when.

    Of several, the one silencing longest wins; a match that may not silence a Sev1 counts only
    to say so (``SEV1_NOT_SILENCED``), so the timeline can tell why a window did not hold."""
    found: list[Verdict] = []
    sev1_refused = False
    sev1 = classification.severity is Severity.SEV1
    for silence in silences:
        if silence.active(now) and matches(silence.matchers, signal, classification, services):
            if sev1 and not silence.include_sev1:
                sev1_refused = True
                continue
            found.append(Verdict(SilenceReason.SILENCED, f"silence {silence.id} ({silence.reason})", silence.until))
    for name, window in windows.items():
        span = occurrence(window, now, zone)
        if span is not None and matches(window.matchers, signal, classification, services):
            if sev1 and not window.include_sev1:
                sev1_refused = True
                continue
            found.append(Verdict(SilenceReason.IN_WINDOW, f"maintenance window {name} ({window.reason})", span[1]))
    if found:
        return max(found, key=lambda v: v.until or now)
    return Verdict(SilenceReason.SEV1_NOT_SILENCED if sev1_refused else SilenceReason.NOT_SILENCED)


def silenced(incident: Incident, verdict: Verdict, now: datetime) -> Incident:
    """A new incident as the window keeps it: recorded, silenced until the window ends, nobody paged
    (its founders' update waits for the window's end too)."""
    assert verdict.by is not None and verdict.until is not None
    return incident.noted(
        TimelineEntry(at=now, what=f"silenced by {verdict.by}: recorded, nobody paged; "
                                   f"paged at {verdict.until.isoformat()} if still open"),
        status=IncidentStatus.SILENCED, silenced_by=verdict.by, silenced_until=verdict.until, pages=())


def lifted(incident: Incident, why: str, now: datetime, config: ResponderConfig) -> Incident:
    """A silenced incident paged from now on as a normal incident: its chain starts now."""
    # the same chain, started afresh: nothing of it was paged, so its first step is the trigger page
    restarts = escalation.restart_of(incident.escalation) if incident.escalation else 0
    opened = incident.noted(
        TimelineEntry(at=now, what=f"{why}; still open: paged as a normal incident"),
        status=IncidentStatus.OPEN, silenced_until=now,
        escalation=escalation.start(incident.severity, config, now, restart=restarts, previous=incident.escalation))
    return opened.with_pages(*comms.founder_update(opened, "opened", config, now))


def window_ended(incident: Incident, config: ResponderConfig, now: datetime) -> Incident:
    """The sweep's part: a silenced incident whose window has ended is paged (the same object otherwise)."""
    if incident.status is not IncidentStatus.SILENCED or incident.silenced_until is None:
        return incident
    if now < incident.silenced_until:
        return incident
    return lifted(incident, f"{incident.silenced_by or 'the silence'} ended", now, config)
