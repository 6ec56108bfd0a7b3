"""Who is on call, and when business hours are: pure functions of the routing config and a time.

Schedules are weekly, in wall-clock time of the routing timezone, so a shift that starts
at 09:00 starts at 09:00 in New York in winter and in summer. Coverage is checked minute
by minute over one week (10,080 minutes), which names a gap to the minute.

Daylight-saving changes give every handover (a shift's start or end, business hours'
start or end) one meaning:

- at a local time that does not exist (2026-03-08 02:30 in New York: clocks go from 02:00
  to 03:00), it happens at the first instant after the gap (03:00 EDT);
- at a local time that happens twice (2026-11-01 01:30: clocks go from 02:00 back to
  01:00), it happens at the first occurrence (01:30 EDT, ``fold=0``), and the repeated
  stretch (01:00–02:00 EST) counts as after it: nobody flips back to the previous holder.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from chalicelib.config.routing import WEEKDAYS, BusinessHours, Role, RoutingConfig, Shift

WEEK_MINUTES = 7 * 24 * 60
_WHOLE_WEEK = frozenset(range(WEEK_MINUTES))


def holders(role: Role, at: datetime, zone: ZoneInfo) -> list[str]:
    """The people holding ``role`` at ``at``: active overrides win over the weekly shifts."""
    overriding = [o.person for o in role.overrides if o.start <= at < o.end]
    if overriding:
        return list(dict.fromkeys(overriding))
    minute = schedule_minute(at, zone)
    return list(dict.fromkeys(s.person for s in role.shifts if minute in _shift_minutes(s)))


def in_business_hours(hours: BusinessHours, at: datetime, zone: ZoneInfo) -> bool:
    """Inside the weekly window, on a day that is not one of ``hours.holidays`` (the local date the
    window opened: an overnight window belongs to the day it started)."""
    if schedule_minute(at, zone) not in _window_minutes(hours.days, hours.start, hours.end):
        return False
    local = at.astimezone(zone)
    opened = local.date() - timedelta(days=1) if hours.end <= hours.start and local.time() < hours.end \
        else local.date()
    return opened not in hours.holidays


def next_business_moment(hours: BusinessHours, at: datetime, zone: ZoneInfo) -> datetime:
    """``at`` if it is inside business hours, else the start of the next business-hours window (UTC),
    holidays skipped."""
    if in_business_hours(hours, at, zone):
        return at
    local = at.astimezone(zone)
    for days_ahead in range(8 + len(hours.holidays)):
        day = (local + timedelta(days=days_ahead)).date()
        if WEEKDAYS[day.weekday()] not in hours.days or day in hours.holidays:
            continue
        start = handover_instant(day, hours.start, zone)
        if start > at:
            return start
    raise ValueError("business hours have no working day")


def handover_instant(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The instant a handover at local ``wall`` on ``day`` happens (see the module docstring)."""
    naive = datetime.combine(day, wall)
    first = naive.replace(tzinfo=zone)  # fold=0: the first occurrence of a repeated time
    if _wall(first.astimezone(UTC), zone) == naive:
        # in UTC: an aware time in a repeated hour never compares equal across zones (PEP 495)
        return first.astimezone(UTC)
    # ``wall`` falls in a gap: the two readings of it bracket the jump; take the first instant after it
    readings = (first.astimezone(UTC), naive.replace(tzinfo=zone, fold=1).astimezone(UTC))
    moment = min(readings).replace(second=0, microsecond=0)
    while _wall(moment, zone) < naive:
        moment += timedelta(minutes=1)
    return moment


def schedule_minute(at: datetime, zone: ZoneInfo) -> int:
    """The minute of the week a schedule reads at ``at``. In the second pass through a repeated
    local hour every handover in it has already happened (on the first pass), so it reads as the
    last minute of that hour until the clock moves past it."""
    local = at.astimezone(zone)
    if not local.fold:
        return _week_minute(local)
    later = at
    while later.astimezone(zone).fold:  # at most the length of the repeat (an hour in New York)
        later += timedelta(minutes=1)
    return (_week_minute(later.astimezone(zone)) - 1) % WEEK_MINUTES


def _wall(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None, fold=0)


def coverage_gaps(role: Role, hours: BusinessHours) -> list[str]:
    """Stretches of the week the role promises (its ``coverage``) but nobody holds; [] if none."""
    if role.coverage == "none":
        return []
    return empty_hours(role, hours, within=role.coverage)


def empty_hours(role: Role, hours: BusinessHours, within: Literal["always", "business-hours"] = "always",
                ) -> list[str]:
    """Stretches of the week (``within`` all of it, or business hours) when nobody holds the role
    by its weekly shifts, as text ("from Tue 02:00 to Tue 04:00"); [] if none. Dated overrides
    are not counted: outside them the shifts are all there is."""
    needed = _WHOLE_WEEK if within == "always" else _window_minutes(hours.days, hours.start, hours.end)
    missing = needed.difference(*(_shift_minutes(shift) for shift in role.shifts))
    return _runs_as_text(sorted(missing)) if missing else []


def _runs_as_text(missing: list[int]) -> list[str]:
    runs: list[tuple[int, int]] = []
    for minute in missing:
        if runs and runs[-1][1] == minute:
            runs[-1] = (runs[-1][0], minute + 1)
        else:
            runs.append((minute, minute + 1))
    if len(runs) > 1 and runs[0][0] == 0 and runs[-1][1] == WEEK_MINUTES:  # wraps Sunday → Monday
        runs = [(runs[-1][0], runs[0][1] + WEEK_MINUTES), *runs[1:-1]]
    if runs == [(0, WEEK_MINUTES)]:
        return ["all week"]
    return [f"from {_label(a)} to {_label(b)}" for a, b in runs]


def _label(week_minute: int) -> str:
    minute = week_minute % WEEK_MINUTES
    return f"{WEEKDAYS[minute // 1440].capitalize()} {minute % 1440 // 60:02d}:{minute % 60:02d}"


def _week_minute(local: datetime) -> int:
    return local.weekday() * 1440 + local.hour * 60 + local.minute


def _shift_minutes(shift: Shift) -> frozenset[int]:
    return _window_minutes(shift.days, shift.start, shift.end)


_WINDOW_CACHE: dict[tuple[tuple[str, ...], time, time], frozenset[int]] = {}


def _window_minutes(days: tuple[str, ...], start: time, end: time) -> frozenset[int]:
    """Minutes of the week inside ``start``–``end`` on ``days``; end ≤ start runs into the next day."""
    key = (days, start, end)
    if key not in _WINDOW_CACHE:
        begin = start.hour * 60 + start.minute
        finish = end.hour * 60 + end.minute
        length = finish - begin if finish > begin else finish + 1440 - begin
        minutes: set[int] = set()
        for day in days:
            first = WEEKDAYS.index(day) * 1440 + begin
            minutes.update((first + i) % WEEK_MINUTES for i in range(length))
        _WINDOW_CACHE[key] = frozenset(minutes)
    return _WINDOW_CACHE[key]


# --- one person holding two roles of one chain -------------------------------------------------
# Escalation pages the next role because the previous one did not answer; when both resolve to
# the same person, the "backup" is the person who already did not answer. That is allowed (a small
# team, a swapped day) but must be visible: a warning at load and in `oncall`, never an error.


def chain_role_pairs(routing: RoutingConfig) -> list[tuple[str, str]]:
    """Each pair of distinct roles that share an escalation chain, in chain order, once."""
    pairs: dict[tuple[str, str], None] = {}
    for severity in sorted(routing.escalation):
        roles = list(dict.fromkeys(step.role for step in routing.escalation[severity].steps))
        for i, first in enumerate(roles):
            for second in roles[i + 1:]:
                if (second, first) not in pairs:
                    pairs[(first, second)] = None
    return list(pairs)


def same_person_at(routing: RoutingConfig, at: datetime) -> list[tuple[str, str, str]]:
    """(role, role, person) for each chain role pair that one person holds both of at ``at``."""
    zone = routing.zone
    found = []
    for first, second in chain_role_pairs(routing):
        shared = set(holders(routing.roles[second], at, zone))
        found += [(first, second, p) for p in holders(routing.roles[first], at, zone) if p in shared]
    return found


def same_person_warnings(routing: RoutingConfig) -> list[str]:
    """Every stretch when one person holds two roles of one chain: weekly (shifts) and dated
    (overrides), naming the roles, the person and the hours."""
    out = []
    for first, second in chain_role_pairs(routing):
        a, b = routing.roles[first], routing.roles[second]
        for person in sorted({s.person for s in a.shifts} & {s.person for s in b.shifts}):
            both = _person_minutes(a, person) & _person_minutes(b, person)
            if both:
                out.append(f"roles {first} and {second} are both {person} "
                           f"{', '.join(_runs_as_text(sorted(both)))} every week ({routing.timezone}): "
                           f"escalating from {first} to {second} would page {person} again")
        for start, end, person in _dated_overlaps(a, b, routing.zone):
            out.append(f"roles {first} and {second} are both {person} from {_local(start, routing.zone)} "
                       f"to {_local(end, routing.zone)} ({routing.timezone}, an override): "
                       f"escalating from {first} to {second} would page {person} again")
    return out


def _person_minutes(role: Role, person: str) -> set[int]:
    minutes: set[int] = set()
    for shift in role.shifts:
        if shift.person == person:
            minutes |= _shift_minutes(shift)
    return minutes


def _dated_overlaps(a: Role, b: Role, zone: ZoneInfo) -> list[tuple[datetime, datetime, str]]:
    """Stretches inside either role's overrides when one person holds both, merged per person."""
    overrides = [*a.overrides, *b.overrides]
    walls = sorted({t for s in (*a.shifts, *b.shifts) for t in (s.start, s.end)})
    found: list[tuple[datetime, datetime, str]] = []
    for window in overrides:
        points = {window.start, window.end}
        points |= {t for o in overrides for t in (o.start, o.end) if window.start < t < window.end}
        day = window.start.astimezone(zone).date() - timedelta(days=1)
        while day <= window.end.astimezone(zone).date():
            points |= {t for wall in walls if window.start < (t := handover_instant(day, wall, zone)) < window.end}
            day += timedelta(days=1)
        ordered = sorted(p.astimezone(UTC) for p in points)
        for start, end in itertools.pairwise(ordered):
            shared = set(holders(b, start, zone))
            found += [(start, end, p) for p in holders(a, start, zone) if p in shared]
    merged: list[tuple[datetime, datetime, str]] = []
    for start, end, person in sorted(found, key=lambda f: (f[2], f[0])):
        if merged and merged[-1][2] == person and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]), person)
        else:
            merged.append((start, end, person))
    return sorted(merged)


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%a %Y-%m-%d %H:%M}"
