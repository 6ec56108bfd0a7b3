"""One contract, two stores: SQLite (embedded) and DynamoDB (moto)."""

from __future__ import annotations

import random
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from chalicelib.decisions.incidents import MAX_NOTE_CHARS, MAX_NOTES, IncidentService, Reason
from chalicelib.errors import ConflictError, InvalidRequest, StoreError
from chalicelib.models import (
    Classification,
    Incident,
    IncidentStatus,
    PageKind,
    PageRecord,
    PageStatus,
    Severity,
    Signal,
    SignalKind,
    TimelineEntry,
    Transition,
)
from chalicelib.store import Claim, Repeat, bounds, full_timeline, open_store
from chalicelib.store.dynamodb import DynamoStore
from chalicelib.store.sqlite import SqliteStore
from tests.conftest import CONFIG, T0


def incident(incident_id: str = "inc-1", key: str = "alarm:a") -> Incident:
    return Incident(id=incident_id, key=key, kind=SignalKind.ALARM, title="a", severity=Severity.SEV2,
                    owner="engineering-oncall", playbook=None, rule="default", opened_at=T0, last_seen=T0)


def test_claim_is_exclusive_until_released(any_store: Any) -> None:
    assert any_store.claim_delivery("d-1", T0, 300) is Claim.CLAIMED
    assert any_store.claim_delivery("d-1", T0, 300) is Claim.IN_PROGRESS
    any_store.release_delivery("d-1")
    assert any_store.claim_delivery("d-1", T0, 300) is Claim.CLAIMED


def test_completed_delivery_stays_a_duplicate_for_the_keep_window(any_store: Any) -> None:
    assert any_store.claim_delivery("d-2", T0, 300) is Claim.CLAIMED
    any_store.complete_delivery("d-2", {"reason": "OPENED"}, T0, keep_days=14)
    assert any_store.claim_delivery("d-2", T0 + timedelta(days=13), 300) is Claim.DONE
    assert any_store.get_delivery("d-2") == {"status": "done", "outcome": {"reason": "OPENED"}}
    any_store.release_delivery("d-2")  # a completed record is not a lease: stays
    assert any_store.claim_delivery("d-2", T0 + timedelta(hours=1), 300) is Claim.DONE
    assert any_store.claim_delivery("d-2", T0 + timedelta(days=15), 300) is Claim.CLAIMED  # forgotten


def test_abandoned_lease_can_be_taken_after_it_expires(any_store: Any) -> None:
    assert any_store.claim_delivery("d-3", T0, 60) is Claim.CLAIMED
    assert any_store.claim_delivery("d-3", T0 + timedelta(seconds=59), 60) is Claim.IN_PROGRESS
    assert any_store.claim_delivery("d-3", T0 + timedelta(seconds=61), 60) is Claim.CLAIMED


def test_create_refuses_a_second_open_incident_for_a_key(any_store: Any) -> None:
    first = any_store.create(incident("inc-1"))
    assert first is not None and first.version == 1
    assert any_store.create(incident("inc-2")) is None
    assert any_store.get_open("alarm:a").id == "inc-1"
    assert any_store.get("inc-2") is None


def test_save_is_optimistic(any_store: Any) -> None:
    stored = any_store.create(incident())
    saved = any_store.save(stored.model_copy(update={"count": 2}))
    assert saved.version == 2 and any_store.get("inc-1").count == 2
    with pytest.raises(ConflictError):
        any_store.save(stored.model_copy(update={"count": 3}))  # stale version 1
    assert any_store.get("inc-1").count == 2


def test_resolving_releases_the_key_for_a_new_incident(any_store: Any) -> None:
    stored = any_store.create(incident())
    resolved = any_store.save(stored.model_copy(update={"status": IncidentStatus.RESOLVED}))
    assert any_store.get_open("alarm:a") is None
    again = any_store.save(resolved.model_copy(update={"count": 5}))  # later edits of a resolved incident
    assert again.version == 3
    second = any_store.create(incident("inc-2"))
    assert second is not None and any_store.get_open("alarm:a").id == "inc-2"
    assert [i.id for i in any_store.list()] == ["inc-1", "inc-2"]


def test_acknowledged_incident_still_holds_its_key(any_store: Any) -> None:
    stored = any_store.create(incident())
    any_store.save(stored.model_copy(update={"status": IncidentStatus.ACKNOWLEDGED}))
    assert any_store.get_open("alarm:a").status is IncidentStatus.ACKNOWLEDGED
    assert any_store.create(incident("inc-2")) is None


def test_open_store_urls(tmp_path: Any) -> None:
    assert type(open_store(f"sqlite:///{tmp_path}/x.db")).__name__ == "SqliteStore"
    assert type(open_store("dynamodb://t", dynamodb_client=object())).__name__ == "DynamoStore"
    with pytest.raises(StoreError, match="RESPONDER_STORE"):
        open_store("redis://x")


def test_documents_are_versioned(any_store: Any) -> None:
    assert any_store.get_doc("actions:x") == (None, 0)
    any_store.put_doc("actions:x", {"n": 1}, 0)
    with pytest.raises(ConflictError):
        any_store.put_doc("actions:x", {"n": 9}, 0)
    any_store.put_doc("actions:x", {"n": 2}, 1)
    with pytest.raises(ConflictError):
        any_store.put_doc("actions:x", {"n": 9}, 1)
    assert any_store.get_doc("actions:x") == ({"n": 2}, 2)


# --- bounded records (issue 10, section 1) -----------------------------------------------------

def dynamodb_item_bytes(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it: attribute names plus values (UTF-8 bytes)."""
    def value(v: dict[str, Any]) -> int:
        (kind, x), = v.items()
        if kind == "S":
            return len(x.encode())
        if kind == "N":
            return (len(x.lstrip("-").replace(".", "").lstrip("0")) + 1) // 2 + 1
        if kind == "B":
            return len(x)
        if kind in ("BOOL", "NULL"):
            return 1
        if kind == "M":
            return 3 + sum(len(k.encode()) + value(w) + 1 for k, w in x.items())
        if kind == "L":
            return 3 + sum(value(w) + 1 for w in x)
        return sum(len(str(e).encode()) for e in x)  # SS, NS, BS
    return sum(len(name.encode()) + value(v) for name, v in item.items())


def largest_item(store: Any) -> tuple[int, str]:
    """The largest stored item (DynamoDB) or row (SQLite) and what it is, in bytes."""
    if isinstance(store, DynamoStore):
        items: list[dict[str, Any]] = []
        start = None
        while True:
            page = store.client.scan(TableName=store.table, **({"ExclusiveStartKey": start} if start else {}))
            items += page["Items"]
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        return max((dynamodb_item_bytes(i), i["pk"]["S"]) for i in items)
    rows = store._read("SELECT length(CAST(doc AS BLOB)), 'incident ' || id FROM incidents "
                       "UNION ALL SELECT length(CAST(entry AS BLOB)), 'entry ' || incident_id FROM timeline")
    return max((int(size), str(what)) for size, what in rows)


def stale_pointer(store: Any, key: str, incident_id: str) -> None:
    """Write an open-key pointer by hand, as a past bug or a lost write could have left it."""
    if isinstance(store, DynamoStore):
        store.client.put_item(TableName=store.table,
                              Item={"pk": {"S": f"OPENKEY#{key}"}, "incident_id": {"S": incident_id}})
    else:
        with store._write() as db:
            db.execute("INSERT OR REPLACE INTO open_keys (key, incident_id) VALUES (?, ?)", (key, incident_id))


def test_every_entry_is_kept_while_the_record_holds_a_window(any_store: Any) -> None:
    stored = any_store.create(incident().noted(TimelineEntry(at=T0, what="opened")))
    long_note = "n" * 4000
    for n in range(60):
        stored = any_store.save(stored.noted(TimelineEntry(at=T0 + timedelta(seconds=n), by="alice",
                                                           what=f"note: {n} {long_note if n == 40 else ''}")))
    record = any_store.get("inc-1")
    assert record.timeline_count == 61 and record.timeline_stored == 61
    assert len(record.timeline) == bounds.TIMELINE_HEAD + bounds.TIMELINE_TAIL
    assert record.timeline[0].what == "opened" and record.timeline[-1].what.startswith("note: 59")
    assert all(len(e.what) <= bounds.WINDOW_TEXT_MAX for e in record.timeline)
    everything = full_timeline(any_store, record)
    assert [e.what.split(" ")[1] for e in everything[1:]] == [str(n) for n in range(60)]
    assert everything[41].what == f"note: 40 {long_note}"  # whole on the full timeline
    assert [e.what for e in any_store.timeline("inc-1", 10, 3)] == ["note: 9 ", "note: 10 ", "note: 11 "]


def test_a_long_entry_still_in_the_window_is_whole_on_the_full_timeline(any_store: Any) -> None:
    stored = any_store.create(incident().noted(TimelineEntry(at=T0, what="opened")))
    whole = "note: " + "w" * 3000
    stored = any_store.save(stored.noted(TimelineEntry(at=T0, by="alice", what=whole)))
    stored = any_store.save(stored.noted(TimelineEntry(at=T0, by="alice", what="note: short")))
    record = any_store.get("inc-1")
    assert record.timeline[1].what != whole  # the window holds it cut short
    assert [e.what for e in full_timeline(any_store, record)] == ["opened", whole, "note: short"]
    # and an incident in memory with an entry not stored yet shows it too
    pending = record.noted(TimelineEntry(at=T0, what="not saved yet"))
    assert full_timeline(any_store, pending)[-1].what == "not saved yet"


def test_dynamodb_writes_each_entry_whole_once_and_only_when_the_window_cannot_hold_it(dynamo_store: Any) -> None:
    """An entry has a record of its own only once it leaves the window (or the window cuts it short):
    most incident writes are then one plain Put instead of a transaction with an item per entry."""
    puts: list[str] = []

    def note(params: dict[str, Any], model: Any, **_: Any) -> None:
        items = [params] if model.name == "PutItem" else [
            body for entry in params.get("TransactItems", []) for body in entry.values()]
        puts.extend(body["Item"]["pk"]["S"].split("#")[-1] for body in items
                    if body.get("Item", {}).get("pk", {}).get("S", "").startswith("TL#"))

    dynamo_store.client.meta.events.register("provide-client-params.dynamodb.*", note)
    stored = dynamo_store.create(incident().noted(TimelineEntry(at=T0, what="opened")))
    for n in range(1, 40):
        stored = dynamo_store.save(stored.noted(TimelineEntry(at=T0, what=f"e{n}" + ("L" * 1200 if n == 38 else ""))))
    window = bounds.TIMELINE_HEAD + bounds.TIMELINE_TAIL
    # 40 entries, a window of 30: the 10 after the head left it, each once; the long one when added
    assert sorted(int(seq) for seq in puts) == [*range(5, 5 + 40 - window), 38]
    assert len(puts) == len(set(puts))
    assert [e.what[:3] for e in full_timeline(dynamo_store, dynamo_store.get("inc-1"))] == [
        "ope", *(f"e{n}"[:3] for n in range(1, 40))]


@pytest.mark.parametrize("target", ["resolved", "missing"])
def test_a_stale_open_key_heals_on_read_and_a_new_incident_opens(any_store: Any, target: str) -> None:
    """The old DynamoStore raised on a pointer to a missing incident and never let the key open again."""
    if target == "resolved":
        stored = any_store.create(incident())
        any_store.save(stored.model_copy(update={"status": IncidentStatus.RESOLVED}))
    stale_pointer(any_store, "alarm:a", "inc-1" if target == "resolved" else "inc-gone")
    assert any_store.get_open("alarm:a") is None
    assert any_store.create(incident("inc-2")) is not None
    assert any_store.get_open("alarm:a").id == "inc-2"


def test_a_pointer_to_another_open_incident_is_not_stale(any_store: Any) -> None:
    any_store.create(incident("inc-1"))
    assert any_store.get_open("alarm:a").id == "inc-1"
    assert any_store.create(incident("inc-2")) is None


OPS = ["repeat", "annotate", "note", "page"]


@settings(max_examples=2, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), n=st.integers(1_500, 2_500), mix=st.permutations(OPS))
def test_thousands_of_mixed_events_and_notes_stay_bounded_and_resolve(any_store: Any, seed: int, n: int,
                                                                       mix: list[str]) -> None:
    rng = random.Random(seed)
    key = f"alarm:prop-{seed}-{n}"
    service = IncidentService(any_store, CONFIG, pause=lambda attempt: None)
    c = Classification(severity=Severity.SEV2, owner="engineering-oncall", response_minutes=30, playbook=None,
                       rule="default")
    weights = [8, 6, 3, 2]

    def signal(i: int, transition: Transition) -> Signal:
        return Signal(kind=SignalKind.ALARM, source="sns", delivery_id=f"d-{seed}-{i}", incident_key=key,
                      transition=transition, occurred_at=T0, title="checkout-5xx " + "x" * rng.randrange(300))

    reason, opened = service.handle(signal(-1, Transition.TRIGGER), c, T0)
    assert reason is Reason.OPENED and opened is not None
    for i in range(n):
        now = T0 + timedelta(seconds=i)
        op = rng.choices(mix, weights)[0]
        if op == "repeat":
            service.handle(signal(i, Transition.TRIGGER), c, now)
        elif op == "annotate":
            service.handle(signal(i, Transition.NONE), c, now)
        elif op == "note":
            try:
                service.add_note(opened.id, "alice", "n" * rng.randrange(1, MAX_NOTE_CHARS + 1), now)
            except InvalidRequest as exc:
                assert exc.field == "text"
        else:
            # a step queues a page; the earlier ones have been delivered, failed for good or cancelled
            page = PageRecord(id=f"step-{i}:p{i % 3}:console", step=f"step-{i}", role="r", person=f"p{i % 3}",
                              channel="console", kind=rng.choice(list(PageKind)), at=now, text="page " + "t" * 200)
            done = rng.choice([PageStatus.SENT, PageStatus.GAVE_UP, PageStatus.CANCELLED])
            service.update(opened.id, lambda inc, page=page, done=done, now=now: inc.with_pages(
                *(p.model_copy(update={"status": done}) for p in inc.pages if p.status is PageStatus.PENDING),
                page).noted(TimelineEntry(at=now, what=f"escalation {page.id}")))
    reason, resolved = service.handle(signal(n, Transition.RESOLVE), c, T0 + timedelta(seconds=n))
    assert reason is Reason.RESOLVED and resolved is not None and resolved.status is IncidentStatus.RESOLVED
    assert any_store.get_open(key) is None
    size, what = largest_item(any_store)
    assert size < 64 * 1024, (size, what)
    record = any_store.get(opened.id)
    # every entry, and one line for the counted repeats
    assert record.note_count <= MAX_NOTES and len(full_timeline(any_store, record)) == record.timeline_count + (
        record.count > 1)


def test_a_record_from_before_the_bounded_layout_moves_its_timeline_out_on_first_write(any_store: Any) -> None:
    """Stored whole (300 entries, no records of their own): the first save writes them out and trims."""
    legacy = incident().model_copy(update={"timeline": tuple(
        TimelineEntry(at=T0 + timedelta(seconds=n), what=f"old {n}") for n in range(300)), "version": 1})
    if isinstance(any_store, DynamoStore):
        any_store.client.put_item(TableName=any_store.table, Item=any_store._incident_item(legacy))
    else:
        with any_store._write() as db:
            db.execute("INSERT INTO incidents (id, key, status, opened_at, version, doc) VALUES (?, ?, ?, ?, 1, ?)",
                       (legacy.id, legacy.key, "open", T0.isoformat(), legacy.model_dump_json()))
    stored = any_store.get("inc-1")
    assert [e.what for e in full_timeline(any_store, stored)][-1] == "old 299"
    saved = any_store.save(stored.noted(TimelineEntry(at=T0, what="new")))
    assert len(saved.timeline) == bounds.TIMELINE_HEAD + bounds.TIMELINE_TAIL
    assert [e.what for e in full_timeline(any_store, any_store.get("inc-1"))] == [
        *(f"old {n}" for n in range(300)), "new"]


def countable(any_store: Any, **changes: Any) -> Incident:
    """An open incident (whose repeats only count), saved once with ``changes``."""
    created = any_store.create(incident())
    return any_store.save(created.model_copy(update={"count": 10, **changes}))


def test_record_repeat_completes_the_delivery_and_counts_without_rewriting(any_store: Any) -> None:
    stored = countable(any_store)
    later = T0 + timedelta(minutes=5)
    assert any_store.record_repeat("r-1", "inc-1", Severity.SEV2, {"reason": "ALREADY_OPEN"}, later, 14) \
        is Repeat.COUNTED
    assert any_store.record_repeat("r-2", "inc-1", Severity.SEV4, {"reason": "ALREADY_OPEN"}, later, 14) \
        is Repeat.COUNTED  # a lesser severity is a repeat too
    read = any_store.get("inc-1")
    assert (read.count, read.last_seen) == (stored.count + 2, later)
    assert any_store.get_open("alarm:a") == read and any_store.list() == [read]
    assert any_store.get_delivery("r-1") == {"status": "done", "outcome": {"reason": "ALREADY_OPEN"}}
    assert any_store.claim_delivery("r-1", later, 60) is Claim.DONE


def test_record_repeat_answers_a_redelivery_and_a_lease_without_counting(any_store: Any) -> None:
    countable(any_store)
    assert any_store.record_repeat("r-1", "inc-1", 2, {}, T0, 14) is Repeat.COUNTED
    assert any_store.record_repeat("r-1", "inc-1", 2, {}, T0, 14) is Repeat.DUPLICATE
    assert any_store.claim_delivery("r-2", T0, 60) is Claim.CLAIMED
    assert any_store.record_repeat("r-2", "inc-1", 2, {}, T0, 14) is Repeat.IN_PROGRESS
    assert any_store.get("inc-1").count == 11


@pytest.mark.parametrize("changes", [
    {"status": IncidentStatus.RESOLVED},                  # resolved: the full path decides
    {"playbook": "restart", "actions_taken": 1},          # a repeat re-runs its playbook
], ids=["resolved", "playbook"])
def test_record_repeat_leaves_what_needs_the_full_decision(any_store: Any, changes: dict[str, Any]) -> None:
    before = countable(any_store, **changes)
    assert any_store.record_repeat("r-1", "inc-1", 2, {}, T0, 14) is Repeat.NOT_COUNTABLE
    assert any_store.get("inc-1") == before
    assert any_store.claim_delivery("r-1", T0, 60) is Claim.CLAIMED  # nothing written: the full path runs it


def test_record_repeat_of_a_worse_severity_needs_the_full_decision(any_store: Any) -> None:
    countable(any_store)
    assert any_store.record_repeat("r-1", "inc-1", Severity.SEV1, {}, T0, 14) is Repeat.NOT_COUNTABLE
    assert any_store.record_repeat("r-1", "inc-missing", Severity.SEV2, {}, T0, 14) is Repeat.NOT_COUNTABLE


def test_a_full_write_never_loses_counted_repeats(any_store: Any) -> None:
    stored = countable(any_store)
    assert any_store.record_repeat("r-1", "inc-1", 2, {}, T0 + timedelta(minutes=1), 14) is Repeat.COUNTED
    try:  # read before the repeat: SQLite refuses the write (the repeat moved the version), DynamoDB keeps both
        any_store.save(stored.model_copy(update={"owner": "someone"}))
    except ConflictError:
        any_store.save(any_store.get("inc-1").model_copy(update={"owner": "someone"}))
    saved = any_store.save(any_store.get("inc-1").model_copy(update={"title": "b"}))
    assert any_store.record_repeat("r-2", "inc-1", 2, {}, T0 + timedelta(minutes=2), 14) is Repeat.COUNTED
    read = any_store.get("inc-1")
    assert (read.count, read.owner, read.title, read.last_seen) == (
        stored.count + 2, "someone", "b", T0 + timedelta(minutes=2))
    assert saved.count == stored.count + 1 and any_store.list() == [read]


def test_a_raised_incident_counts_its_new_severity_and_a_resolved_one_nothing(any_store: Any) -> None:
    stored = countable(any_store)
    raised = any_store.save(stored.model_copy(update={"severity": Severity.SEV1}))
    assert any_store.record_repeat("r-1", "inc-1", Severity.SEV1, {}, T0, 14) is Repeat.COUNTED
    any_store.save(any_store.get("inc-1").model_copy(update={"status": IncidentStatus.RESOLVED}))
    assert any_store.record_repeat("r-2", "inc-1", Severity.SEV1, {}, T0, 14) is Repeat.NOT_COUNTABLE
    assert any_store.get("inc-1").count == raised.count + 1


def test_record_repeat_takes_over_an_abandoned_lease_and_a_forgotten_record(any_store: Any) -> None:
    countable(any_store)
    assert any_store.claim_delivery("r-1", T0, 60) is Claim.CLAIMED  # its worker died
    assert any_store.record_repeat("r-1", "inc-1", 2, {"n": 1}, T0 + timedelta(seconds=61), 14) is Repeat.COUNTED
    assert any_store.get_delivery("r-1") == {"status": "done", "outcome": {"n": 1}}
    past_window = T0 + timedelta(days=15)
    assert any_store.record_repeat("r-1", "inc-1", 2, {"n": 2}, past_window, 14) is Repeat.COUNTED
    assert any_store.get_delivery("r-1") == {"status": "done", "outcome": {"n": 2}}
    assert any_store.get("inc-1").count == 12


def test_a_sqlite_repeat_is_one_statement_and_a_refused_one_writes_nothing(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "x.db")
    countable(store)
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    assert store.record_repeat("r-1", "inc-1", 2, {}, T0, 14) is Repeat.COUNTED
    # one statement (traced once per trigger step): no BEGIN, SELECT or COMMIT round trips of its own
    assert len(set(statements)) == 1 and statements[0].startswith("INSERT INTO repeat_requests")
    assert store.record_repeat("r-2", "inc-1", Severity.SEV1, {}, T0, 14) is Repeat.NOT_COUNTABLE
    assert store.get_delivery("r-2") is None and store.get("inc-1").count == 11


def test_a_sqlite_repeat_waits_for_another_process_s_write_lock_then_fails_cleanly(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "x.db", busy_timeout_s=0.01)
    countable(store)
    other = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process mid-write
    try:
        with pytest.raises(StoreError, match="busy"):
            store.record_repeat("r-1", "inc-1", 2, {}, T0, 14)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store.record_repeat("r-1", "inc-1", 2, {}, T0, 14) is Repeat.COUNTED


def test_a_long_entry_that_leaves_the_tail_of_the_window_stays_whole(any_store: Any) -> None:
    """Written whole when added (the window cuts it short); when it later leaves the window its
    record is not written again from the window's cut copy."""
    stored = any_store.create(incident().noted(TimelineEntry(at=T0, what="opened")))
    for n in range(1, bounds.TIMELINE_HEAD):
        stored = any_store.save(stored.noted(TimelineEntry(at=T0, what=f"head {n}")))
    whole = "note: " + "w" * 3000
    stored = any_store.save(stored.noted(TimelineEntry(at=T0, by="alice", what=whole)))
    for n in range(bounds.TIMELINE_TAIL + 3):
        stored = any_store.save(stored.noted(TimelineEntry(at=T0, what=f"later {n}")))
    record = any_store.get("inc-1")
    assert record.timeline_omitted > 0 and all(e.what != whole[:40] and "w" * 50 not in e.what
                                               for e in record.timeline)  # it left the window
    timeline = [e.what for e in full_timeline(any_store, record)]
    assert timeline[bounds.TIMELINE_HEAD] == whole and len(timeline) == record.timeline_count
