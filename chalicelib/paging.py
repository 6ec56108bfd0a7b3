"""Who gets paged for a decision, and with what words (pure), and the ``Pager`` that sends.

A page carries only what is safe in a HIPAA setting: severity, the signal's kind, its
PHI-free title (built by the converters from names and ids), the resource name, the
region, the incident id and links. Never descriptions, reasons, Sentry titles, user
data or request bodies: those can quote a patient.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Protocol

from chalicelib.config import ResponderConfig
from chalicelib.incidents import Reason
from chalicelib.models import Frozen, Incident, PageKind, PageRecord, Severity

SUMMARY_LIMIT = 1024  # PagerDuty's payload.summary limit; every channel gets the same text


class PageRequest(Frozen):
    role: str
    person: str
    channel: str
    kind: PageKind
    text: str
    incident_id: str
    severity: Severity
    source: str
    links: tuple[str, ...] = ()


class Channel(Protocol):
    def send(self, page: PageRequest) -> None:
        """Deliver ``page`` or raise ``ChannelError``."""


def plan_pages(reason: Reason, incident: Incident, config: ResponderConfig) -> list[PageRequest]:
    """The pages a decision calls for, one per person and channel."""
    if reason in (Reason.OPENED, Reason.SEVERITY_RAISED):
        row = config.severity.matrix[incident.severity]
        if not row.page:
            return []
        kind = PageKind.TRIGGER if reason is Reason.OPENED else PageKind.ESCALATION
        return [_request(incident, row.owner, person, channel, kind)
                for person in config.routing.roles.get(row.owner, ())
                for channel in config.routing.people[person].channels]
    if reason is Reason.RESOLVED:
        paged = dict.fromkeys((p.role, p.person, p.channel) for p in incident.pages
                              if p.kind is not PageKind.RESOLVE and p.status == "sent")
        return [_request(incident, role, person, channel, PageKind.RESOLVE)
                for role, person, channel in paged]
    return []


def render(incident: Incident, kind: PageKind) -> str:
    verb = {PageKind.TRIGGER: "OPEN", PageKind.ESCALATION: "ESCALATED",
            PageKind.RESOLVE: "RESOLVED"}[kind]
    parts = [f"[SEV{incident.severity.value}] {verb} {incident.kind.value}: {incident.title}"]
    if incident.resource and incident.resource not in incident.title:
        parts.append(incident.resource)
    parts.append(f"incident {incident.id}")
    if incident.links:
        parts.append(incident.links[0])
    return " | ".join(parts)[:SUMMARY_LIMIT]


def _request(incident: Incident, role: str, person: str, channel: str, kind: PageKind) -> PageRequest:
    return PageRequest(role=role, person=person, channel=channel, kind=kind,
                       text=render(incident, kind), incident_id=incident.id,
                       severity=incident.severity, source=incident.resource or incident.kind.value,
                       links=incident.links)


class Pager:
    """Sends each request on its channel; one failing channel never blocks the others."""

    def __init__(self, channels: Mapping[str, Callable[[], Channel]]) -> None:
        self._factories = channels
        self._built: dict[str, Channel] = {}

    def deliver(self, requests: list[PageRequest], now: datetime) -> list[PageRecord]:
        return [self._send(request, now) for request in requests]

    def _send(self, request: PageRequest, now: datetime) -> PageRecord:
        status, error = "sent", None
        try:
            self._channel(request.channel).send(request)
        except Exception as exc:  # noqa: BLE001 - any channel failure is recorded, never raised
            status, error = "failed", f"{type(exc).__name__}: {str(exc)[:200]}"
        return PageRecord(role=request.role, person=request.person, channel=request.channel,
                          kind=request.kind, at=now, text=request.text, status=status, error=error)

    def _channel(self, name: str) -> Channel:
        if name not in self._built:
            factory = self._factories.get(name)
            if factory is None:
                raise KeyError(f"channel {name!r} is not configured")
            self._built[name] = factory()
        return self._built[name]
