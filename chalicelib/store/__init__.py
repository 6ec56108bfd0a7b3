"""Where incidents live: one small interface, two implementations.

- ``SqliteStore`` (``sqlite:///path``): the local default, an embedded file that is safe
  across processes (transactions take SQLite's write lock, ``BEGIN IMMEDIATE``).
- ``DynamoStore`` (``dynamodb://table``): AWS, one table, conditional writes.

The interface is built from the three atomic moves the pipeline needs, so two
concurrent Lambdas can never open two incidents for one key or process one delivery twice:

``claim_delivery``   take a lease on a delivery id (SNS MessageId, EventBridge id, Sentry
                     Request-ID). The answer is ``Claim.CLAIMED``, ``Claim.DONE`` (processed
                     before: a duplicate) or ``Claim.IN_PROGRESS`` (another worker holds an
                     unexpired lease: retry later; if that worker died, its lease expires).
``record_repeat``    the hot path: claim-and-complete a delivery and count it as a repeat of an
                     open incident (one SQLite transaction; on DynamoDB a guarded counter update,
                     then the delivery's conditional Put), without reading or rewriting the
                     incident; ``Repeat`` says what happened.
``create``           open an incident only if no open incident holds its key; the key's
                     pointer and the incident are written in one transaction.
``save``             optimistic concurrency: write only if the stored version is the one
                     read; a resolved incident releases its key in the same transaction.
``timeline``         the timeline entries stored on their own, a page by sequence number;
                     the incident record itself holds a bounded window (``store.bounds``)
``due``              the ids of incidents whose ``next_action_at`` has come, oldest first, for
                     the scheduled sweep (an index on that time, so the sweep never scans; ids
                     only, so the sweep reads no incident and hands the ids on in batches).
``get_doc/put_doc``  small versioned documents shared across incidents (the playbook
                     executor's per-target action log, for its rate limit and breaker).

Every write is bounded whatever the events: ``bounds.bounded`` trims the incident record and
each timeline entry is stored whole once on its own, in the same transaction as the write that
added it (SQLite) or moved it out of the record's window (DynamoDB); ``full_timeline`` reads both.

The same contract tests (``tests/test_store_contract.py``) run against both.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

from chalicelib.models import Incident, TimelineEntry
from chalicelib.store import bounds


class Claim(StrEnum):
    CLAIMED = "claimed"
    DONE = "done"
    IN_PROGRESS = "in_progress"


class Repeat(StrEnum):
    COUNTED = "counted"              # delivery recorded as done and counted on the incident
    DUPLICATE = "duplicate"          # this delivery was processed before: nothing written
    IN_PROGRESS = "in_progress"      # another worker holds its lease: nothing written
    NOT_COUNTABLE = "not_countable"  # the incident is resolved, or a repeat needs the full decision


class DueIncident(NamedTuple):
    """An incident the sweep must look at: its id and the due time the index holds (epoch seconds)."""

    incident_id: str
    due_at: float


class IncidentStore(Protocol):
    def claim_delivery(self, delivery_id: str, now: datetime, lease_seconds: int) -> Claim:
        """Lease ``delivery_id`` unless it is done or leased by someone else."""

    def complete_delivery(self, delivery_id: str, outcome: dict[str, Any], now: datetime,
                          keep_days: int) -> None:
        """Mark the delivery done and keep its outcome (and raw payload, if any)."""

    def release_delivery(self, delivery_id: str) -> None:
        """Drop an unfinished lease so a retry can process the delivery."""

    def get_delivery(self, delivery_id: str) -> dict[str, Any] | None: ...

    def record_repeat(self, delivery_id: str, incident_id: str, severity: int, outcome: dict[str, Any],
                      now: datetime, keep_days: int) -> Repeat:
        """Complete ``delivery_id`` with ``outcome`` and count one repeat (``last_seen`` = ``now``) on
        ``incident_id``, in one atomic write, if the delivery is new and the incident counts repeats
        of ``severity`` (``bounds.repeat_floor``); else write nothing and say why."""

    def create(self, incident: Incident) -> Incident | None:
        """Store a new open incident; None if its key already has an open incident."""

    def save(self, incident: Incident) -> Incident:
        """Write ``incident`` if the stored version is ``incident.version``; return it at version + 1.

        Raises ``ConflictError`` when someone else wrote first.
        """

    def get(self, incident_id: str) -> Incident | None: ...

    def timeline(self, incident_id: str, start: int = 0, limit: int = 100) -> builtins.list[TimelineEntry]:
        """Stored timeline entries with sequence numbers in ``[start, start + limit)`` (limit ≤ 100), oldest first."""

    def get_open(self, key: str) -> Incident | None: ...

    def list(self) -> list[Incident]: ...

    def due(self, now: datetime) -> builtins.list[DueIncident]:
        """Incidents whose ``next_action_at`` has come (escalation steps, retries, leases), by due time."""

    def get_doc(self, key: str) -> tuple[dict[str, Any] | None, int]:
        """A small shared document (the playbook action log of one target) and its version (0: none)."""

    def put_doc(self, key: str, doc: dict[str, Any], expected_version: int) -> None:
        """Write ``doc`` if its stored version is ``expected_version``; else ``ConflictError``."""


TIMELINE_PAGE = 100


def full_timeline(store: IncidentStore, incident: Incident) -> builtins.list[TimelineEntry]:
    """Every entry of ``incident``'s timeline, oldest first (for the API detail and the
    post-mortem: never the event path): the record's window, with the entries omitted from it and
    those it cuts short read from their own records (``bounds.leaving_window``). Whatever has no
    record (an incident stored before entries had records of their own) answers from the window."""
    seqs = {bounds.window_seq(incident, i): e for i, e in enumerate(incident.timeline)}
    omitted = range(bounds.TIMELINE_HEAD, bounds.TIMELINE_HEAD + incident.timeline_omitted)
    cut = [seq for seq, e in seqs.items() if len(e.what) >= bounds.WINDOW_TEXT_MAX and seq < incident.timeline_stored]
    found: dict[int, TimelineEntry] = {}
    for start, stop in [*((s, min(s + TIMELINE_PAGE, omitted.stop)) for s in range(omitted.start, omitted.stop,
                                                                                    TIMELINE_PAGE)),
                        *((seq, seq + 1) for seq in cut)]:
        page = store.timeline(incident.id, start, stop - start)
        if len(page) == stop - start:  # else some have no record: their numbers are unknown, the window answers
            found |= dict(zip(range(start, stop), page, strict=True))
    return with_repeats_line(incident, [found.get(seq) or seqs[seq] for seq in sorted({*seqs, *found})])


def repeats_line(incident: Incident) -> TimelineEntry | None:
    """The one timeline line for an incident's repeated triggers (they are counted, not itemised)."""
    if incident.count < 2:
        return None
    span = f"#2–#{incident.count}" if incident.count > 2 else "#2"
    return TimelineEntry(at=incident.last_seen,
                         what=f"repeat {span}: counted (first seen {incident.opened_at:%Y-%m-%d %H:%M:%S}, "
                              f"last seen {incident.last_seen:%Y-%m-%d %H:%M:%S}; each delivery has its record)")


def with_repeats_line(incident: Incident, entries: builtins.list[TimelineEntry]) -> builtins.list[TimelineEntry]:
    """``entries`` with ``repeats_line`` in time order (after the entries of the same moment)."""
    line = repeats_line(incident)
    if line is None:
        return entries
    at = next((i for i, e in enumerate(entries) if e.at > line.at), len(entries))
    return [*entries[:at], line, *entries[at:]]


def with_full_timeline(store: IncidentStore, incident: Incident) -> Incident:
    """``incident`` holding its whole timeline, for readers that show or summarise it."""
    entries = tuple(full_timeline(store, incident))
    return incident.model_copy(update={"timeline": entries, "timeline_omitted": 0, "timeline_stored": len(entries)})


def open_store(url: str, *, dynamodb_client: Any = None, due_shards: int | None = None) -> IncidentStore:
    """Build the store named by ``RESPONDER_STORE``: ``sqlite:///path`` or ``dynamodb://table``."""
    from chalicelib.errors import StoreError

    if url.startswith("sqlite://"):
        from chalicelib.store.sqlite import SqliteStore

        return SqliteStore(url.removeprefix("sqlite://").removeprefix("/") or ":memory:")
    if url.startswith("dynamodb://"):
        from chalicelib.store.dynamodb import DynamoStore

        table = url.removeprefix("dynamodb://")
        if not table:
            raise StoreError("RESPONDER_STORE: dynamodb:// needs a table name")
        if due_shards:
            return DynamoStore(table, client=dynamodb_client, due_shards=due_shards)
        return DynamoStore(table, client=dynamodb_client)
    raise StoreError("RESPONDER_STORE: expected sqlite:///path or dynamodb://table")
