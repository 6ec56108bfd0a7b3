"""Incidents as people read them in a terminal: a table and one incident's story.

Pure functions of the incidents, the moment and the team's time zone (``routing.yaml``), so
the CLI's output is the same for the same store and ``--now``. ``--json`` stays the machine
interface; this is for eyes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from chalicelib.models import Incident, IncidentStatus, PageRecord
from chalicelib.notify.escape import plain
from chalicelib.reports.timeline import credited

TITLE_WIDTH = 60
_STATUS_ORDER = {IncidentStatus.OPEN: 0, IncidentStatus.ACKNOWLEDGED: 1, IncidentStatus.RESOLVED: 2}


def age(delta: timedelta) -> str:
    """A short duration: 45s, 12m, 3h05m, 2d04h (never negative)."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def ordered(incidents: Iterable[Incident]) -> list[Incident]:
    """Open first, then acknowledged, then resolved; within each, most severe, then newest."""
    return sorted(incidents, key=lambda i: (_STATUS_ORDER[i.status], i.severity.value,
                                            -i.opened_at.timestamp(), i.id))


def incident_table(incidents: Iterable[Incident], now: datetime, zone: ZoneInfo) -> str:
    """One line per incident: id, severity, status, age, owner, opened (team's zone), title."""
    rows = [(i.id, f"SEV{i.severity.value}", i.status.value, age(now - i.opened_at), i.owner,
             _local(i.opened_at, zone), _short(plain(i.title), TITLE_WIDTH)) for i in ordered(incidents)]
    header = ("ID", "SEV", "STATUS", "AGE", "OWNER", f"OPENED ({zone.key})", "TITLE")
    widths = [max(len(row[n]) for row in (header, *rows)) for n in range(len(header) - 1)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1]
                     for row in (header, *rows))


def incident_detail(incident: Incident, now: datetime, zone: ZoneInfo) -> str:
    """One incident: what it is, who has it, every page and the timeline, times in the team's zone."""
    i = incident
    lines = [f"{i.id}  SEV{i.severity.value}  {i.status.value}  {plain(i.title)}",
             f"  owner      {i.owner}" + (f" (playbook {i.playbook})" if i.playbook else ""),
             f"  key        {i.key}",
             f"  opened     {_local(i.opened_at, zone)}  ({age(now - i.opened_at)} ago; seen {i.count}x,"
             f" last {_local(i.last_seen, zone)})"]
    if i.acknowledged_at:
        lines.append(f"  acked      {_local(i.acknowledged_at, zone)} by {i.acknowledged_by}"
                     f" ({age(i.acknowledged_at - i.opened_at)} after opening)")
    if i.resolved_at:
        lines.append(f"  resolved   {_local(i.resolved_at, zone)} by {i.resolved_by}")
    if i.phi_exposure_suspected:
        lines.append("  PHI exposure suspected")
    if i.playbook_outcome:
        lines.append(f"  playbook   {i.playbook_outcome}")
    for duty in i.duties:
        state = f"done {_local(duty.done_at, zone)} by {duty.done_by}" if duty.done_at else "open"
        lines.append(f"  duty       {duty.kind} due {_local(duty.due_at, zone)}: {state}")
    lines.append(f"pages ({len(i.pages)})" if i.pages else "pages: none")
    lines.extend(f"  {_page(page, zone)}" for page in i.pages)
    lines.append("timeline")
    lines.extend(f"  {_local(entry.at, zone)}  {plain(entry.what)}"
                 + (f"  [{plain(who)}]" if (who := credited(entry)) else "") for entry in i.timeline)
    return "\n".join(lines)


def _page(page: PageRecord, zone: ZoneInfo) -> str:
    status = page.status.value + (f" ({plain(page.error)})" if page.error else "")
    if page.attempts > 1:
        status += f", {page.attempts} attempts"
    text = f"{_local(page.at, zone)}  {page.kind.value:<11} {page.role} → {page.person} via {page.channel}: {status}"
    # the link itself went to the person only: its id and expiry say which one it was
    link = page.ack_link
    return text + (f"\n    ack link {link.id} (sent to {page.person} only), until {_local(link.expires_at, zone)}"
                   if link else "")


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%a %Y-%m-%d %H:%M}"


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"
