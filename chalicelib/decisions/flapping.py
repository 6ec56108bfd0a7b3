"""Flapping (issue 14 §3): an alarm that changes state N times in M minutes is one problem.

``routing.yaml``'s ``flapping:`` gives N (``transitions``), M (``minutes``) and S
(``stable_minutes``). An alarm incident counts the state changes that page or resolve: the trigger
that opened it, a recovery and a trigger after a recovery (``INSUFFICIENT_DATA`` is noted, as
before, and changes nothing).

Nobody can tell from one recovery that an alarm flaps, so a *quick* recovery (within M minutes of
the trigger before it) is held: the incident stays open, quiet, its escalation paused, and the
sweep resolves it once it has been quiet for S minutes; if the alarm fires again meanwhile it is the
same incident (nobody paged again). A recovery after a longer firing resolves at once, as before.
Once N changes fall within M minutes the incident is flapping: every recovery is held the same way
and every change is on the timeline with its count. So a flapping alarm is one incident, one page and
one resolve, whatever N is.

A repeat counted on the hot path (the same state again) is not a change. An incident waiting to be
resolved takes the full path for every trigger (``bounds.repeat_floor``), so the trigger that ends its
quiet period is always seen.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from chalicelib.config.routing import Flapping
from chalicelib.models import FlapState, Incident, SignalKind, Transition

# Only alarms flap: a CloudWatch alarm crosses its threshold back and forth; other sources say
# what happened once.
FLAPPING_KINDS = frozenset({SignalKind.ALARM.value})


class FlapReason(StrEnum):
    OFF = "OFF"                    # no ``flapping:`` config, or not an alarm
    NOT_FLAPPING = "NOT_FLAPPING"  # fewer than N changes within M minutes: decided as usual
    HELD = "HELD"                  # not (yet) flapping, but a recovery within M minutes of its trigger:
                                   # held until quiet for S minutes, in case the alarm fires again
    STARTED = "STARTED"            # this change makes N within M: flapping from now
    FLAPPING = "FLAPPING"          # flapping already: counted, nobody paged, a recovery is held


class StableReason(StrEnum):
    STABLE = "STABLE"              # a held recovery, quiet for S minutes: resolve now
    NOT_YET = "NOT_YET"            # a held recovery, quiet for less than S minutes
    FIRING = "FIRING"              # in its trigger state: nothing to resolve
    NOT_HELD = "NOT_HELD"          # no recovery held (or no flapping config): resolves like any incident


def applies(kind: str, config: Flapping | None) -> bool:
    return config is not None and str(kind) in FLAPPING_KINDS


def changed(state: FlapState | None, now: datetime, config: Flapping) -> FlapState:
    """``state`` with one more change at ``now``: the changes kept are those within M minutes (at most N)."""
    state = state or FlapState()
    since = now - timedelta(minutes=config.minutes)
    recent = tuple(t for t in (*state.changes, now) if t > since)[-config.transitions:]
    return state.model_copy(update={"changes": recent, "count": state.count + 1})


def opened(kind: str, now: datetime, config: Flapping | None) -> FlapState | None:
    """A new alarm incident's history: the trigger that opened it is its first change."""
    return changed(None, now, config) if config is not None and str(kind) in FLAPPING_KINDS else None


def carried(state: FlapState, earlier: tuple[datetime, ...], now: datetime, config: Flapping) -> FlapState:
    """A new incident's history joined with the changes its key's previous incident ended with (an
    alarm that recovered and fires again is one alarm changing state): within M minutes, at most N."""
    since = now - timedelta(minutes=config.minutes)
    joined = tuple(sorted({t for t in (*earlier, *state.changes) if t > since}))[-config.transitions:]
    return state.model_copy(update={"changes": joined})


def worth_carrying(state: FlapState | None, now: datetime, config: Flapping | None) -> tuple[datetime, ...]:
    """The changes a resolved incident hands its key's next one: only when it fired and recovered
    within M minutes (a flapping alarm's pattern); nothing for an incident that lasted longer."""
    if config is None or state is None:
        return ()
    since = now - timedelta(minutes=config.minutes)
    recent = tuple(t for t in state.changes if t > since)
    return recent if len(recent) >= 2 else ()


def on_change(state: FlapState | None, now: datetime, config: Flapping | None, kind: str) -> FlapReason:
    """Is the incident flapping once this change (already counted in ``state``) is in?"""
    if config is None or str(kind) not in FLAPPING_KINDS or state is None:
        return FlapReason.OFF
    if state.since is not None:
        return FlapReason.FLAPPING
    since = now - timedelta(minutes=config.minutes)
    recent = sum(1 for t in state.changes if t > since)
    if recent >= config.transitions:
        return FlapReason.STARTED
    # changes alternate, so a recovery with two recent changes came within M minutes of its trigger
    if state.last is Transition.RESOLVE and recent >= 2:
        return FlapReason.HELD
    return FlapReason.NOT_FLAPPING


def resolve_at(incident: Incident, config: Flapping | None) -> datetime | None:
    """When the sweep resolves an incident whose recovery is held, if it stays quiet (None: it is
    not waiting). Its escalation waits until then (``Incident.recovery_held``)."""
    if config is None or incident.flap is None or incident.flap.quiet_since is None or not incident.is_open:
        return None
    return incident.flap.quiet_since + timedelta(minutes=config.stable_minutes)


def stable(incident: Incident, now: datetime, config: Flapping | None) -> StableReason:
    """Has an incident whose recovery is held been quiet long enough to resolve?"""
    flap = incident.flap
    if config is None or flap is None or not incident.is_open:
        return StableReason.NOT_HELD
    due = resolve_at(incident, config)
    if due is None:
        return StableReason.FIRING if flap.last is Transition.TRIGGER else StableReason.NOT_HELD
    return StableReason.STABLE if now >= due else StableReason.NOT_YET


def quiet_label(transition: Transition) -> str:
    return "recovered" if transition is Transition.RESOLVE else "fired again"
