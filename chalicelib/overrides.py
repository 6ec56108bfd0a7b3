"""Schedule overrides people make without a deploy (issue 13 §3): ``POST /oncall/overrides``,
``python -m chalicelib oncall override``.

They are kept in the store as one small versioned document, ``oncall:overrides`` (both stores:
``get_doc``/``put_doc``, conditional writes, re-read on a lost race), validated as routing.yaml's
own (a known role and person, times with a UTC offset, ending after they start) and joined to the
role's YAML overrides by ``with_stored``, which every paging entry point applies
(``Pipeline.refresh_schedule``, read at most once a minute per process: ``cached``):
``holders()`` then sees them like any other override. An override adds someone for a stretch,
so it can never open a gap. Removing one keeps it, marked with who
removed it; ended and removed ones are dropped after ``KEEP_DAYS``.
"""

from __future__ import annotations

import secrets
import weakref
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from chalicelib.config import ResponderConfig
from chalicelib.config.routing import Override
from chalicelib.errors import InvalidRequest
from chalicelib.models import Frozen
from chalicelib.store import IncidentStore
from chalicelib.store.retry import retried

DOC_KEY = "oncall:overrides"
KEEP_DAYS = 30
MAX_KEPT = 500  # the document stays well under DynamoDB's 400 KB item limit


class StoredOverride(Frozen):
    id: str
    role: str
    person: str
    start: datetime
    end: datetime
    by: str
    created_at: datetime
    removed_by: str | None = None
    removed_at: datetime | None = None


class UnknownOverride(InvalidRequest):
    """No override with that id (404 on the API)."""


class OverrideService:
    def __init__(self, store: IncidentStore, config: ResponderConfig, clock: Callable[[], datetime]) -> None:
        self.store, self.routing, self.clock = store, config.routing, clock

    def listing(self, include_removed: bool = False) -> list[StoredOverride]:
        return [o for o in stored(self.store) if include_removed or o.removed_at is None]

    def add(self, *, role: object, person: object, start: object, end: object, by: str) -> StoredOverride:
        if not isinstance(role, str) or role not in self.routing.roles:
            raise InvalidRequest("role", f"must name a role of routing.yaml ({', '.join(sorted(self.routing.roles))})")
        if not isinstance(person, str) or person not in self.routing.people:
            raise InvalidRequest("person", "must name a person of routing.yaml")
        begins, ends = _time(start, "from"), _time(end, "to")
        if ends <= begins:
            raise InvalidRequest("to", "must be after from")
        now = self.clock()
        added = StoredOverride(id=f"ovr-{secrets.token_hex(4)}", role=role, person=person, start=begins, end=ends,
                               by=by, created_at=now)

        def change(kept: list[StoredOverride]) -> list[StoredOverride]:
            if len(kept) >= MAX_KEPT:
                raise InvalidRequest("body", f"at most {MAX_KEPT} overrides are kept; remove some first")
            return [*kept, added]
        self._update(change, now)
        return added

    def remove(self, override_id: str, by: str) -> StoredOverride:
        now = self.clock()
        found: list[StoredOverride] = []

        def change(kept: list[StoredOverride]) -> list[StoredOverride]:
            match = next((o for o in kept if o.id == override_id), None)
            if match is None:
                raise UnknownOverride("id", f"no override {override_id}")
            removed = match if match.removed_at else match.model_copy(update={"removed_by": by, "removed_at": now})
            found[:] = [removed]
            return [removed if o.id == override_id else o for o in kept]
        self._update(change, now)
        return found[0]

    def _update(self, change: Callable[[list[StoredOverride]], list[StoredOverride]], now: datetime) -> None:
        def attempt() -> None:
            doc, version = self.store.get_doc(DOC_KEY)
            kept = [o for o in _parsed(doc) if (o.removed_at or o.end) > now - timedelta(days=KEEP_DAYS)]
            # the document also holds the silences (chalicelib.silences): one read for both on every event
            written = {**(doc or {}), "overrides": [o.model_dump(mode="json") for o in change(kept)]}
            self.store.put_doc(DOC_KEY, written, version)
            remember(self.store, now, written)
        retried(attempt, what="the on-call overrides")


def stored(store: IncidentStore) -> list[StoredOverride]:
    return _parsed(store.get_doc(DOC_KEY)[0])


# Per store: when the document (overrides and silences) was read, by the clock of the caller,
# and what it held. A process rereads it after ``CACHE_SECONDS`` (a change made on another Lambda
# holds here within that), and its own changes replace it at once (``remember``).
CACHE_SECONDS = 60
_cached: weakref.WeakKeyDictionary[Any, tuple[datetime, dict[str, Any] | None]] = weakref.WeakKeyDictionary()


def cached_doc(store: IncidentStore, now: datetime) -> dict[str, Any] | None:
    """The overrides-and-silences document, read at most once per ``CACHE_SECONDS`` of ``now`` per
    store: the event path's round trips (a new trigger pages after three)."""
    held = _cached.get(store)
    if held is not None and held[0] <= now < held[0] + timedelta(seconds=CACHE_SECONDS):
        return held[1]
    doc, _ = store.get_doc(DOC_KEY)
    remember(store, now, doc)
    return doc


def remember(store: IncidentStore, now: datetime, doc: dict[str, Any] | None) -> None:
    """What this process just wrote (or read) is what its next event sees."""
    _cached[store] = (now, doc)


def cached(store: IncidentStore, now: datetime) -> list[StoredOverride]:
    return _parsed(cached_doc(store, now))


def parsed(doc: dict[str, Any] | None) -> list[StoredOverride]:
    """The overrides of the document as read (``Pipeline.refresh_schedule`` reads it once for both parts)."""
    return _parsed(doc)


def with_stored(config: ResponderConfig, overrides: list[StoredOverride]) -> ResponderConfig:
    """``config`` whose roles also hold the stored overrides that are not removed (and still name a
    role and person of it: routing.yaml may have changed since)."""
    routing = config.routing
    extra: dict[str, list[Override]] = {}
    for o in overrides:
        if o.removed_at is None and o.role in routing.roles and o.person in routing.people:
            extra.setdefault(o.role, []).append(Override(person=o.person, start=o.start, end=o.end))
    if not extra:
        return config
    roles = {name: role.model_copy(update={"overrides": (*role.overrides, *extra.get(name, ()))})
             for name, role in routing.roles.items()}
    return config.model_copy(update={"routing": routing.model_copy(update={"roles": roles})})


def _parsed(doc: dict[str, Any] | None) -> list[StoredOverride]:
    return [StoredOverride.model_validate(o) for o in (doc or {}).get("overrides", [])]


def _time(value: object, field: str) -> datetime:
    parsed: datetime | None = value if isinstance(value, datetime) else None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise InvalidRequest(field, "must be an ISO 8601 time with a UTC offset")
    return parsed
