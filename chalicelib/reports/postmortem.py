"""Post-mortem drafts in the runbook's template (§9), filled from the incident's own record.

Facts come from the timeline: what detected it and when, who was paged when, who
acknowledged after how long, every playbook step and its result, when and how it
resolved. Root cause, lessons and action items are left for people. Blameless: the
Lessons section is a prompt, never filled with anyone's name; names appear only where
the record states a fact (who was paged, who acknowledged).

Times are in the team's time zone (``routing.yaml``), with the zone's abbreviation. The
Response section keeps what people and the automation did, not the outbox's receipts for
informing pages (``reports.timeline``). What went wrong on the way (a failed or refused
playbook step, a deadline missed, an acknowledgement outside the response target) is written
into Action items as a first draft; people edit the wording and set owner and date.

Every value from outside (titles, names, notes, keys) goes through ``escape.markdown`` or
``escape.markdown_code``: an alarm named ``<script>`` or ``![x](https://evil)`` reads as
its name, a ``|`` stays inside its table cell, and a line break cannot start a heading.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from chalicelib.config import ResponderConfig
from chalicelib.models import Incident, PageStatus
from chalicelib.notify.escape import markdown, markdown_code
from chalicelib.reports.describe import service
from chalicelib.reports.timeline import EntryKind, credited, entry_kind

SECTIONS = ("Incident date", "Impact", "Root cause", "Detection", "Response", "Resolution", "Lessons",
            "Action items")


def draft(incident: Incident, config: ResponderConfig, now: datetime) -> str:
    zone = config.routing.zone

    def _t(value: datetime | None) -> str:
        return local_time(value, zone)

    row = config.severity.matrix[incident.severity]
    end = incident.resolved_at
    lines = [
        f"# Post-mortem: {markdown(incident.title)}",
        "",
        f"_Draft for incident {markdown_code(incident.id)}, generated {_t(now)} from its timeline. Blameless: describe "
        "systems, signals and decisions, not people._",
        "",
        "## Incident date",
        f"- Started: {_t(incident.opened_at)}",
        f"- Ended: {_t(end) if end else 'not resolved yet'}",
        f"- Duration: {_duration(end - incident.opened_at) if end else 'ongoing'}",
        "",
        "## Impact",
        f"- Severity: SEV{incident.severity.value} ({row.definition}); response target: {row.response}",
        f"- Service: {markdown(service(incident))}",
        f"- Signal: {incident.kind} on {markdown(incident.resource or incident.title)}",
        f"- Duration of impact: {_duration(end - incident.opened_at) if end else 'ongoing'}",
        "- Customers affected: _to be filled in_",
        f"- PHI exposure suspected: {'yes' if incident.phi_exposure_suspected else 'no'}",
    ]
    for duty in incident.duties:
        state = f"done {_t(duty.done_at)}" if duty.done_at else f"due {_t(duty.due_at)}"
        lines.append(f"- Duty: {markdown(duty.kind.replace('_', ' '))}: {state}")
    lines += [
        "",
        "## Root cause",
        "_To be written by the team: the technical cause, and why the safeguards did not catch it._",
        "",
        "## Detection",
        f"- {_t(incident.opened_at)}: detected as {incident.kind} {markdown_code(incident.key)}, classified "
        f"SEV{incident.severity.value} by {markdown(incident.rule)}",
        f"- Signals received: {incident.count} (last {_t(incident.last_seen)})",
        "",
        "## Response",
        f"| Time ({zone.key}) | What |",
        "|---|---|",
    ]
    lines += [f"| {_t(e.at)} | {_cell(e.what)}{f' ({_cell(who)})' if (who := credited(e)) else ''} |"
              for e in incident.timeline if entry_kind(e) not in (EntryKind.SIGNAL, EntryKind.DELIVERY)]
    lines.append("")
    sent = [p for p in incident.pages if p.status is PageStatus.SENT and p.kind.calls_for_action]
    if sent:
        lines.append(f"- First page: {_t(min(p.sent_at or p.at for p in sent))}; pages sent: {len(sent)}"
                     + (f" (and {incident.pages_rolled_up} older finished pages, on the timeline)"
                        if incident.pages_rolled_up else ""))
    if incident.acknowledged_at and incident.time_to_acknowledge is not None:
        target = row.response_minutes
        verdict = "" if target is None else (" (within" if incident.time_to_acknowledge <= target * 60
                                               else " (outside") + f" the {target}-minute target)"
        lines.append(f"- Acknowledged {_t(incident.acknowledged_at)} by {markdown(incident.acknowledged_by or '')}, "
                     f"{_duration(timedelta(seconds=incident.time_to_acknowledge))} after opening{verdict}")
    if incident.playbook:
        outcome = markdown(incident.playbook_outcome or "did not run")
        lines.append(f"- Playbook {markdown(incident.playbook)}: {outcome}")
    lines += [
        "",
        "## Resolution",
        f"- Resolved {_t(end)} ({markdown(incident.resolved_by or '')})" if end else "- Not resolved yet",
        "- What fixed it: _to be filled in_",
        "",
        "## Lessons",
        "_What we learned about our systems and processes. Blameless: no names in this section._",
        "",
        "- ",
        "",
        "## Action items",
        "| Action | Owner | Due date |",
        "|---|---|---|",
        *[f"| {_cell(action)} | {markdown(incident.owner)} (to confirm) |  |"
          for action in action_items(incident, config, now)],
        "|  |  |  |",
        "",
    ]
    return "\n".join(lines)


def action_items(incident: Incident, config: ResponderConfig, now: datetime) -> list[str]:
    """First drafts of the action items the record already calls for: each failed or refused
    playbook step, each missed deadline (duties, the response target). Plain text, unescaped."""
    zone = config.routing.zone
    items = [f"Find out why this step failed and fix it: {e.what}"
             for e in incident.timeline if entry_kind(e) is EntryKind.FAILED_STEP]
    target = config.severity.matrix[incident.severity].response_minutes
    if target is not None:
        acked = incident.acknowledged_at
        waited = (acked or incident.resolved_at or now) - incident.opened_at
        # resolved with nobody acknowledging (the alarm cleared by itself): no response was missed
        if waited > timedelta(minutes=target) and (acked or incident.resolved_at is None):
            how = f"acknowledged after {_duration(waited)}" if acked else f"not acknowledged after {_duration(waited)}"
            items.append(f"Response target missed ({how}, target {target} min): find out why the page "
                         "did not reach someone who could act sooner")
    for duty in incident.duties:
        name = duty.kind.replace("_", " ")
        if duty.done_at is not None and duty.done_at > duty.due_at:
            items.append(f"Deadline missed: {name} was done {_duration(duty.done_at - duty.due_at)} late "
                         f"(due {local_time(duty.due_at, zone)}): find out why")
        elif duty.done_at is None and now > duty.due_at:
            items.append(f"Deadline missed: {name} overdue since {local_time(duty.due_at, zone)}: do it, "
                         "then find out why it was missed")
    return items


def section(markdown: str, heading: str) -> str:
    """The text under ``## heading`` (for tests and tooling)."""
    parts = markdown.split(f"## {heading}\n", 1)
    return parts[1].split("\n## ", 1)[0] if len(parts) == 2 else ""


def local_time(value: datetime | None, zone: ZoneInfo) -> str:
    """``2025-03-14 10:00 EDT``: the team's wall clock, with the zone so nobody converts."""
    return f"{value.astimezone(zone):%Y-%m-%d %H:%M %Z}" if value else "-"


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def _cell(text: str) -> str:
    return markdown(text)
