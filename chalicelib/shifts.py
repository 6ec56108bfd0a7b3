"""Shift-change notices (issue 13 §3): when a role changes hands (its rotation, an override starting
or ending), whoever now holds it hears so on their own channels, with the incidents still open for
the role. The scheduled sweep runs ``ShiftNotices.sweep`` after escalation and heartbeats.

Each handover is announced once: one small document, ``oncall:shift-notices`` (both stores:
``get_doc``/``put_doc``), keeps per role the last handover noticed. A notice is claimed in it (a
conditional write, with a lease) before it is sent, and recorded as sent or failed after, so a
concurrent or redelivered sweep finds it claimed or done and sends nothing. A worker that dies
between sending and recording leaves a claim whose lease runs out; the next sweep sends it again
(as pages are retried), at most ``MAX_ATTEMPTS`` times and never later than ``MAX_LATE``.

The first sweep that sees a role only remembers its holders. PagerDuty channels are skipped: a
notice is no alert (a person reached only by PagerDuty gets it on their fallback channel, if any).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from chalicelib.decisions import shifts
from chalicelib.decisions.shifts import Decision, Handover, Marker, Reason
from chalicelib.errors import ChannelError
from chalicelib.models import PageKind, Severity
from chalicelib.notify.paging import PageRequest
from chalicelib.pipeline import Pipeline
from chalicelib.store.retry import retried

log = logging.getLogger("responder")

DOC_KEY = "oncall:shift-notices"
_REMEMBERED = (Reason.FIRST_LOOK, Reason.NOBODY_NEW, Reason.TOO_LATE)
_REPORTED = (Reason.DUE, Reason.RETRY, Reason.IN_PROGRESS, Reason.TOO_LATE)


class ShiftNotices:
    def __init__(self, pipeline: Pipeline) -> None:
        # pipeline.config: routing.yaml with the stored overrides (the sweep has just refreshed it)
        self.pipeline, self.store, self.routing = pipeline, pipeline.store, pipeline.config.routing

    def sweep(self, now: datetime) -> dict[str, str]:
        """Decide every role, claim the notices due, send them, record how that went:
        {role: reason} of the roles with a notice due, retried, in progress elsewhere or too late."""
        claimed: dict[str, Handover] = {}
        reasons: dict[str, Reason] = {}

        def claim() -> None:
            doc, version = self.store.get_doc(DOC_KEY)
            markers = _markers(doc)
            decisions = {name: shifts.handover_due(role, self.routing.zone, markers.get(name), now)
                         for name, role in sorted(self.routing.roles.items())}
            reasons.clear()
            reasons.update({name: d.reason for name, d in decisions.items()})
            claimed.clear()
            changed = False
            for name, decision in decisions.items():
                marker = _next_marker(decision, markers.get(name), now)
                if marker is not None:
                    markers[name], changed = marker, True
                if decision.reason in (Reason.DUE, Reason.RETRY) and decision.handover is not None:
                    claimed[name] = decision.handover
            if changed:
                self.store.put_doc(DOC_KEY, _doc(markers), version)
        retried(claim, what="the shift-change notices")
        if claimed:
            self._send_all(claimed, now)
        return {name: reason.value for name, reason in reasons.items() if reason in _REPORTED}

    def _send_all(self, claimed: dict[str, Handover], now: datetime) -> None:
        incidents = self.store.list()  # one read for every role changing hands in this minute
        outcomes: dict[str, bool] = {}
        for role, handover in claimed.items():
            text = shifts.notice_text(role, handover, shifts.open_for_role(incidents, role, self.routing),
                                      self.routing.zone)
            outcomes[role] = all([self._send(role, person, text) for person in handover.incoming])

        def record() -> None:
            doc, version = self.store.get_doc(DOC_KEY)
            markers = _markers(doc)
            for role, handover in claimed.items():
                mine = markers.get(role)
                if mine is None or mine.at != handover.at or mine.status != "sending":
                    continue  # a later handover, or another sweep took it over after our lease ran out
                markers[role] = mine.model_copy(update={"status": "sent" if outcomes[role] else "failed",
                                                        "lease_until": None})
            self.store.put_doc(DOC_KEY, _doc(markers), version)
        retried(record, what="the shift-change notices")

    def _send(self, role: str, person: str, text: str) -> bool:
        """The notice on each of ``person``'s channels that is not PagerDuty; True if all took it."""
        sent = True
        for channel in shifts.notice_channels(self.routing, person):
            request = PageRequest(role=role, person=person, channel=channel, kind=PageKind.UPDATE, text=text,
                                  incident_id=f"shift:{role}", severity=Severity.SEV4, source="oncall")
            try:
                self.pipeline.pager.notify(request)
            except ChannelError as exc:
                sent = False
                log.warning("shift notice failed", extra={"outcome": {"role": role, "person": person,
                                                                      "channel": channel, "error": str(exc)}})
        return sent


def _next_marker(decision: Decision, current: Marker | None, now: datetime) -> Marker | None:
    """The marker to store for ``decision`` (None: keep the one there)."""
    handover = decision.handover
    if handover is None:
        return None
    if decision.reason in _REMEMBERED:
        return Marker(at=handover.at, people=handover.people, status="seen")
    attempts = (current.attempts if current is not None and decision.reason is Reason.RETRY else 0) + 1
    return Marker(at=handover.at, people=handover.people, incoming=handover.incoming, status="sending",
                  attempts=attempts, lease_until=now + shifts.SEND_LEASE)


def _markers(doc: dict[str, Any] | None) -> dict[str, Marker]:
    return {name: Marker.model_validate(m) for name, m in (doc or {}).get("roles", {}).items()}


def _doc(markers: dict[str, Marker]) -> dict[str, Any]:
    return {"roles": {name: m.model_dump(mode="json") for name, m in sorted(markers.items())}}
