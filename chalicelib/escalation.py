"""Escalation and delivery decisions: pure functions of an incident, the config and ``now``.

An open, unacknowledged incident walks its severity's chain (``routing.yaml``
``escalation``): step *i* is due at ``started_at + after_minutes``. A chain marked
``business_hours_only`` starts at the next business-hours moment, so a Sev3 at 03:00 pages
at 09:00. Every page is queued first (an outbox entry on the incident) and sent by the
delivery stage; a failed page is retried with backoff, and after
``max_failures_before_fallback`` failures, a refusal, or half the response time without
a delivered page, the same step also goes out on the fallback channel.

``next_action_at`` condenses all of it into the one time the sweep must look again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum

from chalicelib.config import ResponderConfig
from chalicelib.config.routing import EscalationChain
from chalicelib.models import (
    AckLinkRef,
    EscalationState,
    Incident,
    IncidentStatus,
    PageKind,
    PageRecord,
    PageStatus,
    Severity,
)
from chalicelib.oncall import holders, next_business_moment
from chalicelib.paging import render

RETRY_BASE = timedelta(seconds=30)
RETRY_CAP = timedelta(minutes=5)
SEND_LEASE = timedelta(seconds=60)


class RetryDecision(StrEnum):
    RETRY = "RETRY"                  # try the same channel again at next_attempt_at
    RETRY_AND_FALLBACK = "RETRY_AND_FALLBACK"  # and queue the fallback channel now
    FALLBACK = "FALLBACK"            # the channel refused for good: fallback only


def chain_for(severity: Severity, config: ResponderConfig) -> EscalationChain:
    return config.routing.escalation[severity]


def start(severity: Severity, config: ResponderConfig, now: datetime, restart: int = 0) -> EscalationState:
    chain = chain_for(severity, config)
    routing = config.routing
    begins = next_business_moment(routing.business_hours, now, routing.zone) if chain.business_hours_only else now
    return EscalationState(chain=f"SEV{severity.value}#{restart}", severity=severity, started_at=begins)


def step_due_at(state: EscalationState, index: int, config: ResponderConfig) -> datetime:
    step = chain_for(state.severity, config).steps[index]
    return state.started_at + timedelta(minutes=step.after_minutes)


def due_steps(incident: Incident, config: ResponderConfig, now: datetime) -> list[int]:
    """Indices of chain steps whose time has come, for an open, unacknowledged incident."""
    state = incident.escalation
    if state is None or incident.status is not IncidentStatus.OPEN:
        return []
    steps = chain_for(state.severity, config).steps
    return [i for i in range(state.next_step, len(steps)) if step_due_at(state, i, config) <= now]


AckLinker = Callable[[Incident, str, datetime], AckLinkRef]  # issues a link for (incident, person, now)


def step_pages(incident: Incident, index: int, config: ResponderConfig, now: datetime,
               ack_link: AckLinker | None = None) -> list[PageRecord]:
    """The outbox entries for chain step ``index``: everyone holding its role now, on each channel,
    each with a one-click acknowledgement link bound to that person (when links are configured),
    stored redacted: only the person's channel gets the link itself (``links.AckLinks.reveal``)."""
    assert incident.escalation is not None
    state = incident.escalation
    role_name = chain_for(state.severity, config).steps[index].role
    role = config.routing.roles[role_name]
    kind = PageKind.TRIGGER if index == 0 and state.chain.endswith("#0") else PageKind.ESCALATION
    step_id = f"{state.chain}/{index}"
    pages = []
    for person in holders(role, now, config.routing.zone):
        link = ack_link(incident, person, now) if ack_link else None
        text = render(incident, kind, ack_url=link.redacted if link else None)
        pages += [PageRecord(id=f"{step_id}:{person}:{channel}", step=step_id, role=role_name, person=person,
                             channel=channel, kind=kind, at=now, text=text, ack_link=link)
                  for channel in config.routing.people[person].channels]
    return pages


def resolve_pages(incident: Incident, now: datetime, skip_channels: frozenset[str] = frozenset()) -> list[PageRecord]:
    """A resolve notification to every person and channel that was paged for this incident."""
    return _notices(incident, PageKind.RESOLVE, now, skip_channels)


def acknowledge_pages(incident: Incident, now: datetime, channels: frozenset[str]) -> list[PageRecord]:
    """An acknowledge event on each of ``channels`` (PagerDuty) that carried a page for this incident."""
    return _notices(incident, PageKind.ACKNOWLEDGE, now, frozenset(), only=channels)


def _notices(incident: Incident, kind: PageKind, now: datetime, skip: frozenset[str],
             only: frozenset[str] | None = None) -> list[PageRecord]:
    text = render(incident, kind)
    reached = dict.fromkeys((p.role, p.person, p.channel) for p in incident.pages
                            if p.kind.calls_for_action and p.delivered
                            and p.channel not in skip and (only is None or p.channel in only))
    return [PageRecord(id=f"{kind.value}:{person}:{channel}", step=kind.value, role=role, person=person,
                       channel=channel, kind=kind, at=now, text=text)
            for role, person, channel in reached if not _has_page(incident, f"{kind.value}:{person}:{channel}")]


def cancel_unsent(incident: Incident, now: datetime, why: str) -> Incident:
    """Acknowledged or resolved: no trigger or escalation page may still go out."""
    cancelled = [p.model_copy(update={"status": PageStatus.CANCELLED, "error": why, "next_attempt_at": None})
                 for p in incident.pages
                 if p.kind.calls_for_action and p.status in (PageStatus.PENDING, PageStatus.FAILED)]
    return incident.with_pages(*cancelled) if cancelled else incident


def claimable(page: PageRecord, incident: Incident, now: datetime) -> bool:
    """May a worker take this page for sending now?"""
    if page.kind.calls_for_action and incident.status is not IncidentStatus.OPEN:
        return False
    if page.status is PageStatus.PENDING:
        return True
    if page.status is PageStatus.FAILED:
        return page.next_attempt_at is not None and page.next_attempt_at <= now
    if page.status is PageStatus.SENDING:  # its worker died mid-send: the lease ran out
        return page.lease_until is not None and page.lease_until <= now
    return False


def after_failure(page: PageRecord, retryable: bool, retry_after: float | None, now: datetime,
                  config: ResponderConfig, severity: Severity) -> tuple[PageRecord, RetryDecision]:
    """The failed page's next state, and whether the fallback channel is needed now."""
    if not retryable:
        return page.model_copy(update={"status": PageStatus.GAVE_UP, "next_attempt_at": None,
                                       "lease_until": None}), RetryDecision.FALLBACK
    delay = min(RETRY_BASE * (2 ** max(page.attempts - 1, 0)), RETRY_CAP)
    if retry_after:
        delay = max(delay, timedelta(seconds=retry_after))
    failed = page.model_copy(update={"status": PageStatus.FAILED, "next_attempt_at": now + delay,
                                     "lease_until": None})
    if page.attempts >= config.routing.max_failures_before_fallback or half_response_passed(page, config,
                                                                                           severity, now):
        return failed, RetryDecision.RETRY_AND_FALLBACK
    return failed, RetryDecision.RETRY


def half_response_passed(page: PageRecord, config: ResponderConfig, severity: Severity, now: datetime) -> bool:
    minutes = config.severity.matrix[severity].response_minutes
    return minutes is not None and now - page.at >= timedelta(minutes=minutes) / 2


def fallback_page(page: PageRecord, incident: Incident, config: ResponderConfig) -> PageRecord | None:
    """The same step on the person's or role's fallback channel, if there is one not yet used."""
    routing = config.routing
    role = routing.roles.get(page.role)
    person = routing.people.get(page.person)
    channel = ((person.fallback if person else None) or (role.fallback_channel if role else None)
               or routing.fallback_channel)
    if channel is None or channel == page.channel:
        return None
    page_id = f"{page.step}:{page.person}:{channel}"
    if page.fallback_for is not None or _has_page(incident, page_id):
        return None
    return page.model_copy(update={"id": page_id, "channel": channel, "status": PageStatus.PENDING,
                                   "attempts": 0, "error": None, "next_attempt_at": None, "lease_until": None,
                                   "sent_at": None, "fallback_for": page.id})


def next_action_at(incident: Incident, config: ResponderConfig) -> datetime | None:
    """The earliest time anything about this incident is due: a step, a retry, a fallback, a lease."""
    times: list[datetime] = []
    state = incident.escalation
    if state is not None and incident.status is IncidentStatus.OPEN:
        steps = chain_for(state.severity, config).steps
        if state.next_step < len(steps):
            times.append(step_due_at(state, state.next_step, config))
    for page in incident.pages:
        if page.kind.calls_for_action and incident.status is not IncidentStatus.OPEN:
            continue
        if page.status is PageStatus.PENDING:
            times.append(page.at)
        elif page.status is PageStatus.FAILED and page.next_attempt_at is not None:
            times.append(page.next_attempt_at)
            minutes = config.severity.matrix[incident.severity].response_minutes
            if minutes is not None and page.fallback_for is None and not _has_fallback(incident, page):
                times.append(page.at + timedelta(minutes=minutes) / 2)
        elif page.status is PageStatus.SENDING and page.lease_until is not None:
            times.append(page.lease_until)
    if incident.watch is not None:
        times.append(incident.watch.next_check_at)
    from chalicelib.comms import reminder_at  # comms renders pages too; imported here to avoid a cycle

    reminder = reminder_at(incident, config)
    if reminder is not None:
        times.append(reminder)
    return min(times) if times else None


def fallbacks_due(incident: Incident, config: ResponderConfig, now: datetime) -> list[PageRecord]:
    """Fallback pages for failed pages that have waited half the response time undelivered."""
    due = []
    for page in incident.pages:
        if (page.status is PageStatus.FAILED and page.fallback_for is None and not _has_fallback(incident, page)
                and half_response_passed(page, config, incident.severity, now)):
            extra = fallback_page(page, incident, config)
            if extra is not None:
                due.append(extra.model_copy(update={"at": now}))
    return due


def _has_fallback(incident: Incident, page: PageRecord) -> bool:
    return any(p.fallback_for == page.id for p in incident.pages)


def _has_page(incident: Incident, page_id: str) -> bool:
    return any(p.id == page_id for p in incident.pages)
