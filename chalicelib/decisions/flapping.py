"""Flapping (issue 14 §3): an alarm that changes state N times in M minutes is one problem.

``routing.yaml``'s ``flapping:`` gives N (``transitions``), M (``minutes``) and S
(``stable_minutes``). An alarm incident counts the state changes that page or resolve: the trigger
that opened it, a recovery and a trigger after a recovery (``INSUFFICIENT_DATA`` is noted, as
before, and changes nothing). Once N fall within M minutes the incident is flapping: it stays one incident
(its first page was its only page), a recovery no longer resolves it but starts a quiet period,
the next trigger ends that quiet period (nobody paged), and the sweep resolves it once it has been
quiet for S minutes. Each change is on the timeline with its count.

A repeat counted on the hot path (the same state again) is not a change. A flapping incident that
is waiting to be resolved takes the full path for every trigger (``bounds.repeat_floor``), so the
trigger that ends its quiet period is always seen.
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
    STARTED = "STARTED"            # this change makes N within M: flapping from now
    FLAPPING = "FLAPPING"          # flapping already: counted, nobody paged, a recovery is held


class StableReason(StrEnum):
    STABLE = "STABLE"              # flapping, recovered and quiet for S minutes: resolve now
    NOT_YET = "NOT_YET"            # recovered, quiet for less than S minutes
    FIRING = "FIRING"              # flapping and in its trigger state: nothing to resolve
    NOT_FLAPPING = "NOT_FLAPPING"  # resolves like any incident


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
    if sum(1 for t in state.changes if t > since) >= config.transitions:
        return FlapReason.STARTED
    return FlapReason.NOT_FLAPPING


def resolve_at(incident: Incident, config: Flapping | None) -> datetime | None:
    """When the sweep resolves a flapping incident that stays quiet (None: it is not waiting)."""
    flap = incident.flap
    if config is None or flap is None or flap.quiet_since is None or not incident.is_open:
        return None
    return flap.quiet_since + timedelta(minutes=config.stable_minutes)


def stable(incident: Incident, now: datetime, config: Flapping | None) -> StableReason:
    """Has a flapping incident been quiet long enough to resolve?"""
    flap = incident.flap
    if config is None or flap is None or flap.since is None or not incident.is_open:
        return StableReason.NOT_FLAPPING
    due = resolve_at(incident, config)
    if due is None:
        return StableReason.FIRING
    return StableReason.STABLE if now >= due else StableReason.NOT_YET


def quiet_label(transition: Transition) -> str:
    return "recovered" if transition is Transition.RESOLVE else "fired again"
