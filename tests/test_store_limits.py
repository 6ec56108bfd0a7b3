"""Limits on what one incident holds: note size and count (API and service), the record's bounds (pure)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.decisions.incidents import MAX_NOTE_CHARS, MAX_NOTES
from chalicelib.errors import InvalidRequest
from chalicelib.handlers import on_event
from chalicelib.models import Incident, PageKind, PageRecord, PageStatus, Severity, SignalKind, TimelineEntry
from chalicelib.store import bounds
from chalicelib.web.tokens import Role
from chalicelib.wiring import Deps
from tests.conftest import T0, FakeClock, load_event
from tests.test_escalation import Recorders, T, deps_for, open_sev1


def post_note(client: Client, token: str, incident_id: str, text: str) -> object:
    return client.http.post(f"/incidents/{incident_id}/notes", body=json.dumps({"text": text}).encode(),
                            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})


def test_the_note_count_limit_is_a_400_naming_text(client: Client, deps: Deps) -> None:
    token = deps.tokens.create("alice", Role.RESPONDER)[1]
    incident_id = on_event(load_event("eventbridge-cloudtrail-s3-putobjectlegalhold.json"), "eventbridge",
                           deps)["outcomes"][0]["incident_id"]
    for n in range(MAX_NOTES):
        deps.pipeline.add_note(incident_id, "alice", f"note {n}")
    response = post_note(client, token, incident_id, "one too many")
    assert response.status_code == 400  # type: ignore[attr-defined]
    body = response.json_body  # type: ignore[attr-defined]
    assert body["field"] == "text" and f"{MAX_NOTES} notes" in body["message"]
    record = deps.store.get(incident_id)
    assert record is not None and record.note_count == MAX_NOTES


def test_a_note_at_the_size_limit_is_kept_whole_and_one_over_is_refused(client: Client, deps: Deps) -> None:
    token = deps.tokens.create("alice", Role.RESPONDER)[1]
    incident_id = on_event(load_event("eventbridge-cloudtrail-s3-putobjectlegalhold.json"), "eventbridge",
                           deps)["outcomes"][0]["incident_id"]
    assert post_note(client, token, incident_id, "x" * MAX_NOTE_CHARS).status_code == 201  # type: ignore[attr-defined]
    over = post_note(client, token, incident_id, "x" * (MAX_NOTE_CHARS + 1))
    assert over.status_code == 400 and over.json_body["field"] == "text"  # type: ignore[attr-defined]
    detail = client.http.get(f"/incidents/{incident_id}", headers={"Authorization": f"Bearer {token}"}).json_body
    assert f"note: {'x' * MAX_NOTE_CHARS}" in [e["what"] for e in detail["timeline"]]
    assert detail["timeline_count"] == len(detail["timeline"])


def test_the_service_refuses_an_oversized_note_too(deps: Deps) -> None:
    incident_id = on_event(load_event("eventbridge-cloudtrail-s3-putobjectlegalhold.json"), "eventbridge",
                           deps)["outcomes"][0]["incident_id"]
    with pytest.raises(InvalidRequest) as refused:
        deps.pipeline.add_note(incident_id, "cli", "x" * (MAX_NOTE_CHARS + 1))
    assert refused.value.field == "text"


# --- the record's bounds (pure) -----------------------------------------------------------------

def incident(**changes: object) -> Incident:
    return Incident(id="inc-1", key="k", kind=SignalKind.ALARM, title="t", severity=Severity.SEV1, owner="o",
                    playbook=None, rule="r", opened_at=T0, last_seen=T0).model_copy(update=changes)


def entry(n: int, what: str = "") -> TimelineEntry:
    return TimelineEntry(at=T0 + timedelta(seconds=n), what=what or f"e{n}")


def page(n: int, status: PageStatus, person: str = "p", fallback_for: str | None = None) -> PageRecord:
    return PageRecord(id=f"s{n}:{person}:c", step=f"s{n}", role="r", person=person, channel="c",
                      kind=PageKind.ESCALATION, at=T0, text="x", status=status, fallback_for=fallback_for)


def test_an_entry_is_capped_and_the_window_cuts_it_shorter() -> None:
    huge = TimelineEntry(at=T0, what="y" * 50_000)
    assert len(huge.what) == 4_200 and huge.what.endswith("[truncated]")
    record = bounds.bounded(incident(timeline=(huge,)))
    assert len(record.timeline[0].what) == bounds.WINDOW_TEXT_MAX and record.timeline_stored == 1


def test_the_window_keeps_the_head_and_the_latest_and_counts_the_rest() -> None:
    record = bounds.bounded(incident(timeline=tuple(entry(n) for n in range(100))))
    assert [e.what for e in record.timeline] == [f"e{n}" for n in (*range(5), *range(75, 100))]
    assert record.timeline_omitted == 70 and record.timeline_count == 100 == record.timeline_stored
    grown = record.noted(entry(100))
    assert bounds.unsaved_entries(grown) == [(100, entry(100))]


def test_finished_pages_roll_up_but_in_flight_and_who_was_reached_stay() -> None:
    pages = (page(0, PageStatus.SENT, person="first"), page(1, PageStatus.GAVE_UP, person="flaky"),
             *(page(n, PageStatus.SENT) for n in range(2, 60)), page(60, PageStatus.FAILED),
             page(61, PageStatus.SENT, person="fallback", fallback_for="s60:p:c"),
             page(62, PageStatus.PENDING, person="fb2", fallback_for="s1:flaky:c"))
    kept = bounds.kept_pages(pages)
    ids = {p.id for p in kept}
    assert {"s0:first:c", "s60:p:c", "s61:fallback:c", "s62:fb2:c", "s1:flaky:c"} <= ids
    assert "s2:p:c" not in ids and len(kept) <= bounds.PAGES_RECENT + 5
    assert bounds.bounded(incident(pages=pages)).pages_rolled_up == len(pages) - len(kept)


def test_a_sev1_paged_for_hours_rolls_up_old_pages_yet_escalates_and_stands_everyone_down(any_store: Any) -> None:
    """Escalation runs on ``escalation`` state, not on old pages; the stand-down reaches all who were paged."""
    clock, recorders = FakeClock(T), Recorders(["console"])
    deps = deps_for(any_store, clock, recorders)
    incident_id = open_sev1(deps)
    for minute in range(5, 4 * 60 + 1, 5):
        clock.now = T + timedelta(minutes=minute)
        deps.pipeline.sweep()
    record = deps.store.get(incident_id)
    paged = [p for p in recorders.by_name["console"].sent if p.kind is PageKind.ESCALATION or
             p.kind is PageKind.TRIGGER]
    assert len(paged) > 40 and record.pages_rolled_up > 0 and len(record.pages) < len(paged)
    assert len(record.pages) <= bounds.PAGES_RECENT + 3 * len(PageKind)  # who was reached, per kind
    before = len(paged)
    clock.now += timedelta(minutes=15)
    deps.pipeline.sweep()  # the next loop still pages everyone
    assert len([p for p in recorders.by_name["console"].sent if p.kind.calls_for_action]) == before + 3
    deps.pipeline.resolve(incident_id, "giles")
    told = {p.person for p in recorders.by_name["console"].sent if p.kind is PageKind.RESOLVE}
    assert told == {p.person for p in paged}
