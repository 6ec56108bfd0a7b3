"""Calendar feeds (issue 13 §3): ``GET /oncall/calendar/role/ROLE.ics`` and
``GET /oncall/calendar/person/NAME.ics``, so people see their shifts in their own calendar.

Calendar apps subscribe to a URL and cannot send a bearer token, so the URL is the credential:
``?sig=`` is the HMAC-SHA256 of ``calendar:role:ROLE`` (or ``calendar:person:NAME``) with the
ack-link secret, as heartbeat URLs are signed (``calendar:`` is not base64url, so it is never an
ack payload). It does not expire (a subscription is meant to last); rotating the link secret
revokes every feed URL at once, with the heartbeat URLs. A feed shows who is on call when, and
nothing about incidents. No signature: 401; a wrong one: 403; an unknown role or person (checked
after the signature, so a forged URL learns nothing): 404 naming it.

A feed covers ``WEEKS`` weeks back and ahead from local midnight: one event per stretch a person
holds a role (``decisions.shifts.spans``: the schedule paging reads, routing.yaml's and the stored
overrides, an override replacing the rotation for its span, marked "(override)"), and each
holiday as an all-day event. ``icalendar`` is imported here, on the feed's request only: it costs
~120-160 ms and no event path needs it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from typing import Literal, NamedTuple
from urllib.parse import quote

from chalicelib import overrides
from chalicelib.config.routing import RoutingConfig
from chalicelib.decisions.oncall import handover_instant
from chalicelib.decisions.shifts import spans
from chalicelib.notify.links import AckLinks
from chalicelib.web.api import ApiResponse, error
from chalicelib.wiring import Deps

Kind = Literal["role", "person"]
WEEKS = 8
SUFFIX = ".ics"


class Stretch(NamedTuple):
    """One calendar event: ``person`` holds ``role`` from ``start`` to ``end``."""

    role: str
    person: str
    start: datetime
    end: datetime
    override: bool  # by a dated override (it replaces the rotation for its span)


def signature(links: AckLinks, kind: Kind, name: str) -> str:
    return links.sign_text(f"calendar:{kind}:{name}")


def signed_url(links: AckLinks, kind: Kind, name: str) -> str:
    return f"{links.base_url}/oncall/calendar/{kind}/{quote(name, safe='')}{SUFFIX}?sig={signature(links, kind, name)}"


def feed(deps: Deps, kind: Kind, segment: str, query: Mapping[str, str]) -> ApiResponse:
    if unknown := sorted(set(query) - {"sig"}):
        return error(400, f"{unknown[0]}: unknown parameter", unknown[0])
    field = "role" if kind == "role" else "person"
    name = segment[:-len(SUFFIX)] if segment.endswith(SUFFIX) else segment
    given = query.get("sig")
    if deps.links is None or not given:
        return error(401, "the feed's signed URL (?sig=) is required", "sig")
    if not hmac.compare_digest(signature(deps.links, kind, name).encode(), given.encode("utf-8", "replace")):
        return error(403, "sig: not a signature of this feed", "sig")
    if not segment.endswith(SUFFIX):
        return error(404, f"{field}: the feed's path ends in {SUFFIX}", field)
    routing = overrides.with_stored(deps.config, overrides.stored(deps.store)).routing
    if name not in (routing.roles if kind == "role" else routing.people):
        return error(404, f"{field}: no {field} {name!r} in routing.yaml", field)
    body = ics(routing, kind, name, deps.clock())
    return ApiResponse(200, body, {"Content-Type": "text/calendar; charset=utf-8",
                                   "Cache-Control": "private, max-age=300"})


def stretches(routing: RoutingConfig, kind: Kind, name: str, start: datetime, end: datetime) -> list[Stretch]:
    """Each stretch one person holds one role in [start, end): the role's people, or the person's roles."""
    found: list[Stretch] = []
    roles = [name] if kind == "role" else sorted(routing.roles)
    for role in roles:
        window = spans(routing.roles[role], routing.zone, start, end)
        people = sorted({p for s in window for p in s.people}) if kind == "role" else [name]
        for person in people:
            current: list[Stretch] = []
            for span in window:
                if person not in span.people:
                    continue
                if current and current[-1].end == span.start and current[-1].override == span.override:
                    current[-1] = current[-1]._replace(end=span.end)
                else:
                    current.append(Stretch(role, person, span.start, span.end, span.override))
            found += current
    return sorted(found, key=lambda s: (s.start, s.role, s.person))


def ics(routing: RoutingConfig, kind: Kind, name: str, now: datetime) -> str:
    from icalendar import Calendar, Event  # ~120-160 ms: only this route pays it

    zone = routing.zone
    today = now.astimezone(zone).date()
    start = handover_instant(today - timedelta(weeks=WEEKS), time(0, 0), zone)
    end = handover_instant(today + timedelta(weeks=WEEKS), time(0, 0), zone)
    calendar = Calendar()
    calendar.add("prodid", "-//alarm-responder//on-call//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", f"On call: {name}")
    calendar.add("x-wr-timezone", routing.timezone)
    calendar.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    for role, person, begins, ends, override in stretches(routing, kind, name, start, end):
        event = Event()
        event.add("uid", _uid(role, person, begins))
        event.add("dtstamp", now)
        event.add("dtstart", begins)
        event.add("dtend", ends)
        event.add("summary", f"{role}: {person}" + (" (override)" if override else ""))
        event.add("categories", ["on-call", "override" if override else "rotation"])
        event.add("transp", "TRANSPARENT")
        calendar.add_component(event)
    for day in sorted(routing.business_hours.holidays):
        if start.astimezone(zone).date() <= day < end.astimezone(zone).date():
            event = Event()
            event.add("uid", f"holiday-{day.isoformat()}@alarm-responder")
            event.add("dtstamp", now)
            event.add("dtstart", day)
            event.add("dtend", day + timedelta(days=1))
            event.add("summary", "Holiday: no business hours (Sev3 pages wait for the next business day)")
            event.add("categories", ["holiday"])
            event.add("transp", "TRANSPARENT")
            calendar.add_component(event)
    return calendar.to_ical().decode("utf-8")


def _uid(role: str, person: str, start: datetime) -> str:
    digest = hashlib.sha256(f"{role}|{person}|{start.isoformat()}".encode()).hexdigest()[:24]
    return f"{digest}@alarm-responder"
