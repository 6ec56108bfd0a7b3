"""The embedded store: one SQLite file, safe across threads and processes.

Every write runs in ``BEGIN IMMEDIATE``, which takes SQLite's write lock before the
first read, so a read-check-write sequence cannot interleave with another process's.
Threads of one process share one connection behind a lock. WAL mode lets readers
(``incidents --json``) run while a writer holds the lock.

The ``incidents`` row holds the bounded record (``chalicelib.store.bounds``); every
timeline entry is also a row of ``timeline`` (incident, sequence number), inserted in the
same transaction as the incident write that added it.

A repeat past the timeline's repeat entries (``record_repeat``) touches three columns of the
incident row (``repeats``, ``repeat_seen``, ``version``), never its ``doc``: every read adds
them in, and the next full write folds them into the doc. It is one statement, an INSERT into the
``repeat_requests`` view whose trigger does the work (a single write statement takes the write
lock first, as ``BEGIN IMMEDIATE`` does; its ``RAISE(ABORT)`` undoes it all). Durability is
unchanged: WAL with ``synchronous=NORMAL`` (a commit survives a process crash; a power loss may
drop the last commits, never corrupt the file). Expired delivery records are purged
every ``PURGE_EVERY`` completed deliveries, so the file stays the size of the dedupe window.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from chalicelib.errors import ConflictError, StoreError
from chalicelib.models import Incident, IncidentStatus, TimelineEntry
from chalicelib.store import Claim, DueIncident, Repeat, bounds

PURGE_EVERY = 1_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY, status TEXT NOT NULL, lease_until REAL, expires_at REAL, outcome TEXT
);
CREATE TABLE IF NOT EXISTS incidents (
    id TEXT PRIMARY KEY, key TEXT NOT NULL, status TEXT NOT NULL, opened_at TEXT NOT NULL,
    version INTEGER NOT NULL, doc TEXT NOT NULL, due_at REAL,
    repeats INTEGER NOT NULL DEFAULT 0, repeat_seen TEXT, repeat_sev INTEGER
);
CREATE INDEX IF NOT EXISTS incidents_opened ON incidents (opened_at);
CREATE INDEX IF NOT EXISTS incidents_due ON incidents (due_at) WHERE due_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS open_keys (key TEXT PRIMARY KEY, incident_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS timeline (
    incident_id TEXT NOT NULL, seq INTEGER NOT NULL, entry TEXT NOT NULL, PRIMARY KEY (incident_id, seq)
);
CREATE TABLE IF NOT EXISTS docs (key TEXT PRIMARY KEY, version INTEGER NOT NULL, body TEXT NOT NULL);
CREATE VIEW IF NOT EXISTS repeat_requests AS SELECT NULL AS delivery_id, NULL AS incident_id, NULL AS severity,
    NULL AS outcome, NULL AS ts, NULL AS expires_at, NULL AS seen;
CREATE TRIGGER IF NOT EXISTS repeat_counted_v1 INSTEAD OF INSERT ON repeat_requests BEGIN
    SELECT RAISE(ABORT, 'in_progress') FROM deliveries WHERE id = NEW.delivery_id AND status = 'leased'
        AND NOT coalesce(lease_until <= NEW.ts, 0);
    SELECT RAISE(ABORT, 'duplicate') FROM deliveries WHERE id = NEW.delivery_id AND status <> 'leased'
        AND NOT (status = 'done' AND coalesce(expires_at <= NEW.ts, 0));
    SELECT RAISE(ABORT, 'not_countable') WHERE NOT EXISTS (SELECT 1 FROM incidents WHERE id = NEW.incident_id
        AND repeat_sev IS NOT NULL AND repeat_sev <= NEW.severity);
    INSERT OR REPLACE INTO deliveries (id, status, lease_until, expires_at, outcome)
        VALUES (NEW.delivery_id, 'done', NULL, NEW.expires_at, NEW.outcome);
    UPDATE incidents SET repeats = repeats + 1, version = version + 1,
        repeat_seen = max(coalesce(repeat_seen, ''), NEW.seen) WHERE id = NEW.incident_id;
END;
"""
# Columns added since the first layout: a file written before them gets them on open.
_ADDED_COLUMNS = {"repeats": "INTEGER NOT NULL DEFAULT 0", "repeat_seen": "TEXT", "repeat_sev": "INTEGER"}
# What every read of incidents takes: the doc and the counters record_repeat keeps beside it.
_INCIDENT_BY_ID = "SELECT doc, version, repeats, repeat_seen FROM incidents WHERE id = ?"
_INCIDENTS = "SELECT doc, version, repeats, repeat_seen FROM incidents ORDER BY opened_at, id"
_REPEAT = "INSERT INTO repeat_requests VALUES (?, ?, ?, ?, ?, ?, ?)"
_REFUSED = {"in_progress": Repeat.IN_PROGRESS, "duplicate": Repeat.DUPLICATE, "not_countable": Repeat.NOT_COUNTABLE}
# One encoder, built once: json.dumps with an option builds a new one per call.
_encode = json.JSONEncoder(default=str).encode


class SqliteStore:
    def __init__(self, path: str | Path = ":memory:", *, busy_timeout_s: float = 30.0) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None,
                                         check_same_thread=False)
            if self.path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
            have = {row[1] for row in self._conn.execute("PRAGMA table_info(incidents)")}
            for name, decl in _ADDED_COLUMNS.items():
                if name not in have:
                    self._conn.execute(f"ALTER TABLE incidents ADD COLUMN {name} {decl}")
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite store {self.path!r} cannot be opened: {exc}") from exc
        self._lock = threading.RLock()
        self._completed = 0

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"sqlite store busy: {exc}") from exc
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    # --- deliveries -------------------------------------------------------------------

    def claim_delivery(self, delivery_id: str, now: datetime, lease_seconds: int) -> Claim:
        ts = now.timestamp()
        # One statement, so one atomic write: a new id, an abandoned lease or a forgotten
        # record is (re)leased; anything else is left alone and reported.
        with self._lock:
            claimed = self._conn.execute(
                "INSERT INTO deliveries (id, status, lease_until) VALUES (?, 'leased', ?) "
                "ON CONFLICT(id) DO UPDATE SET status = 'leased', lease_until = excluded.lease_until, "
                "expires_at = NULL, outcome = NULL "
                "WHERE (deliveries.status = 'leased' AND deliveries.lease_until <= ?) "
                "OR (deliveries.status = 'done' AND deliveries.expires_at <= ?)",
                (delivery_id, ts + lease_seconds, ts, ts)).rowcount
            if claimed == 1:
                return Claim.CLAIMED
            row = self._conn.execute("SELECT status FROM deliveries WHERE id = ?", (delivery_id,)).fetchone()
        return Claim.IN_PROGRESS if row and row[0] == "leased" else Claim.DONE

    def complete_delivery(self, delivery_id: str, outcome: dict[str, Any], now: datetime,
                          keep_days: int) -> None:
        expires = (now + timedelta(days=keep_days)).timestamp()
        with self._lock:  # a single statement commits atomically on its own
            self._conn.execute("INSERT OR REPLACE INTO deliveries (id, status, expires_at, outcome) "
                               "VALUES (?, 'done', ?, ?)", (delivery_id, expires, _encode(outcome)))
            self._count_completed(now)

    def record_repeat(self, delivery_id: str, incident_id: str, severity: int, outcome: dict[str, Any],
                      now: datetime, keep_days: int) -> Repeat:
        # One INSERT into the ``repeat_requests`` view, whose trigger applies the claim's rule (new,
        # abandoned lease, or forgotten record), completes the delivery and counts the repeat: one
        # statement is one write transaction (SQLite takes the write lock before the trigger's
        # first read, like BEGIN IMMEDIATE), and a RAISE(ABORT) undoes all of it, so a refused
        # repeat leaves the delivery unclaimed for the full path. One round trip instead of four.
        ts = now.timestamp()
        with self._lock:
            try:
                self._conn.execute(_REPEAT, (delivery_id, incident_id, severity, _encode(outcome), ts,
                                             ts + keep_days * 86400, now.isoformat()))
            except sqlite3.IntegrityError as exc:
                return _REFUSED.get(str(exc), Repeat.NOT_COUNTABLE)
            except sqlite3.OperationalError as exc:
                raise StoreError(f"sqlite store busy: {exc}") from exc
            self._count_completed(now)
        return Repeat.COUNTED

    def _count_completed(self, now: datetime) -> None:
        self._completed += 1
        if self._completed % PURGE_EVERY == 0:
            self.purge_deliveries(now)

    def purge_deliveries(self, now: datetime) -> int:
        """Delete the delivery records past their dedupe window (and leases long abandoned)."""
        ts = now.timestamp()
        with self._lock:
            return self._conn.execute(
                "DELETE FROM deliveries WHERE (status = 'done' AND expires_at <= ?) "
                "OR (status = 'leased' AND lease_until <= ?)", (ts, ts - 86400)).rowcount

    def release_delivery(self, delivery_id: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM deliveries WHERE id = ? AND status = 'leased'", (delivery_id,))

    def get_delivery(self, delivery_id: str) -> dict[str, Any] | None:
        rows = self._read("SELECT status, outcome FROM deliveries WHERE id = ?", (delivery_id,))
        if not rows:
            return None
        status, outcome = rows[0]
        return {"status": status, "outcome": json.loads(outcome) if outcome else None}

    # --- incidents --------------------------------------------------------------------

    def create(self, incident: Incident) -> Incident | None:
        entries = bounds.unsaved_entries(incident)
        stored = bounds.bounded(incident).model_copy(update={"version": 1})
        with self._write() as db:
            pointer = db.execute("SELECT incident_id FROM open_keys WHERE key = ?", (incident.key,)).fetchone()
            if pointer and self._holds_key(db, pointer[0]):
                return None
            db.execute("INSERT OR REPLACE INTO open_keys (key, incident_id) VALUES (?, ?)",
                       (incident.key, incident.id))
            db.execute("INSERT INTO incidents (id, key, status, opened_at, version, doc, due_at, repeat_sev) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (stored.id, stored.key, stored.status.value, stored.opened_at.isoformat(), 1,
                        stored.model_dump_json(), _due(stored), bounds.repeat_floor(stored)))
            _insert_entries(db, incident.id, entries)
        return stored

    def save(self, incident: Incident) -> Incident:
        entries = bounds.unsaved_entries(incident)
        stored = bounds.bounded(incident).model_copy(update={"version": incident.version + 1})
        if stored.status is IncidentStatus.RESOLVED:
            stored = stored.model_copy(update={"key_released": True})
        # The doc holds the repeats counted since ``incident`` was read (its version says so): they fold in.
        update = ("UPDATE incidents SET status = ?, version = ?, doc = ?, due_at = ?, repeats = 0, repeat_seen = NULL, "
                  "repeat_sev = ? WHERE id = ? AND version = ?")
        args = (stored.status.value, stored.version, stored.model_dump_json(), _due(stored),
                bounds.repeat_floor(stored), incident.id, incident.version)
        if not entries and stored.status is not IncidentStatus.RESOLVED:
            with self._lock:  # a change without entries: one conditional UPDATE, atomic by itself
                updated = self._conn.execute(update, args).rowcount
            if updated != 1:
                raise ConflictError(f"incident {incident.id} changed since version {incident.version}")
            return stored
        with self._write() as db:
            updated = db.execute(update, args).rowcount
            if updated != 1:
                raise ConflictError(f"incident {incident.id} changed since version {incident.version}")
            _insert_entries(db, incident.id, entries)
            if stored.status is IncidentStatus.RESOLVED:
                db.execute("DELETE FROM open_keys WHERE key = ? AND incident_id = ?", (stored.key, stored.id))
        return stored

    @staticmethod
    def _holds_key(db: sqlite3.Connection, incident_id: str) -> bool:
        """Is ``incident_id`` still open? A pointer to a resolved or missing incident is stale."""
        row = db.execute("SELECT status FROM incidents WHERE id = ?", (incident_id,)).fetchone()
        return row is not None and row[0] != IncidentStatus.RESOLVED.value

    def timeline(self, incident_id: str, start: int = 0, limit: int = 100) -> builtins.list[TimelineEntry]:
        rows = self._read("SELECT entry FROM timeline WHERE incident_id = ? AND seq >= ? AND seq < ? ORDER BY seq",
                          (incident_id, start, start + limit))
        return [TimelineEntry.model_validate_json(entry) for (entry,) in rows]

    def get(self, incident_id: str) -> Incident | None:
        rows = self._read(_INCIDENT_BY_ID, (incident_id,))
        return _incident(*rows[0]) if rows else None

    def get_open(self, key: str) -> Incident | None:
        rows = self._read("SELECT k.incident_id, i.doc, i.version, i.repeats, i.repeat_seen "
                          "FROM open_keys k LEFT JOIN incidents i ON i.id = k.incident_id WHERE k.key = ?", (key,))
        if not rows:
            return None
        incident_id, doc, *counters = rows[0]
        incident = _incident(doc, *counters) if doc is not None else None
        if incident is not None and incident.is_open:
            return incident
        with self._write() as db:  # a stale pointer (resolved or missing incident) heals on read
            db.execute("DELETE FROM open_keys WHERE key = ? AND incident_id = ?", (key, incident_id))
        return None

    def list(self) -> list[Incident]:
        rows = self._read(_INCIDENTS)
        return [_incident(*row) for row in rows]

    def due(self, now: datetime) -> builtins.list[DueIncident]:
        rows = self._read("SELECT id, due_at FROM incidents WHERE due_at IS NOT NULL AND due_at <= ? "
                          "ORDER BY due_at, id", (now.timestamp(),))
        return [DueIncident(incident_id, due_at) for incident_id, due_at in rows]

    def get_doc(self, key: str) -> tuple[dict[str, Any] | None, int]:
        rows = self._read("SELECT body, version FROM docs WHERE key = ?", (key,))
        return (json.loads(rows[0][0]), int(rows[0][1])) if rows else (None, 0)

    def put_doc(self, key: str, doc: dict[str, Any], expected_version: int) -> None:
        body = json.dumps(doc, default=str)
        with self._write() as db:
            if expected_version == 0:
                done = db.execute("INSERT OR IGNORE INTO docs (key, version, body) VALUES (?, 1, ?)",
                                  (key, body)).rowcount
            else:
                done = db.execute("UPDATE docs SET version = version + 1, body = ? WHERE key = ? AND version = ?",
                                  (body, key, expected_version)).rowcount
            if done != 1:
                raise ConflictError(f"document {key} changed since version {expected_version}")



def _incident(doc: str, version: int, repeats: int, repeat_seen: str | None) -> Incident:
    return bounds.with_repeats(Incident.model_validate_json(doc), version, repeats, repeat_seen)


def _insert_entries(db: sqlite3.Connection, incident_id: str, entries: list[tuple[int, TimelineEntry]]) -> None:
    db.executemany("INSERT INTO timeline (incident_id, seq, entry) VALUES (?, ?, ?)",
                   [(incident_id, seq, entry.model_dump_json()) for seq, entry in entries])


def _due(incident: Incident) -> float | None:
    return incident.next_action_at.timestamp() if incident.next_action_at else None
