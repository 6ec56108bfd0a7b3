"""Escalation and delivery decisions: pure functions of an incident, the config and ``now``.

An open, unacknowledged incident walks its severity's chain (``routing.yaml``
``escalation``): step *i* is due at ``started_at + after_minutes``. A chain marked
``business_hours_only`` starts at the next business-hours moment, so a Sev3 at 03:00 pages
at 09:00. Every page is queued first (an outbox entry on the incident) and sent by the
delivery stage; a failed page is retried with backoff, and after
``max_failures_before_fallback`` failures, a refusal, or half the response time without
a delivered page, the same step also goes out on the fallback channel.

**Repeat until acknowledged.** After the last step the chain repeats (``repeat``,
``repeat_after_minutes``): loop *n* starts ``n × repeat_after_minutes`` after the chain
started and pages everyone in the chain at once. If the sweep was away for several loops,
only the latest runs. Acknowledged or resolved incidents never repeat (``repeat_decision``).

**One person, one page per loop.** A step whose people were all paged already in this
loop is skipped and the next step is paged at once, so a backup who is also the primary
does not delay the next distinct person (``StepOutcome.ALREADY_PAGED``, on the timeline).

**PagerDuty.** One alert per person, at most one open: ``pd_alerts``.

**Stand down.** Acknowledgement and resolution notices go to every person on every channel
a page was delivered on (``EscalationState.reached``), and on PagerDuty to everyone with an
alert that may be open. A trigger that is confirmed after the incident was acknowledged or
resolved (it was in flight) queues that person's stand-down notice at once.

``next_action_at`` condenses all of it into the one time the sweep must look again, and
``due_reason`` says whether a sweep's hand-off (a queued message, maybe redelivered) still
has anything to do.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum

from chalicelib.config import ResponderConfig
from chalicelib.config.routing import EscalationChain
from chalicelib.decisions.oncall import holders, next_business_moment
from chalicelib.decisions.pd_alerts import (
    confirmed,
    dedup_key,
    next_key,
    open_keys,
    pagerduty_alerts,
    pagerduty_channels,
    with_alerts,
)
from chalicelib.models import (
    AckLinkRef,
    EscalationState,
    Incident,
    IncidentStatus,
    PageKind,
    PagerDutyAlerts,
    PageRecord,
    PageStatus,
    Severity,
    TimelineEntry,
)
from chalicelib.notify import render as page_render
from chalicelib.notify.paging import render

RETRY_BASE = timedelta(seconds=30)
RETRY_CAP = timedelta(minutes=5)
SEND_LEASE = timedelta(seconds=60)


class RetryDecision(StrEnum):
    RETRY = "RETRY"                  # try the same channel again at next_attempt_at
    RETRY_AND_FALLBACK = "RETRY_AND_FALLBACK"  # and queue the fallback channel now
    FALLBACK = "FALLBACK"            # the channel refused for good: fallback only


class RepeatReason(StrEnum):
    REPEAT = "REPEAT"                  # the chain ran out unanswered and the next loop is due
    NOT_YET = "NOT_YET"                # the next loop starts later
    CHAIN_RUNNING = "CHAIN_RUNNING"    # this loop still has steps to page
    NO_MORE_LOOPS = "NO_MORE_LOOPS"    # every configured loop has run
    NOT_REPEATED = "NOT_REPEATED"      # this severity's chain does not repeat
    ACKNOWLEDGED = "ACKNOWLEDGED"      # someone answered: nobody is paged again
    RESOLVED = "RESOLVED"
    NO_CHAIN = "NO_CHAIN"
    SNOOZED = "SNOOZED"                # a human paused escalation: the loop waits for the snooze to end
    RECOVERY_HELD = "RECOVERY_HELD"    # its alarm recovered, held until quiet: the loop waits (flapping.py)


class DueReason(StrEnum):
    DUE = "DUE"                            # something is due: advance it
    NOT_YET = "NOT_YET"                    # done already (a redelivery, a racing sweep): next time is later
    NOTHING_SCHEDULED = "NOTHING_SCHEDULED"  # nothing more will ever be due (resolved, all sent)
    MISSING = "MISSING"                    # no such incident


# The index holds due times in whole seconds, rounded down: what it calls due may be this much early.
DUE_GRANULARITY = timedelta(seconds=1)


# A held incident's holder releases it when it resolves, after its own resolving write: a worker that
# dies in between (or a release that fails) would leave it held, paging nobody, while its alarm, which
# says nothing more, still fires. The sweep looks at its holder this often (a read, and a write while
# it is still open) and releases it if the holder is gone.
HELD_RECHECK = timedelta(minutes=15)


def due_reason(incident: Incident | None, now: datetime) -> DueReason:
    """Is anything about ``incident`` due at ``now``, as the store last saved it?"""
    if incident is None:
        return DueReason.MISSING
    if incident.next_action_at is None:
        return DueReason.NOTHING_SCHEDULED
    if incident.next_action_at - now >= DUE_GRANULARITY:
        return DueReason.NOT_YET
    return DueReason.DUE


class StepOutcome(StrEnum):
    PAGED = "PAGED"                    # someone not yet paged in this loop was paged
    ALREADY_PAGED = "ALREADY_PAGED"    # everyone on the role was paged in this loop: on to the next step
    NOBODY_ON_ROLE = "NOBODY_ON_ROLE"  # nobody holds the role now


def chain_for(severity: Severity, config: ResponderConfig) -> EscalationChain:
    return config.routing.escalation[severity]


def start(severity: Severity, config: ResponderConfig, now: datetime, restart: int = 0,
          previous: EscalationState | None = None) -> EscalationState:
    """A fresh chain; a restart keeps who was reached and the PagerDuty alerts opened."""
    chain = chain_for(severity, config)
    routing = config.routing
    begins = next_business_moment(routing.business_hours, now, routing.zone) if chain.business_hours_only else now
    kept = ({"reached": previous.reached, "alerts": previous.alerts, "pagerduty": previous.pagerduty}
            if previous else {})
    return EscalationState(chain=f"SEV{severity.value}#{restart}", severity=severity, started_at=begins, **kept)


def restart_of(state: EscalationState) -> int:
    """How often the chain was restarted (``SEV1#10``: 10), from its name."""
    try:
        return int(state.chain.rsplit("#", 1)[1])
    except (IndexError, ValueError):
        return 0


def loop_start(state: EscalationState, loop: int, config: ResponderConfig) -> datetime:
    chain = chain_for(state.severity, config)
    begins = state.started_at + timedelta(minutes=chain.period_minutes * loop)
    if loop and chain.business_hours_only:
        routing = config.routing
        begins = next_business_moment(routing.business_hours, begins, routing.zone)
    return begins


def step_due_at(state: EscalationState, index: int, config: ResponderConfig) -> datetime:
    if state.loop:  # a repeat loop pages everyone in the chain when it starts
        return loop_start(state, state.loop, config)
    step = chain_for(state.severity, config).steps[index]
    return state.started_at + timedelta(minutes=step.after_minutes)


def snooze_end(incident: Incident) -> datetime | None:
    """When the snooze on the current chain ends (None: no snooze on it). Nothing that calls for
    action is queued or sent before then; whatever fell due meanwhile goes out at that time."""
    state = incident.escalation
    if incident.snoozed_until is None or state is None or state.chain != incident.snoozed_chain:
        return None
    return incident.snoozed_until


def snoozed(incident: Incident, now: datetime) -> bool:
    end = snooze_end(incident)
    return end is not None and now < end


def due_steps(incident: Incident, config: ResponderConfig, now: datetime) -> list[int]:
    """Indices of this loop's chain steps whose time has come, for an open, unacknowledged incident."""
    state = incident.escalation
    # held (decisions/grouping.py): it pages nobody, though a taken-over effect keeps its chain for its notices
    if (state is None or incident.status is not IncidentStatus.OPEN or snoozed(incident, now)
            or incident.recovery_held or incident.held):
        return []
    steps = chain_for(state.severity, config).steps
    return [i for i in range(state.next_step, len(steps)) if step_due_at(state, i, config) <= now]


def repeat_decision(incident: Incident, config: ResponderConfig, now: datetime) -> RepeatReason:
    """Does the chain start another loop now?"""
    state = incident.escalation
    if state is None:
        return RepeatReason.NO_CHAIN
    if incident.status is IncidentStatus.ACKNOWLEDGED:
        return RepeatReason.ACKNOWLEDGED
    if incident.status is IncidentStatus.RESOLVED:
        return RepeatReason.RESOLVED
    chain = chain_for(state.severity, config)
    if not chain.repeat or not chain.steps:
        return RepeatReason.NOT_REPEATED
    if state.next_step < len(chain.steps):
        return RepeatReason.CHAIN_RUNNING
    if chain.loops is not None and state.loop + 1 >= chain.loops:
        return RepeatReason.NO_MORE_LOOPS
    if loop_start(state, state.loop + 1, config) > now:
        return RepeatReason.NOT_YET
    if snoozed(incident, now):
        return RepeatReason.SNOOZED
    if incident.recovery_held:
        return RepeatReason.RECOVERY_HELD
    return RepeatReason.REPEAT


def due_loop(state: EscalationState, config: ResponderConfig, now: datetime) -> int:
    """The latest loop that has started by ``now`` (a sweep that was away skips the missed ones)."""
    chain = chain_for(state.severity, config)
    loop = state.loop + 1
    while (chain.loops is None or loop + 1 < chain.loops) and loop_start(state, loop + 1, config) <= now:
        loop += 1
    return loop


AckLinker = Callable[[Incident, str, datetime], AckLinkRef]  # issues a link for (incident, person, now)


def step_pages(incident: Incident, index: int, config: ResponderConfig, now: datetime,
               ack_link: AckLinker | None = None, why: str | None = None) -> list[PageRecord]:
    """The outbox entries for chain step ``index`` of the current loop: everyone holding its role
    now who was not paged in this loop yet, on each channel, each with a one-click
    acknowledgement link bound to that person (when links are configured), stored redacted:
    only the person's channel gets the link itself (``links.AckLinks.reveal``)."""
    assert incident.escalation is not None
    state = incident.escalation
    role_name = chain_for(state.severity, config).steps[index].role
    first = index == 0 and state.loop == 0 and restart_of(state) == 0
    step_id = f"{state.chain}/{index}" if state.loop == 0 else f"{state.chain}/L{state.loop}/{index}"
    people = [p for p in holders(config.routing.roles[role_name], now, config.routing.zone) if p not in state.paged]
    kind = PageKind.TRIGGER if first else PageKind.ESCALATION
    if kind is PageKind.ESCALATION and why is None:
        why = unanswered_for(state, index, config, now)
    return people_pages(incident, step_id, role_name, people, kind, config, now, ack_link, why=why, index=index)


def people_pages(incident: Incident, step_id: str, role_name: str, people: list[str], kind: PageKind,
                 config: ResponderConfig, now: datetime, ack_link: AckLinker | None = None,
                 why: str | None = None, index: int | None = None) -> list[PageRecord]:
    """One outbox entry per person in ``people`` and channel of theirs, for step ``step_id``
    (a chain step ``index``, or a person a human named: ``decisions.actions``), each in its
    channel's form (notify/render.py: SMS in one segment with a short ack link, the others whole)."""
    pagerduty = pagerduty_channels(config)
    alerts = pagerduty_alerts(incident, pagerduty)
    said = page_render.content(incident, kind, config, why=why, next_up=next_up(incident, config, index))
    fields, links = page_render.details(said), page_render.links(said)
    pages = []
    for person in people:
        link = ack_link(incident, person, now) if ack_link else None
        key = dedup_key(incident.id, person, next_key(alerts.get(person)))
        for channel in config.routing.people[person].channels:
            setup = config.routing.channels.get(channel)
            sms = setup is not None and setup.page_format == "sms"
            placeholder = link.redacted if link else None
            text = page_render.sms_text(said, placeholder) if sms else page_render.full_text(said, placeholder)
            pages.append(PageRecord(id=f"{step_id}:{person}:{channel}", step=step_id, role=role_name, person=person,
                                    channel=channel, kind=kind, at=now, text=text,
                                    ack_link=link.model_copy(update={"short": True}) if link and sms else link,
                                    details=fields, page_links=links,
                                    dedup_keys=(key,) if channel in pagerduty else ()))
    return pages


def update_pages(incident: Incident, config: ResponderConfig, now: datetime, done: str) -> list[PageRecord]:
    """"What the responder did" to everyone a page reached, on each channel it reached them
    on (PagerDuty left out: its alert is already open and a trigger would not change it)."""
    state = incident.escalation
    if state is None or incident.status is IncidentStatus.RESOLVED:
        return []
    said = page_render.content(incident, PageKind.UPDATE, config, done=done,
                               next_up=next_up(incident, config, None) if incident.status is IncidentStatus.OPEN
                               else None)
    pagerduty = pagerduty_channels(config)
    pages = []
    for person, channel, role in state.reached:
        setup = config.routing.channels.get(channel)
        if channel in pagerduty:
            continue
        sms = setup is not None and setup.page_format == "sms"
        page_id = f"update:{now:%Y%m%dT%H%M%S}:{person}:{channel}"
        if not _has_page(incident, page_id):
            pages.append(PageRecord(id=page_id, step="update", role=role, person=person, channel=channel,
                                    kind=PageKind.UPDATE, at=now,
                                    text=page_render.sms_text(said) if sms else page_render.full_text(said),
                                    details=page_render.details(said), page_links=page_render.links(said)))
    return pages


def unanswered_for(state: EscalationState, index: int, config: ResponderConfig, now: datetime) -> str:
    """Why a chain step pages: how long nobody acknowledged (and which loop it is)."""
    minutes = int((now - state.started_at).total_seconds() // 60)
    if state.loop:
        return f"unacknowledged for {minutes} min, loop {state.loop + 1}"
    return f"unacknowledged for {chain_for(state.severity, config).steps[index].after_minutes} min"


def next_up(incident: Incident, config: ResponderConfig, index: int | None) -> str | None:
    """Who is paged after chain step ``index`` (the chain's next step otherwise), and when,
    in the team's time zone; None when nobody will be."""
    state = incident.escalation
    if state is None:
        return None
    chain = chain_for(state.severity, config)
    following = state.next_step if index is None else index + 1
    if state.loop == 0 and following < len(chain.steps):
        at = step_due_at(state, following, config)
        role = chain.steps[following].role
        who = ", ".join(holders(config.routing.roles[role], at, config.routing.zone)) or "nobody"
        return f"{who} ({role}) at {page_render.local_time(at, config)}"
    if chain.steps and (chain.loops is None or state.loop + 1 < chain.loops):
        return f"everyone again at {page_render.local_time(loop_start(state, state.loop + 1, config), config)}"
    return None


def queued(incident: Incident, pages: list[PageRecord], people: list[str], config: ResponderConfig) -> Incident:
    """``pages`` in the outbox, each PagerDuty trigger's alert counted, ``people`` paged in this loop."""
    assert incident.escalation is not None
    pagerduty = pagerduty_channels(config)
    alerts = pagerduty_alerts(incident, pagerduty)
    for page in pages:
        if page.channel in pagerduty:
            mine = alerts.get(page.person) or PagerDutyAlerts(person=page.person, role=page.role)
            n = next_key(alerts.get(page.person))
            alerts[page.person] = mine.model_copy(update={
                "current": n, "confirmed": mine.confirmed and n == mine.current, "role": page.role})
    incident = with_alerts(incident, alerts) if alerts else incident
    assert incident.escalation is not None
    paged = incident.escalation.model_copy(update={"paged": (*incident.escalation.paged, *people)})
    return incident.with_pages(*pages).model_copy(update={"escalation": paged})


def page_step(incident: Incident, index: int, config: ResponderConfig, now: datetime,
              ack_link: AckLinker | None = None, label: str | None = None,
              why: str | None = None) -> tuple[Incident, StepOutcome]:
    """Queue step ``index`` of the current loop and note it; the state remembers who was paged."""
    assert incident.escalation is not None
    state = incident.escalation
    role_name = chain_for(state.severity, config).steps[index].role
    everyone = holders(config.routing.roles[role_name], now, config.routing.zone)
    label = label or (f"escalation step {index + 1}" if state.loop == 0
                      else f"loop {state.loop + 1}, step {index + 1}")
    if not everyone:
        return incident.noted(TimelineEntry(at=now, what=f"{label}: {role_name} (nobody holds the role)")), \
            StepOutcome.NOBODY_ON_ROLE
    fresh = [p for p in everyone if p not in state.paged]
    if not fresh:
        return incident.noted(TimelineEntry(
            at=now, what=f"{label}: {role_name} is {', '.join(everyone)}, already paged in this loop: "
                         "skipped, on to the next person")), StepOutcome.ALREADY_PAGED
    pages = step_pages(incident, index, config, now, ack_link, why)
    skipped = sorted(set(everyone) - set(fresh))
    what = f"{label}: {role_name} ({', '.join(sorted(fresh))})" + (
        f"; {', '.join(skipped)} already paged in this loop" if skipped else "")
    return queued(incident, pages, fresh, config).noted(TimelineEntry(at=now, what=what)), StepOutcome.PAGED


def page_steps(incident: Incident, first: int, last: int, config: ResponderConfig, now: datetime,
               ack_link: AckLinker | None = None, label: str | None = None, why: str | None = None) -> Incident:
    """Page steps ``first``..``last``; a step whose people were all paged in this loop pulls the
    next step forward, so the next distinct person hears of it now rather than at its time."""
    assert incident.escalation is not None
    count = len(chain_for(incident.escalation.severity, config).steps)
    index = first
    while index <= last and index < count:
        incident, outcome = page_step(incident, index, config, now, ack_link, label if index == first else None,
                                      why)
        if outcome is StepOutcome.ALREADY_PAGED and index == last:
            last += 1
        index += 1
    assert incident.escalation is not None
    return incident.model_copy(update={"escalation": incident.escalation.model_copy(update={"next_step": index})})


def escalate(incident: Incident, config: ResponderConfig, now: datetime,
             ack_link: AckLinker | None = None) -> Incident:
    """The incident with every due step queued (a new loop first, if one is due); the same
    object when nothing is due."""
    state = incident.escalation
    if state is None or incident.status is not IncidentStatus.OPEN or incident.held:
        return incident
    if repeat_decision(incident, config, now) is RepeatReason.REPEAT:
        chain = chain_for(state.severity, config)
        loop = due_loop(state, config, now)
        of = f" of {chain.loops}" if chain.loops else ", until acknowledged"
        incident = incident.noted(
            TimelineEntry(at=now, what=f"nobody acknowledged: loop {loop + 1}{of}, everyone in the chain is paged"),
            escalation=state.model_copy(update={"loop": loop, "next_step": 0, "paged": ()}))
    due = due_steps(incident, config, now)
    if not due:
        return incident
    return page_steps(incident, due[0], due[-1], config, now, ack_link)


def escalate_next(incident: Incident, config: ResponderConfig, now: datetime, why: str,
                  ack_link: AckLinker | None = None) -> Incident | None:
    """Page the next step at once (a human is needed now); None past the end of the chain."""
    state = incident.escalation
    if state is None or state.next_step >= len(chain_for(state.severity, config).steps):
        return None
    return page_steps(incident, state.next_step, state.next_step, config, now, ack_link,
                      label=f"escalated at once ({why}): step {state.next_step + 1}", why=why)


def delivered(incident: Incident, page: PageRecord, now: datetime,
              pagerduty: frozenset[str] = frozenset()) -> Incident:
    """Remember who a page reached (they hear the acknowledgement and the resolution) and which
    PagerDuty alerts a confirmed send opened or closed. A trigger confirmed after the incident
    was acknowledged or resolved (it was in flight) queues the person's stand-down at once."""
    state = incident.escalation
    if state is None:
        return incident
    if page.channel in pagerduty and (page.kind.calls_for_action or page.kind is PageKind.RESOLVE):
        incident = confirmed(incident, page, pagerduty)
        state = incident.escalation
        assert state is not None
    if not page.kind.calls_for_action:
        return incident
    if not any(person == page.person and channel == page.channel for person, channel, _ in state.reached):
        reached = (*state.reached, (page.person, page.channel, page.role))
        incident = incident.model_copy(update={"escalation": state.model_copy(update={"reached": reached})})
    if incident.status is IncidentStatus.OPEN:
        return incident
    notice = _stand_down_after(incident, page, now, pagerduty)
    if notice is None:
        return incident
    return incident.with_pages(notice).noted(TimelineEntry(
        at=now, what=f"{page.person} was paged on {page.channel} after the incident was "
                     f"{incident.status.value}: stand-down notice queued"))


def failed_after_close(incident: Incident, page: PageRecord, now: datetime,
                       pagerduty: frozenset[str]) -> Incident:
    """A PagerDuty trigger whose reply was lost after the incident was acknowledged or resolved:
    its alert may have opened after our acknowledgement reached PagerDuty, so that person's
    alerts get the stand-down once more."""
    if (page.channel not in pagerduty or not page.kind.calls_for_action
            or incident.status is IncidentStatus.OPEN or incident.escalation is None):
        return incident
    notice = _stand_down_after(incident, page, now, pagerduty)
    return incident.with_pages(notice) if notice is not None else incident


def _stand_down_after(incident: Incident, page: PageRecord, now: datetime,
                      pagerduty: frozenset[str]) -> PageRecord | None:
    kind = PageKind.ACKNOWLEDGE if incident.status is IncidentStatus.ACKNOWLEDGED else PageKind.RESOLVE
    by = incident.acknowledged_by if kind is PageKind.ACKNOWLEDGE else incident.resolved_by
    keys: tuple[str, ...] = ()
    if page.channel in pagerduty:
        keys = open_keys(incident, pagerduty_alerts(incident, pagerduty).get(page.person))
        if not keys:
            return None
    page_id = f"{kind.value}:after:{page.id}"
    if _has_page(incident, page_id):
        return None
    return PageRecord(id=page_id, step=kind.value, role=page.role, person=page.person, channel=page.channel,
                      kind=kind, at=now, text=_notice_text(incident, kind, by), dedup_keys=keys)


def _notice_text(incident: Incident, kind: PageKind, by: str | None) -> str:
    verb = "acknowledged" if kind is PageKind.ACKNOWLEDGE else "resolved"
    return render(incident, kind, note=f"{verb} by {by} — you can stand down" if by else None)


def resolve_pages(incident: Incident, now: datetime, pagerduty: frozenset[str] = frozenset(),
                  by: str | None = None, heard_from: str | None = None) -> list[PageRecord]:
    """A resolve notice to every person on every channel a page reached."""
    return _notices(incident, PageKind.RESOLVE, now, pagerduty, by, heard_from)


def acknowledge_pages(incident: Incident, now: datetime, pagerduty: frozenset[str] = frozenset(),
                      by: str | None = None, heard_from: str | None = None) -> list[PageRecord]:
    """"acknowledged by alice — you can stand down", to every person on every channel a page reached."""
    return _notices(incident, PageKind.ACKNOWLEDGE, now, pagerduty, by, heard_from)


def _notices(incident: Incident, kind: PageKind, now: datetime, pagerduty: frozenset[str], by: str | None,
             heard_from: str | None) -> list[PageRecord]:
    """One notice per (person, channel) reached, and on PagerDuty per person with an alert that
    may be open (a trigger claimed, whether or not its sending was confirmed). There it carries
    the person's alerts that may be open (at most two), less ``heard_from``, the key PagerDuty
    told us about (no echo); with no key left it is not sent."""
    state = incident.escalation
    text = _notice_text(incident, kind, by)
    reached: dict[tuple[str, str], str] = {}
    for person, channel, role in (state.reached if state else ()):
        reached.setdefault((person, channel), role)
    for page in incident.pages:  # pages from before the state kept ``reached``
        if page.kind.calls_for_action and page.delivered:
            reached.setdefault((page.person, page.channel), page.role)
    alerts = pagerduty_alerts(incident, pagerduty)
    for mine in alerts.values():
        for channel in mine.channels if mine.maybe_open else ():
            reached.setdefault((mine.person, channel), mine.role)
    # an acknowledgement can come again after a raise to Sev1 re-opened the incident
    round_ = f"{state.chain}:" if state and kind is PageKind.ACKNOWLEDGE and restart_of(state) else ""
    notices = []
    for (person, channel), role in reached.items():
        page_id = f"{kind.value}:{round_}{person}:{channel}"
        keys: tuple[str, ...] = ()
        if channel in pagerduty:
            keys = tuple(k for k in open_keys(incident, alerts.get(person)) if k != heard_from)
            if not keys:
                continue
        if _has_page(incident, page_id):
            continue
        notices.append(PageRecord(id=page_id, step=kind.value, role=role, person=person, channel=channel,
                                  kind=kind, at=now, text=text, dedup_keys=keys))
    return notices


def cancel_unsent(incident: Incident, now: datetime, why: str) -> Incident:
    """Acknowledged or resolved: no trigger or escalation page may still go out."""
    cancelled = [p.model_copy(update={"status": PageStatus.CANCELLED, "error": why, "next_attempt_at": None})
                 for p in incident.pages
                 if p.kind.calls_for_action and p.status in (PageStatus.PENDING, PageStatus.FAILED)]
    return incident.with_pages(*cancelled) if cancelled else incident


def claimable(page: PageRecord, incident: Incident, now: datetime) -> bool:
    """May a worker take this page for sending now?"""
    if page.kind.calls_for_action and (incident.status is not IncidentStatus.OPEN or snoozed(incident, now)):
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
    held: list[datetime] = []  # what calls for action: it waits for a snooze to end
    state = incident.escalation
    if state is not None and incident.status is IncidentStatus.OPEN and not incident.held:
        steps = chain_for(state.severity, config).steps
        if state.next_step < len(steps):
            held.append(step_due_at(state, state.next_step, config))
        # asked as of the chain's start, "not yet" means: another loop is to come
        elif repeat_decision(incident, config, state.started_at) is RepeatReason.NOT_YET:
            held.append(loop_start(state, state.loop + 1, config))
    for page in incident.pages:
        if page.kind.calls_for_action and incident.status is not IncidentStatus.OPEN:
            continue
        due = held if page.kind.calls_for_action else times
        if page.status is PageStatus.PENDING:
            due.append(page.at)
        elif page.status is PageStatus.FAILED and page.next_attempt_at is not None:
            due.append(page.next_attempt_at)
            minutes = config.severity.matrix[incident.severity].response_minutes
            if minutes is not None and page.fallback_for is None and not _has_fallback(incident, page):
                due.append(page.at + timedelta(minutes=minutes) / 2)
        elif page.status is PageStatus.SENDING and page.lease_until is not None:
            due.append(page.lease_until)
    # a silenced incident is paged when its window ends; a held recovery resolves once quiet (issue 14)
    if incident.status is IncidentStatus.SILENCED and incident.silenced_until is not None:
        times.append(incident.silenced_until)
    from chalicelib.decisions.flapping import resolve_at

    quiet_until = resolve_at(incident, config.routing.flapping)
    if quiet_until is not None:
        times.append(quiet_until)
    # a snoozed chain, or one waiting on a held recovery, wakes the sweep when it may go on
    end = max((t for t in (snooze_end(incident), quiet_until) if t is not None), default=None)
    times += [max(t, end) for t in held] if end is not None else held
    if incident.watch is not None:
        times.append(incident.watch.next_check_at)
    if incident.held_by is not None and incident.is_open:  # is its holder still open? (``HELD_RECHECK``)
        times.append((incident.held_checked_at or incident.opened_at) + HELD_RECHECK)
    from chalicelib.decisions.comms import reminder_at  # comms renders pages too; imported here to avoid a cycle

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
