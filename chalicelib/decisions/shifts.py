"""Who holds a role over a stretch of time, and which handover the sweep must announce: pure
functions of a role (weekly shifts and dated overrides), the routing time zone and ``now``.

``spans`` cuts a stretch at every instant the holders can change (each shift's start and end on
each local day, at ``oncall.handover_instant``, which gives daylight-saving handovers their one
meaning; each override's start and end) and asks ``oncall.holders`` who holds the role in each
piece. The calendar feed and the shift-change notices therefore read the very schedule paging
reads: an override replaces the rotation for its span, as it does for a page.

``handover_due`` compares who holds the role now with the last handover noticed (a small stored
marker, ``chalicelib.shifts``) and says, with a reason, whether someone new must be told.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

from chalicelib.config.routing import Role, RoutingConfig
from chalicelib.decisions.oncall import handover_instant, holders
from chalicelib.models import Frozen, Incident, IncidentStatus
from chalicelib.notify.paging import SUMMARY_LIMIT

# A notice later than this (the sweep was down) is not sent: the person has long found out.
MAX_LATE = timedelta(hours=1)
# Long enough to see the current holders' start whenever it can still be announced (> MAX_LATE),
# and to say until when they hold the role (a weekly rotation).
LOOK_BACK, LOOK_AHEAD = timedelta(days=1), timedelta(days=8)
SEND_LEASE = timedelta(minutes=2)  # a claimed notice not recorded as sent by then is tried again
MAX_ATTEMPTS = 3


class Span(Frozen):
    """``people`` hold the role from ``start`` to ``end``; ``override``: by a dated override."""

    start: datetime
    end: datetime
    people: tuple[str, ...]
    override: bool


def spans(role: Role, zone: ZoneInfo, start: datetime, end: datetime) -> list[Span]:
    """The role's holders over [start, end), as maximal spans (neighbours with the same people and
    the same origin merged), nobody's stretches included (``people == ()``)."""
    points = {start.astimezone(UTC), end.astimezone(UTC)}  # one zone for all: overrides keep their offsets
    points |= {t.astimezone(UTC) for o in role.overrides for t in (o.start, o.end) if start < t < end}
    walls = {t for s in role.shifts for t in (s.start, s.end)}
    day = start.astimezone(zone).date() - timedelta(days=1)
    while day <= end.astimezone(zone).date():
        points |= {t for wall in walls if start < (t := handover_instant(day, wall, zone)) < end}
        day += timedelta(days=1)
    found: list[Span] = []
    for begin, finish in itertools.pairwise(sorted(points)):
        people = tuple(holders(role, begin, zone))
        override = any(o.start <= begin < o.end for o in role.overrides)
        if found and found[-1].people == people and found[-1].override == override:
            found[-1] = found[-1].model_copy(update={"end": finish})
        else:
            found.append(Span(start=begin, end=finish, people=people, override=override))
    return found


def holding(role: Role, zone: ZoneInfo, now: datetime) -> tuple[datetime, datetime | None, tuple[str, ...]]:
    """(since, until, people): the current holders and the stretch they hold the role unchanged;
    ``until`` is None beyond ``LOOK_AHEAD``, ``since`` is at most ``LOOK_BACK`` ago."""
    window = spans(role, zone, now - LOOK_BACK, now + LOOK_AHEAD)
    current = next(i for i, s in enumerate(window) if s.start <= now < s.end)
    people = window[current].people
    first = last = current
    while first > 0 and window[first - 1].people == people:
        first -= 1
    while last + 1 < len(window) and window[last + 1].people == people:
        last += 1
    until = window[last].end if last + 1 < len(window) else None
    return window[first].start, until, people


class Marker(Frozen):
    """The last handover of a role the sweep noticed (stored), and what became of its notice."""

    at: datetime
    people: tuple[str, ...]
    incoming: tuple[str, ...] = ()  # who its notice is for
    status: Literal["seen", "sending", "sent", "failed"]
    attempts: int = 0
    lease_until: datetime | None = None


class Handover(Frozen):
    at: datetime
    until: datetime | None
    people: tuple[str, ...]
    incoming: tuple[str, ...]  # the people who did not hold the role at the last noticed handover


class Reason(StrEnum):
    FIRST_LOOK = "FIRST_LOOK"      # no marker yet: the current holders are remembered, nobody told
    DUE = "DUE"                    # someone new holds the role: tell them
    RETRY = "RETRY"                # the notice's claim ran out or its send failed: try again
    IN_PROGRESS = "IN_PROGRESS"    # another sweep claimed this notice and its lease runs
    NONE_SINCE = "NONE_SINCE"      # the same people as last noticed (or its notice is done / given up)
    NOBODY_NEW = "NOBODY_NEW"      # a handover only took people away: nobody to tell
    TOO_LATE = "TOO_LATE"          # the handover is older than MAX_LATE (the sweep was down)


class Decision(Frozen):
    reason: Reason
    handover: Handover | None = None  # what to remember (and, for DUE / RETRY, announce)


def handover_due(role: Role, zone: ZoneInfo, marker: Marker | None, now: datetime) -> Decision:
    since, until, people = holding(role, zone, now)
    if marker is None:
        return Decision(reason=Reason.FIRST_LOOK, handover=Handover(at=since, until=until, people=people, incoming=()))
    if set(people) == set(marker.people):
        return _same_handover(marker, until, now)
    # A change the schedule shows started after the marker; anything else (an override removed,
    # routing.yaml edited) is a handover now.
    at = since if since > marker.at else now
    handover = Handover(at=at, until=until, people=people,
                        incoming=tuple(p for p in people if p not in marker.people))
    if not handover.incoming:
        return Decision(reason=Reason.NOBODY_NEW, handover=handover)
    if now - at > MAX_LATE:
        return Decision(reason=Reason.TOO_LATE, handover=handover)
    return Decision(reason=Reason.DUE, handover=handover)


def _same_handover(marker: Marker, until: datetime | None, now: datetime) -> Decision:
    if marker.status == "sending" and marker.lease_until is not None and now < marker.lease_until:
        return Decision(reason=Reason.IN_PROGRESS)
    unfinished = marker.status == "failed" or (marker.status == "sending" and marker.lease_until is not None)
    if unfinished and marker.attempts < MAX_ATTEMPTS and now - marker.at <= MAX_LATE:
        return Decision(reason=Reason.RETRY, handover=Handover(at=marker.at, until=until, people=marker.people,
                                                               incoming=marker.incoming))
    return Decision(reason=Reason.NONE_SINCE)



def open_for_role(incidents: list[Incident], role: str, routing: RoutingConfig) -> list[Incident]:
    """Incidents not resolved that concern ``role``: it owns them, it was paged for them, or it is a
    step of their severity's chain (an escalation would page it); worst first, then oldest."""
    def concerns(incident: Incident) -> bool:
        chain = routing.escalation.get(incident.severity)
        return (incident.owner == role or any(p.role == role for p in incident.pages)
                or any(step.role == role for step in (chain.steps if chain else ())))
    found = [i for i in incidents if i.status is not IncidentStatus.RESOLVED and concerns(i)]
    return sorted(found, key=lambda i: (i.severity.value, i.opened_at, i.id))


def notice_text(role: str, handover: Handover, incidents: list[Incident], zone: ZoneInfo) -> str:
    """What the incoming person reads: the role, the stretch, the open incidents (ids, severities,
    statuses and the stored PHI-free titles, as pages show them), cut to the page limit."""
    until = f" until {_local(handover.until, zone)}" if handover.until else ""
    head = f"[ON CALL] you now hold {role}, from {_local(handover.at, zone)}{until} ({zone.key})"
    if not incidents:
        return f"{head} | no open incidents for {role}"
    parts = [head, f"{len(incidents)} open for {role}:"]
    for shown, incident in enumerate(incidents):
        line = f"[SEV{incident.severity.value}] {incident.id} {_status(incident)}: {incident.title}"
        rest = f"and {len(incidents) - shown} more"
        if len(" | ".join([*parts, line, rest])) > SUMMARY_LIMIT:
            parts.append(rest)
            break
        parts.append(line)
    return " | ".join(parts)[:SUMMARY_LIMIT]


def _status(incident: Incident) -> str:
    """Its status, except that an alarm whose recovery is held (decisions/flapping.py) says so: it is
    open only until the sweep resolves it, unless it fires again."""
    return "recovering" if incident.recovery_held else incident.status.value


def notice_channels(routing: RoutingConfig, person: str) -> list[str]:
    """Where ``person`` hears of a shift change: each of their channels but PagerDuty ones (a notice
    is no alert: it would page), else their fallback channel if it is not PagerDuty; [] if none."""
    known = routing.people.get(person)
    if known is None:
        return []
    usable = [c for c in known.channels if routing.channels[c].type != "pagerduty"]
    if not usable and known.fallback and routing.channels[known.fallback].type != "pagerduty":
        usable = [known.fallback]
    return usable


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%a %Y-%m-%d %H:%M}"
