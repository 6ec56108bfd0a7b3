"""What a page says (pure), and the ``Pager`` that sends it on a named channel.

A page carries only what is safe in a HIPAA setting: severity, the signal's kind, its
PHI-free title (built by the converters from names and ids), the resource name, the
region, the incident id and links. Never descriptions, reasons, Sentry titles, user
data or request bodies: those can quote a patient.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from chalicelib.errors import ChannelError
from chalicelib.models import Frozen, Incident, PageKind, PageRecord, Severity

SUMMARY_LIMIT = 1024  # PagerDuty's payload.summary limit; every channel gets the same text


class PageRequest(Frozen):
    ack_url: str | None = None
    role: str
    person: str
    channel: str
    kind: PageKind
    text: str
    incident_id: str
    severity: Severity
    source: str
    links: tuple[str, ...] = ()
    dedup_keys: tuple[str, ...] = ()  # PagerDuty: the alert(s) this page triggers, acknowledges or resolves
    page_id: str = ""  # the stored page's id (``update:opened:…``): Slack picks its buttons by it
    details: tuple[tuple[str, str], ...] = ()  # the page's fields by name (notify/render.py)
    page_links: tuple[tuple[str, str], ...] = ()  # (text, address): console page, runbook


class Channel(Protocol):
    def send(self, page: PageRequest) -> None:
        """Deliver ``page`` or raise ``ChannelError``."""


def render(incident: Incident, kind: PageKind, ack_url: str | None = None, verb: str | None = None,
           note: str | None = None) -> str:
    verb = verb or {PageKind.TRIGGER: "OPEN", PageKind.ESCALATION: "ESCALATED", PageKind.ACKNOWLEDGE: "ACKNOWLEDGED",
                    PageKind.RESOLVE: "RESOLVED", PageKind.UPDATE: "UPDATE", PageKind.REMINDER: "REMINDER"}[kind]
    from chalicelib.notify.render import what_failed  # render.py builds on this module's PageRequest

    parts = [f"[SEV{incident.severity.value}] {verb} {what_failed(incident)}"]  # in words, not the kind
    if note:
        parts.append(note)  # "acknowledged by alice — you can stand down": first, before the cut
    if incident.phi_exposure_suspected:
        parts.append("PHI exposure suspected")  # the fact, never the data
    if incident.resource and incident.resource not in incident.title:
        parts.append(incident.resource)
    if incident.service:
        parts.append(f"service {incident.service}")
    if kind is PageKind.RESOLVE and incident.related_count:  # what it held, resolved with it or paging now
        shown = "; ".join(title for _, title in incident.related[:5])
        more = incident.related_count - min(len(incident.related), 5)
        parts.append(f"related ({incident.related_count}): {shown}" + (f" and {more} more" if more else ""))
    parts.append(f"incident {incident.id}")
    if ack_url:
        parts.append(f"ack: {ack_url}")  # before the other link: the page text may be cut at the limit
    if incident.links:
        parts.append(incident.links[0])
    return " | ".join(parts)[:SUMMARY_LIMIT]


# (stored page, incident) -> (the text with its ack link in, the link): only the channel sees it
AckRevealer = Callable[[PageRecord, Incident], tuple[str, str | None]]


def request_for(page: PageRecord, incident: Incident, reveal: AckRevealer | None = None) -> PageRequest:
    text, ack_url = reveal(page, incident) if reveal is not None else (page.text, None)
    return PageRequest(role=page.role, person=page.person, channel=page.channel, kind=page.kind,
                       text=text, incident_id=incident.id, severity=incident.severity,
                       source=incident.resource or str(incident.kind), links=incident.links,
                       ack_url=ack_url, dedup_keys=page.dedup_keys, page_id=page.id, details=page.details,
                       page_links=page.page_links)


class Pager:
    """Holds the channels by name, built on first use; ``send`` raises on failure."""

    def __init__(self, channels: Mapping[str, Callable[[], Channel]], reveal: AckRevealer | None = None) -> None:
        self._factories = channels
        self._built: dict[str, Channel] = {}
        self._reveal = reveal

    def send(self, page: PageRecord, incident: Incident) -> None:
        self._channel(page.channel).send(request_for(page, incident, self._reveal))

    def notify(self, request: PageRequest) -> None:
        """Send a message that belongs to no incident (a shift-change notice) on its channel."""
        self._channel(request.channel).send(request)

    def _channel(self, name: str) -> Channel:
        if name not in self._built:
            factory = self._factories.get(name)
            if factory is None:
                raise ChannelError(f"channel {name!r} is not configured")
            self._built[name] = factory()
        return self._built[name]
