"""Who is on call, and when business hours are: pure functions of the routing config and a time.

Schedules are weekly, in wall-clock time of the routing timezone, so a shift that starts
at 09:00 starts at 09:00 in New York in winter and in summer. Coverage is checked minute
by minute over one week (10,080 minutes), which names a gap to the minute.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from chalicelib.config.routing import WEEKDAYS, BusinessHours, Role, Shift

WEEK_MINUTES = 7 * 24 * 60


def holders(role: Role, at: datetime, zone: ZoneInfo) -> list[str]:
    """The people holding ``role`` at ``at``: active overrides win over the weekly shifts."""
    overriding = [o.person for o in role.overrides if o.start <= at < o.end]
    if overriding:
        return list(dict.fromkeys(overriding))
    minute = _week_minute(at.astimezone(zone))
    return list(dict.fromkeys(s.person for s in role.shifts if minute in _shift_minutes(s)))


def in_business_hours(hours: BusinessHours, at: datetime, zone: ZoneInfo) -> bool:
    return _week_minute(at.astimezone(zone)) in _window_minutes(hours.days, hours.start, hours.end)


def next_business_moment(hours: BusinessHours, at: datetime, zone: ZoneInfo) -> datetime:
    """``at`` if it is inside business hours, else the start of the next business-hours window."""
    if in_business_hours(hours, at, zone):
        return at
    local = at.astimezone(zone)
    for days_ahead in range(8):
        day = (local + timedelta(days=days_ahead)).date()
        if WEEKDAYS[day.weekday()] not in hours.days:
            continue
        start = datetime.combine(day, hours.start, tzinfo=zone)
        if start > local:
            return start
    raise ValueError("business hours have no working day")


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
    needed = (set(range(WEEK_MINUTES)) if within == "always"
              else _window_minutes(hours.days, hours.start, hours.end))
    covered: set[int] = set()
    for shift in role.shifts:
        covered |= _shift_minutes(shift)
    return _runs_as_text(sorted(needed - covered))


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
