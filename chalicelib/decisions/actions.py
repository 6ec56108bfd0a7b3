"""What a person does to an incident: escalate now, reassign, snooze, change severity (pure).

Each action has a ``decide_*`` answering, for the incident as stored, a ``Reason``, and a
function returning the incident after it. ``chalicelib.operations`` runs both inside the
store's conditional update, so a lost race re-reads and decides again. Every change is on the
timeline by the person who made it; the pages it queues go out through the usual outbox.

- **Escalate now**: the chain's next step is paged at once; past the chain's end the severity
  goes up one (a Sev1 restarts its chain), as when a playbook asks for a human.
- **Reassign** to a role or a person: they are the owner and are paged now; the chain restarts
  from there: from that role's step when the role is in the chain, else as if they were its first
  step. An acknowledged incident is re-opened: the new owner has to acknowledge it.
- **Snooze** until a time: nothing that calls for action is queued or sent for the current chain
  before then (``escalation.snoozed``); if still unacknowledged, whatever fell due meanwhile
  pages at the end (the repeat loop too). Acknowledgement times are untouched: the report's
  time to acknowledge runs through a snooze.
- **Severity** up or down: the new severity's owner, chain (restarted now), response-time target
  and duties. A raise is ``incidents.raise_severity`` (a raise to Sev1 re-opens an acknowledged
  incident).

Refused (409): anything on a resolved incident, escalating or snoozing an acknowledged one
(nothing is paging), a snooze that ends in the past. Unchanged (200, nothing written): reassigning
to the current owner, the same snooze again, the same severity.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from chalicelib.config import ResponderConfig
from chalicelib.decisions import comms, escalation
from chalicelib.decisions.incidents import raise_severity
from chalicelib.decisions.oncall import holders
from chalicelib.errors import InvalidRequest
from chalicelib.models import Duty, DutyKind, Incident, IncidentStatus, PageKind, Severity, TimelineEntry

MAX_SNOOZE = timedelta(days=7)


class Reason(StrEnum):
    ESCALATED = "ESCALATED"                # the next step of the chain is paged now
    RAISED = "RAISED"                      # past the chain's end: one severity worse, paged now
    REASSIGNED = "REASSIGNED"              # a new owner, paged now; the chain goes on from them
    ALREADY_OWNER = "ALREADY_OWNER"        # unchanged: they own it already (nobody paged)
    SNOOZED = "SNOOZED"                    # escalation paused until the given time
    ALREADY_SNOOZED = "ALREADY_SNOOZED"    # unchanged: the same snooze is on
    SEVERITY_CHANGED = "SEVERITY_CHANGED"  # chain, owner, target and duties follow the new severity
    SAME_SEVERITY = "SAME_SEVERITY"        # unchanged
    RESOLVED = "RESOLVED"                  # refused: the incident is resolved
    ACKNOWLEDGED = "ACKNOWLEDGED"          # refused: acknowledged, nothing is paging
    IN_THE_PAST = "IN_THE_PAST"            # refused: a snooze must end after now


REFUSED = frozenset({Reason.RESOLVED, Reason.ACKNOWLEDGED, Reason.IN_THE_PAST})
UNCHANGED = frozenset({Reason.ALREADY_OWNER, Reason.ALREADY_SNOOZED, Reason.SAME_SEVERITY})


@dataclass(frozen=True)
class Target:
    """Whom a person named: a role of ``routing.yaml`` (whoever holds it) or a person."""

    name: str
    is_role: bool

    def people(self, config: ResponderConfig, now: datetime) -> list[str]:
        routing = config.routing
        return holders(routing.roles[self.name], now, routing.zone) if self.is_role else [self.name]


def target_of(name: object, config: ResponderConfig, field: str = "to", roles: bool = True,
              people: bool = True) -> Target:
    """The role or person called ``name``, or ``InvalidRequest`` naming ``field``."""
    routing = config.routing
    if isinstance(name, str):
        if roles and name in routing.roles:
            return Target(name, True)
        if people and name in routing.people:
            return Target(name, False)
    what = " or ".join(w for w, on in (("role", roles), ("person", people)) if on)
    raise InvalidRequest(field, f"must name a {what} in routing.yaml")


def severity_of(value: object, field: str = "severity") -> Severity:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4:
        raise InvalidRequest(field, "must be a whole number from 1 to 4")
    return Severity(value)


def until_of(value: object, now: datetime, field: str = "until") -> datetime:
    """A snooze's end: an ISO 8601 time with a UTC offset, at most ``MAX_SNOOZE`` ahead."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidRequest(field, "must be an ISO 8601 time with a UTC offset") from None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidRequest(field, "must be an ISO 8601 time with a UTC offset")
    try:
        value = value.astimezone(UTC)
    except OverflowError:  # an offset that takes it past the calendar's end
        raise InvalidRequest(field, "must be an ISO 8601 time with a UTC offset") from None
    if value - now > MAX_SNOOZE:
        raise InvalidRequest(field, f"must be at most {MAX_SNOOZE.days} days ahead")
    return value


def refusal(reason: Reason, incident: Incident, action: str) -> str:
    """The one-line message of a refused action."""
    return {Reason.RESOLVED: f"incident {incident.id} is resolved; nothing to {action}",
            Reason.ACKNOWLEDGED: f"incident {incident.id} is acknowledged: nothing is paging to {action}",
            Reason.IN_THE_PAST: "the snooze would end before now"}[reason]


# --- decisions ------------------------------------------------------------------------------


def _closed(incident: Incident, acknowledged_too: bool = False) -> Reason | None:
    if incident.status is IncidentStatus.RESOLVED:
        return Reason.RESOLVED
    if acknowledged_too and incident.status is IncidentStatus.ACKNOWLEDGED:
        return Reason.ACKNOWLEDGED
    return None


def decide_escalate(incident: Incident, config: ResponderConfig) -> Reason:
    if refused := _closed(incident, acknowledged_too=True):
        return refused
    state = incident.escalation
    if state is None or state.next_step >= len(escalation.chain_for(state.severity, config).steps):
        return Reason.RAISED
    return Reason.ESCALATED


def decide_reassign(incident: Incident, target: Target) -> Reason:
    if refused := _closed(incident):
        return refused
    return Reason.ALREADY_OWNER if target.name == incident.owner else Reason.REASSIGNED


def decide_snooze(incident: Incident, until: datetime, now: datetime) -> Reason:
    if refused := _closed(incident, acknowledged_too=True):
        return refused
    if until <= now:
        return Reason.IN_THE_PAST
    return Reason.ALREADY_SNOOZED if escalation.snooze_end(incident) == until else Reason.SNOOZED


def decide_severity(incident: Incident, severity: Severity) -> Reason:
    if refused := _closed(incident):
        return refused
    return Reason.SAME_SEVERITY if severity is incident.severity else Reason.SEVERITY_CHANGED


# --- the incident after the action ------------------------------------------------------------


def escalated(incident: Incident, by: str, now: datetime, config: ResponderConfig,
              ack_link: escalation.AckLinker | None = None) -> Incident:
    """ESCALATED or RAISED: the next step paged now (a snooze ends: a person wants a human now)."""
    asked = _unsnoozed(incident).noted(TimelineEntry(at=now, by=by, what=f"escalation asked by {by}"
                                                     + _snooze_ended(incident, now)))
    bumped = escalation.escalate_next(asked, config, now, f"asked by {by}", ack_link)
    if bumped is not None:
        return bumped
    worse = Severity(max(incident.severity.value - 1, 1))
    return _with_duties(raise_severity(asked, worse, f"(past the end of the chain, asked by {by})", now, config),
                        config)


def reassigned(incident: Incident, target: Target, by: str, now: datetime, config: ResponderConfig,
               ack_link: escalation.AckLinker | None = None, opening: bool = False) -> Incident:
    """REASSIGNED: ``target`` owns it and is paged now; the chain restarts from there. ``opening``:
    a page on purpose that named whom to page (they get the trigger, nobody else first)."""
    state = incident.escalation
    steps = escalation.chain_for(incident.severity, config).steps
    at = next((i for i, step in enumerate(steps) if target.is_role and step.role == target.name), 0)
    fresh = escalation.start(incident.severity, config, now,
                             restart=escalation.restart_of(state) + 1 if state else 1, previous=state)
    # the chain's clock is set so that the target's step is the one due now
    fresh = fresh.model_copy(update={"started_at": fresh.started_at - timedelta(
        minutes=steps[at].after_minutes if steps else 0), "next_step": min(at + 1, len(steps))})
    people = target.people(config, now)
    reopen = incident.status is IncidentStatus.ACKNOWLEDGED
    lead = f"owner {target.name} named by {by}" if opening else f"reassigned {incident.owner} → {target.name} by {by}"
    what = (f"{lead}: "
            + (f"paged {', '.join(people)}" if people else "nobody holds the role now")
            + (f"; re-opened (was acknowledged by {incident.acknowledged_by})" if reopen else "")
            + _snooze_ended(incident, now))
    changed = _unsnoozed(incident).noted(TimelineEntry(at=now, by=by, what=what), owner=target.name, escalation=fresh,
                                         **({"status": IncidentStatus.OPEN, "changed_at": now} if reopen else {}))
    if not people:
        return changed
    kind = PageKind.TRIGGER if opening else PageKind.ESCALATION
    pages = escalation.people_pages(changed, f"{fresh.chain}/owner", target.name, people, kind, config, now, ack_link)
    return escalation.queued(changed, pages, people, config)


def snoozed(incident: Incident, until: datetime, by: str, now: datetime) -> Incident:
    """SNOOZED: escalation of the current chain waits until ``until``."""
    state = incident.escalation
    before = escalation.snooze_end(incident)
    was = f" (was until {before.isoformat()})" if before is not None and before > now else ""
    return incident.noted(TimelineEntry(at=now, by=by, what=f"snoozed until {until.isoformat()} by {by}: "
                                                            f"escalation paused{was}"),
                          snoozed_until=until, snoozed_chain=state.chain if state else None)


def severity_changed(incident: Incident, severity: Severity, by: str, now: datetime,
                     config: ResponderConfig) -> Incident:
    """SEVERITY_CHANGED: owner, chain (from now), response-time target and duties follow ``severity``."""
    old = f"SEV{incident.severity.value}"
    entry = TimelineEntry(at=now, by=by, what=f"severity changed {old} → SEV{severity.value} by {by}")
    if severity < incident.severity:
        return _with_duties(raise_severity(incident.noted(entry), severity, f"by {by}", now, config), config)
    state = incident.escalation
    owner = config.severity.matrix[severity].owner
    lowered = incident.noted(
        entry.model_copy(update={"what": f"{entry.what}, owner {owner}"}), severity=severity, owner=owner,
        escalation=escalation.start(severity, config, now, restart=escalation.restart_of(state) + 1 if state else 1,
                                    previous=state))
    lowered = lowered.with_pages(*comms.founder_update(lowered, f"lowered to sev{severity.value}", config, now))
    return _with_duties(lowered, config)


def _with_duties(incident: Incident, config: ResponderConfig) -> Incident:
    """The customer notice the severity calls for: an undone one of the old severity gives way
    to the new severity's (or to none); one already sent stays."""
    kept: tuple[Duty, ...] = tuple(d for d in incident.duties
                                   if d.kind != DutyKind.CUSTOMER_NOTIFICATION or d.done_at is not None)
    if not any(d.kind == DutyKind.CUSTOMER_NOTIFICATION for d in kept):
        kept += tuple(comms.opening_duties(incident, config))
    return incident if kept == incident.duties else incident.model_copy(update={"duties": kept})


def _unsnoozed(incident: Incident) -> Incident:
    return incident.model_copy(update={"snoozed_until": None, "snoozed_chain": None})


def _snooze_ended(incident: Incident, now: datetime) -> str:
    end = escalation.snooze_end(incident)
    return f"; snooze until {end.isoformat()} ended" if end is not None and end > now else ""
