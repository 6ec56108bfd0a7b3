"""Communication duties (runbook §9-10), as pure functions of an incident, the config and ``now``.

- Sev1/Sev2 incidents post to the founders' channel when they open, are acknowledged and
  resolve (``founder_update``).
- A customer-impacting (service) incident owes customers a notice per their SLA; a
  resolved Sev1/Sev2 owes a post-mortem draft within 24 hours; an incident marked
  "PHI exposure suspected" is Sev1 and starts the 60-day breach-notification clock of the
  BAA. These are ``Duty`` entries on the incident, shown by the API and the reports.
- An overdue post-mortem is reminded once, to whoever holds the reminder role
  (engineering-daytime) then, or at the start of the next business day.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from chalicelib.config import ResponderConfig
from chalicelib.decisions.oncall import holders, next_business_moment
from chalicelib.models import Duty, DutyKind, Incident, PageKind, PageRecord, SignalKind, TimelineEntry
from chalicelib.notify.paging import render

SERVICE_KINDS = frozenset({SignalKind.ALARM, SignalKind.ECS_DEPLOYMENT, SignalKind.SENTRY_ISSUE,
                           SignalKind.SENTRY_EVENT_ALERT, SignalKind.SENTRY_METRIC_ALERT, SignalKind.SENTRY_ERROR,
                           SignalKind.RDS_EVENT})


def founder_update(incident: Incident, event: str, config: ResponderConfig, now: datetime) -> list[PageRecord]:
    comms = config.routing.communications
    channel = comms.founder_channel
    if channel is None or incident.severity not in comms.update_severities:
        return []
    page_id = f"update:{event}:{channel}"
    if any(p.id == page_id for p in incident.pages):
        return []
    return [PageRecord(id=page_id, step="update", role="founders", person="founders-channel", channel=channel,
                       kind=PageKind.UPDATE, at=now, text=render(incident, PageKind.UPDATE, verb=event.upper()))]


def opening_duties(incident: Incident, config: ResponderConfig) -> list[Duty]:
    minutes = config.routing.communications.customer_notice_minutes.get(incident.severity)
    if minutes is None or incident.kind not in SERVICE_KINDS:
        return []
    return [Duty(kind=DutyKind.CUSTOMER_NOTIFICATION, due_at=incident.opened_at + timedelta(minutes=minutes),
                 reason=f"customer-impacting SEV{incident.severity.value}: notify customers per their SLA")]


def closing_duties(incident: Incident, config: ResponderConfig, now: datetime) -> list[Duty]:
    comms = config.routing.communications
    if (incident.severity not in comms.postmortem_severities
            or any(d.kind is DutyKind.POSTMORTEM for d in incident.duties)):
        return []
    return [Duty(kind=DutyKind.POSTMORTEM, due_at=now + timedelta(hours=comms.postmortem_due_hours),
                 reason=f"blameless post-mortem within {comms.postmortem_due_hours} h of resolution (runbook §9)")]


def breach_duty(config: ResponderConfig, now: datetime) -> Duty:
    days = config.routing.communications.breach_notice_days
    return Duty(kind=DutyKind.BREACH_NOTIFICATION, due_at=now + timedelta(days=days),
                reason=f"PHI exposure suspected: customers are notified within {days} days (BAA)")


def complete(incident: Incident, kind: str, by: str, now: datetime) -> Incident:
    """Mark the open duties of ``kind`` done (a post-mortem written, a notice sent)."""
    duties = tuple(d.model_copy(update={"done_at": now, "done_by": by}) if d.kind == kind and d.done_at is None
                   else d for d in incident.duties)
    if duties == incident.duties:
        return incident
    return incident.noted(TimelineEntry(at=now, by=by, what=f"{kind} done by {by}"), duties=duties)


def reminder_at(incident: Incident, config: ResponderConfig) -> datetime | None:
    """When the overdue post-mortem is to be reminded (business hours for the daytime role)."""
    routing = config.routing
    role = routing.roles.get(routing.communications.reminder_role)
    due = [d.due_at for d in incident.duties
           if d.kind is DutyKind.POSTMORTEM and d.done_at is None and d.reminded_at is None]
    if not due or role is None:
        return None
    when = min(due)
    if role.coverage == "business-hours":
        when = next_business_moment(routing.business_hours, when, routing.zone)
    return when


def reminders_due(incident: Incident, config: ResponderConfig, now: datetime) -> Incident:
    """Queue the overdue post-mortem reminder, once, to whoever holds the reminder role now."""
    when = reminder_at(incident, config)
    if when is None or when > now:
        return incident
    routing = config.routing
    role_name = routing.communications.reminder_role
    people = holders(routing.roles[role_name], now, routing.zone)
    if not people:
        return incident  # nobody on the role right now: the next sweep tries again
    text = render(incident, PageKind.REMINDER, verb="POST-MORTEM OVERDUE")
    pages = [PageRecord(id=f"reminder:postmortem:{person}:{channel}", step="reminder", role=role_name,
                        person=person, channel=channel, kind=PageKind.REMINDER, at=now, text=text)
             for person in people for channel in routing.people[person].channels]
    duties = tuple(d.model_copy(update={"reminded_at": now}) if d.kind is DutyKind.POSTMORTEM and d.done_at is None
                   else d for d in incident.duties)
    return incident.with_pages(*pages).noted(
        TimelineEntry(at=now, what=f"post-mortem draft overdue: reminded {', '.join(people)}"), duties=duties)
