"""Is a heartbeat (a dead man's switch, ``heartbeats:`` in routing.yaml) alive? A pure decision.

A beat is due ``every_minutes`` after the last one and missed ``grace_minutes`` after that. A
heartbeat that never beat is watched from the moment the sweep first saw it configured
(``watching_since``): a job that never starts is as dead as one that stopped, but a newly
added heartbeat gets one interval and its grace before anyone is paged.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from chalicelib.config.routing import Heartbeat


class Reason(StrEnum):
    OK = "OK"                          # beat within the interval
    LATE = "LATE"                      # past the interval, still within the grace: nobody paged yet
    MISSED = "MISSED"                  # past interval + grace: an incident, paged
    NEVER_SEEN = "NEVER_SEEN"          # no beat yet, still within its first interval + grace
    NEVER_ARRIVED = "NEVER_ARRIVED"    # no beat since it was first watched, past interval + grace: paged


PAGED = frozenset({Reason.MISSED, Reason.NEVER_ARRIVED})


def deadline(config: Heartbeat, since: datetime) -> datetime:
    """When a heartbeat whose last beat (or first watch) was ``since`` is missed."""
    return since + timedelta(minutes=config.every_minutes + config.grace_minutes)


def heartbeat_state(config: Heartbeat, last_beat: datetime | None, now: datetime,
                    watching_since: datetime | None = None) -> Reason:
    if last_beat is None:
        if watching_since is None or now < deadline(config, watching_since):
            return Reason.NEVER_SEEN
        return Reason.NEVER_ARRIVED
    if now < last_beat + timedelta(minutes=config.every_minutes):
        return Reason.OK
    return Reason.LATE if now < deadline(config, last_beat) else Reason.MISSED


def quiet_until(config: Heartbeat, last_beat: datetime | None, watching_since: datetime | None,
                read_at: datetime) -> datetime:
    """Until when a heartbeat's document as read at ``read_at`` still decides like a fresh read:
    beats only ever move later, so one that was OK stays OK until its interval ends, and one not
    seen yet stays, at worst, unseen until its deadline or one interval after the read (a beat just
    after the read is late no sooner). Any other state: not past ``read_at`` (read it every time)."""
    every = timedelta(minutes=config.every_minutes)
    state = heartbeat_state(config, last_beat, read_at, watching_since)
    if state is Reason.OK and last_beat is not None:
        return last_beat + every
    if state is Reason.NEVER_SEEN and watching_since is not None:
        return min(deadline(config, watching_since), read_at + every)
    return read_at
