"""What a stored incident may hold: bounded by construction, whatever arrives.

Both stores pass every incident they write through ``bounded`` and store timeline entries
as records of their own (SQLite each new one, ``unsaved_entries``; DynamoDB, where each record
is billed, those ``leaving_window`` names), so the incident record stays
small (DynamoDB refuses items over 400 KB; a bricked incident can never resolve) while
nothing is lost:

- **Timeline**: the record keeps a window, the first ``TIMELINE_HEAD`` entries (what opened
  it, who was paged first) and the latest ``TIMELINE_TAIL``, each cut to ``WINDOW_TEXT_MAX``
  characters; ``timeline_omitted`` counts the entries between them. Every entry, at up to
  ``models.TIMELINE_TEXT_MAX`` characters, is written whole once as its own record with its
  sequence number, in the same transaction as the incident write that added it (SQLite) or
  that moved it out of the window or added it cut short (DynamoDB).
- **Pages**: every page still in flight (pending, sending, failed) stays. Of the finished
  ones the record keeps the latest ``PAGES_RECENT`` and, for each (kind, role, person,
  channel, delivered), the latest one: who was reached is what acknowledge and resolve
  notices and the post-mortem need, and that set is bounded by the routing config, not by
  the events. Fallback pairs of a page in flight stay together. ``pages_rolled_up`` counts
  the rest; each was recorded on the timeline when it was queued and when it was sent.
- Counters (``count``, ``annotation_count``, ``note_count``) carry what itemising would repeat.
  A repeated trigger only counts (``count``, ``last_seen``: the full timeline shows one line for
  them, ``store.full_timeline``; each delivery keeps its own record), and the stores count it
  without reading or rewriting the record (``record_repeat``); ``repeat_floor`` says when.
"""

from __future__ import annotations

from datetime import datetime

from chalicelib.models import Incident, PageRecord, PageStatus, Severity, TimelineEntry, clipped

TIMELINE_HEAD = 5
TIMELINE_TAIL = 25
WINDOW_TEXT_MAX = 1_000
PAGES_RECENT = 20
# More new entries than this in one write means a caller appends without bound: refuse it
# (a DynamoDB transaction holds at most 100 items).
MAX_NEW_ENTRIES_PER_WRITE = 90

_IN_FLIGHT = frozenset({PageStatus.PENDING, PageStatus.SENDING, PageStatus.FAILED})


def unsaved_entries(incident: Incident) -> list[tuple[int, TimelineEntry]]:
    """The entries appended since the incident was read, with their sequence numbers."""
    new = incident.timeline_count - incident.timeline_stored
    if new <= 0:
        return []
    if new > len(incident.timeline):
        raise ValueError(f"incident {incident.id}: {new} unsaved timeline entries but a window of "
                         f"{len(incident.timeline)}")
    first = incident.timeline_stored
    return [(first + i, entry) for i, entry in enumerate(incident.timeline[-new:])]


def window_seq(incident: Incident, index: int) -> int:
    """The sequence number of ``incident.timeline[index]``: the head's are 0–4, the rest come after the omitted."""
    return index + (incident.timeline_omitted if index >= TIMELINE_HEAD else 0)


def leaving_window(incident: Incident) -> list[tuple[int, TimelineEntry]]:
    """The entries a store that keeps the rest in the window only (DynamoDB) writes as records of their
    own with ``incident``: those ``bounded`` drops from the window now, and new ones the window cuts
    short (at ``WINDOW_TEXT_MAX`` characters or more: written whole when added, so never again). Every
    other entry is exact in the window until it leaves, so each entry is written whole exactly once."""
    dropped = range(TIMELINE_HEAD, TIMELINE_HEAD + max(0, len(incident.timeline) - TIMELINE_HEAD - TIMELINE_TAIL))
    out = []
    for index, entry in enumerate(incident.timeline):
        seq, long = window_seq(incident, index), len(entry.what) >= WINDOW_TEXT_MAX
        new = seq >= incident.timeline_stored
        if (index in dropped and not (long and not new)) or (new and long):
            out.append((seq, entry))
    return out


def bounded(incident: Incident) -> Incident:
    """The record to store: the timeline window and finished pages trimmed, all entries counted as stored."""
    timeline, omitted = incident.timeline, incident.timeline_omitted
    if len(timeline) > TIMELINE_HEAD + TIMELINE_TAIL:
        dropped = len(timeline) - TIMELINE_HEAD - TIMELINE_TAIL
        timeline, omitted = timeline[:TIMELINE_HEAD] + timeline[TIMELINE_HEAD + dropped:], omitted + dropped
    if any(len(e.what) > WINDOW_TEXT_MAX for e in timeline):
        timeline = tuple(e.model_copy(update={"what": clipped(e.what, WINDOW_TEXT_MAX)})
                         if len(e.what) > WINDOW_TEXT_MAX else e for e in timeline)
    pages = kept_pages(incident.pages)
    return incident.model_copy(update={
        "timeline": timeline, "timeline_omitted": omitted, "timeline_stored": len(timeline) + omitted,
        "pages": pages, "pages_rolled_up": incident.pages_rolled_up + len(incident.pages) - len(pages)})


def kept_pages(pages: tuple[PageRecord, ...]) -> tuple[PageRecord, ...]:
    """``pages`` (oldest first) without the finished ones no decision needs any more."""
    finished = [i for i, p in enumerate(pages) if p.status not in _IN_FLIGHT]
    if len(finished) <= PAGES_RECENT:
        return pages
    keep = set(range(len(pages))) - set(finished)
    keep.update(finished[-PAGES_RECENT:])
    latest: dict[tuple[str, str, str, str, bool], int] = {}
    for i in finished:
        p = pages[i]
        latest[(p.kind.value, p.role, p.person, p.channel, p.delivered)] = i
    keep.update(latest.values())
    in_flight = {pages[i].id for i in keep if pages[i].status in _IN_FLIGHT}
    partners = {pages[i].fallback_for for i in keep if pages[i].status in _IN_FLIGHT}
    keep.update(i for i in finished if pages[i].fallback_for in in_flight or pages[i].id in partners)
    return tuple(pages[i] for i in sorted(keep))


def repeat_floor(incident: Incident) -> Severity | None:
    """The severity a repeated trigger must be at or below (numerically at or above) to be counted
    on ``incident`` without the full decision, or None when every repeat needs it: the incident is
    resolved, a repeat re-runs its playbook (the safety envelope decides), it is held (grouped,
    inhibited or a watched deployment: a repeat may release it, decisions/grouping.py), or a
    flapping alarm waits to resolve. A worse severity raises the incident, so it never counts here."""
    if not incident.is_open or incident.held:
        return None
    if incident.recovery_held:
        return None  # a flapping alarm waiting to resolve: its next trigger ends the wait (decisions/flapping.py)
    if incident.playbook and incident.actions_taken > 0:
        return None
    return incident.severity


def with_repeats(incident: Incident, version: int, repeats: int, repeat_seen: str | None) -> Incident:
    """The stored ``incident`` with the repeats ``record_repeat`` counted since its doc was written
    (they bumped the record's ``version`` too, so a full write based on an older read conflicts)."""
    if not repeats and incident.version == version:
        return incident
    update: dict[str, object] = {"version": version, "count": incident.count + repeats}
    if repeat_seen:
        update["last_seen"] = max(incident.last_seen, datetime.fromisoformat(repeat_seen))
    return incident.model_copy(update=update)
