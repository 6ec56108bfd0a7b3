"""Silences people make without a deploy (issue 14 §1): ``POST /silences``, ``silence add``.

Kept like the on-call overrides (``chalicelib.overrides``): in the store's small versioned
document ``oncall:overrides`` (both stores: ``get_doc``/``put_doc``, conditional writes, re-read
on a lost race), under their own key, ``silences``. One document because every event that may
page reads it (``Pipeline.refresh_schedule``): one read gives the overrides and the silences, so a
new trigger's first page costs no extra round trip. Each writer keeps the other's part as it is.

A silence is validated when made (matchers on known fields, times with a UTC offset, ending after
it starts, a reason). Ending one keeps it, marked with who ended it and when; an incident it
silenced that is still open is paged by the next sweep. Ended and past ones are dropped after
``KEEP_DAYS``. The decision itself (does a silence match a signal?) is ``decisions/silences.py``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from chalicelib.config.routing import check_matchers
from chalicelib.decisions.incidents import IncidentService
from chalicelib.decisions.silences import Silence
from chalicelib.errors import InvalidRequest
from chalicelib.models import Incident, IncidentStatus, TimelineEntry
from chalicelib.overrides import DOC_KEY, _time, remember
from chalicelib.store import IncidentStore
from chalicelib.store.retry import retried

KEEP_DAYS = 90  # a silenced Sev1 is listed in the monthly report: the silence that did it stays readable
MAX_KEPT = 200  # the shared document stays well under DynamoDB's 400 KB item limit
MAX_REASON = 500


class UnknownSilence(InvalidRequest):
    """No silence with that id (404 on the API)."""


class SilenceService:
    def __init__(self, store: IncidentStore, clock: Callable[[], datetime],
                 incidents: IncidentService | None = None) -> None:
        self.store, self.clock, self.incidents = store, clock, incidents

    def listing(self, include_ended: bool = False) -> list[Silence]:
        now = self.clock()
        return [s for s in stored(self.store) if include_ended or s.until > now]

    def add(self, *, matchers: object, starts_at: object, ends_at: object, reason: object, by: str,
            include_sev1: object = False) -> Silence:
        try:
            kept_matchers = check_matchers(matchers)
        except ValueError as exc:
            field = str(exc).split(":", 1)[0]
            raise InvalidRequest(field, str(exc).split(": ", 1)[-1]) from None
        begins, ends = _time(starts_at, "starts_at"), _time(ends_at, "ends_at")
        if ends <= begins:
            raise InvalidRequest("ends_at", "must be after starts_at")
        now = self.clock()
        if ends <= now:
            raise InvalidRequest("ends_at", "must be in the future")
        if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
            raise InvalidRequest("reason", f"must be a non-empty string of at most {MAX_REASON} characters")
        if not isinstance(include_sev1, bool):
            raise InvalidRequest("include_sev1", "must be true or false")
        added = Silence(id=f"sil-{secrets.token_hex(4)}", matchers=kept_matchers, starts_at=begins, ends_at=ends,
                        reason=reason.strip(), by=by, created_at=now, include_sev1=include_sev1)

        def change(kept: list[Silence]) -> list[Silence]:
            if len(kept) >= MAX_KEPT:
                raise InvalidRequest("body", f"at most {MAX_KEPT} silences are kept; end some first")
            return [*kept, added]
        self._update(change, now)
        return added

    def end(self, silence_id: str, by: str) -> tuple[Silence, list[str]]:
        """End a silence now; the open incidents it silenced are paged by the next sweep (their ids)."""
        now = self.clock()
        found: list[Silence] = []

        def change(kept: list[Silence]) -> list[Silence]:
            match = next((s for s in kept if s.id == silence_id), None)
            if match is None:
                raise UnknownSilence("id", f"no silence {silence_id}")
            ended = match if match.ended_at else match.model_copy(update={"ended_by": by, "ended_at": now})
            found[:] = [ended]
            return [ended if s.id == silence_id else s for s in kept]
        self._update(change, now)
        return found[0], self._release(found[0], by, now)

    def _release(self, silence: Silence, by: str, now: datetime) -> list[str]:
        """Open incidents this silence holds back are due now: the sweep pages them (an admin action,
        rare: it may scan the incidents)."""
        if self.incidents is None:
            return []
        label = f"silence {silence.id} "
        released = []
        for incident in self.store.list():
            if (incident.status is IncidentStatus.SILENCED and (incident.silenced_by or "").startswith(label)
                    and incident.silenced_until is not None and incident.silenced_until > now):
                def ended(current: Incident) -> Incident:
                    if current.status is not IncidentStatus.SILENCED:
                        return current
                    return current.noted(TimelineEntry(at=now, by=by, what=f"silence {silence.id} ended by {by}"),
                                         silenced_until=now)
                self.incidents.update(incident.id, ended)
                released.append(incident.id)
        return released

    def _update(self, change: Callable[[list[Silence]], list[Silence]], now: datetime) -> None:
        def attempt() -> None:
            doc, version = self.store.get_doc(DOC_KEY)
            kept = [s for s in parsed(doc) if s.until > now - timedelta(days=KEEP_DAYS)]
            written = {**(doc or {}), "silences": [s.model_dump(mode="json") for s in change(kept)]}
            self.store.put_doc(DOC_KEY, written, version)
            remember(self.store, now, written)  # this process's next event sees it at once
        retried(attempt, what="the silences")


def stored(store: IncidentStore) -> list[Silence]:
    return parsed(store.get_doc(DOC_KEY)[0])


def parsed(doc: dict[str, Any] | None) -> list[Silence]:
    return [Silence.model_validate(s) for s in (doc or {}).get("silences", [])]
