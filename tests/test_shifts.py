"""Shift-change notices (issue 13 §3): the pure decision (``decisions/shifts.py``) and the sweep that
tells whoever now holds a role, once per handover, on both stores, through the scheduled handler."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from chalice.test import Client

from chalicelib.config.routing import ChannelConfig, Override, Person, Role, Shift
from chalicelib.decisions import shifts
from chalicelib.decisions.oncall import holders
from chalicelib.decisions.shifts import (
    Marker,
    Reason,
    handover_due,
    notice_channels,
    notice_text,
    open_for_role,
    spans,
)
from chalicelib.errors import ConflictError
from chalicelib.models import Incident, IncidentStatus, PageKind, PageRecord, Severity, TimelineEntry
from chalicelib.notify.paging import SUMMARY_LIMIT
from chalicelib.shifts import DOC_KEY, ShiftNotices
from chalicelib.web.tokens import Role as TokenRole
from chalicelib.wiring import Deps
from tests.conftest import CONFIG, T0, FakeClock, RecordingChannel, app_on, copy_config
from tests.test_operations import post

NY = ZoneInfo("America/New_York")
# engineer-on-call from Monday 09:00 to Thursday 09:00, engineer-daytime from Thursday 09:00 to Monday 09:00
ROTATION = Role(shifts=(Shift(person="engineer-on-call", days=("mon", "tue", "wed"), start="09:00", end="09:00"),
                        Shift(person="engineer-daytime", days=("thu", "fri", "sat", "sun"), start="09:00",
                              end="09:00")))
MONDAY_0900 = datetime(2025, 3, 17, 13, 0, tzinfo=UTC)  # 09:00 EDT, the Monday after T0


# --- the decision ------------------------------------------------------------------------------


@pytest.mark.parametrize("start", [datetime(2026, 3, 5, tzinfo=UTC), datetime(2026, 10, 29, tzinfo=UTC)])
def test_spans_name_the_holders_of_every_minute_across_daylight_saving(start: datetime) -> None:
    role = Role(shifts=(Shift(person="a", start="02:30", end="09:00"), Shift(person="b", start="09:00", end="01:30"),
                        Shift(person="c", start="01:30", end="02:30")),
                overrides=(Override(person="d", start=start + timedelta(days=4, hours=1, minutes=7),
                                    end=start + timedelta(days=4, hours=5, minutes=11)),))
    end = start + timedelta(days=7)
    found = spans(role, NY, start, end)
    assert found[0].start == start and found[-1].end == end
    assert all(a.end == b.start and (a.people, a.override) != (b.people, b.override)
               for a, b in itertools.pairwise(found))
    moment, index = start, 0
    while moment < end:  # every minute of a week with a gap (March) or a repeated hour (November)
        while not found[index].start <= moment < found[index].end:
            index += 1
        assert list(found[index].people) == holders(role, moment, NY), moment
        assert found[index].override == any(o.start <= moment < o.end for o in role.overrides)
        moment += timedelta(minutes=1)


def _marker(now: datetime, **changes: Any) -> Marker:
    since, _, people = shifts.holding(ROTATION, NY, now)
    return Marker(at=since, people=people, status="seen").model_copy(update=changes)


def test_a_rotation_handover_is_due_once_for_the_incoming_person() -> None:
    before = MONDAY_0900 - timedelta(minutes=1)
    first = handover_due(ROTATION, NY, None, before)
    assert first.reason is Reason.FIRST_LOOK and first.handover is not None
    assert first.handover.people == ("engineer-daytime",) and first.handover.incoming == ()
    seen = _marker(before)
    assert handover_due(ROTATION, NY, seen, before).reason is Reason.NONE_SINCE
    due = handover_due(ROTATION, NY, seen, MONDAY_0900 + timedelta(seconds=20))
    assert due.reason is Reason.DUE and due.handover is not None
    assert (due.handover.at, due.handover.people, due.handover.incoming) == (
        MONDAY_0900, ("engineer-on-call",), ("engineer-on-call",))
    assert due.handover.until == datetime(2025, 3, 20, 13, 0, tzinfo=UTC)  # Thursday 09:00 EDT
    late = handover_due(ROTATION, NY, seen, MONDAY_0900 + shifts.MAX_LATE + timedelta(minutes=1))
    assert late.reason is Reason.TOO_LATE


@pytest.mark.parametrize("changes, minutes, reason", [
    ({"status": "sending", "attempts": 1, "lease_until": MONDAY_0900 + timedelta(minutes=2)}, 1, Reason.IN_PROGRESS),
    ({"status": "sending", "attempts": 1, "lease_until": MONDAY_0900 + timedelta(minutes=2)}, 3, Reason.RETRY),
    ({"status": "failed", "attempts": 1}, 1, Reason.RETRY),
    ({"status": "failed", "attempts": shifts.MAX_ATTEMPTS}, 1, Reason.NONE_SINCE),
    ({"status": "failed", "attempts": 1}, 61, Reason.NONE_SINCE),
    ({"status": "sent", "attempts": 1}, 1, Reason.NONE_SINCE)])
def test_a_claimed_notice_is_left_to_its_claimant_then_retried_a_few_times(changes: dict[str, Any], minutes: int,
                                                                             reason: Reason) -> None:
    marker = _marker(MONDAY_0900, incoming=("engineer-on-call",), **changes)
    decision = handover_due(ROTATION, NY, marker, MONDAY_0900 + timedelta(minutes=minutes))
    assert decision.reason is reason
    if reason is Reason.RETRY:
        assert decision.handover is not None and decision.handover.incoming == ("engineer-on-call",)


def test_an_override_that_ends_or_is_removed_hands_the_role_back() -> None:
    override = Override(person="christian", start=T0, end=T0 + timedelta(hours=2))
    role = Role(shifts=(Shift(person="giles"),), overrides=(override,))
    seen = Marker(at=T0, people=("christian",), status="sent")
    ended = handover_due(role, NY, seen, T0 + timedelta(hours=2))
    assert ended.reason is Reason.DUE and ended.handover is not None
    assert (ended.handover.at, ended.handover.incoming) == (T0 + timedelta(hours=2), ("giles",))
    removed = handover_due(Role(shifts=(Shift(person="giles"),)), NY, seen, T0 + timedelta(minutes=30))
    assert removed.reason is Reason.DUE and removed.handover is not None
    assert removed.handover.at == T0 + timedelta(minutes=30)  # the schedule shows no change: it is now


def test_a_handover_that_only_takes_people_away_tells_nobody() -> None:
    daytime = Role(coverage="business-hours", shifts=(Shift(person="engineer-daytime", start="09:00", end="18:00"),))
    evening = T0.replace(hour=22, minute=1)  # 18:01 EDT
    seen = Marker(at=T0.replace(hour=13, minute=0), people=("engineer-daytime",), status="sent")
    assert handover_due(daytime, NY, seen, evening).reason is Reason.NOBODY_NEW


def _incident(number: int, severity: Severity, owner: str, **changes: Any) -> Incident:
    return Incident(id=f"inc-{number}", key=f"k{number}", kind="manual", title=f"checkout {number} down",
                    severity=severity, owner=owner, playbook=None, rule="test", opened_at=T0, last_seen=T0,
                    **changes)


def test_the_notice_lists_the_role_s_open_incidents_without_phi() -> None:
    routing = CONFIG.routing
    mine = _incident(1, Severity.SEV2, "engineering-oncall",
                     timeline=(TimelineEntry(at=T0, what="note: patient Jane Doe, DOB 1970-01-01"),))
    acked = _incident(2, Severity.SEV1, "founder-primary", status=IncidentStatus.ACKNOWLEDGED)  # in its chain
    resolved = _incident(3, Severity.SEV2, "engineering-oncall", status=IncidentStatus.RESOLVED)
    elsewhere = _incident(4, Severity.SEV3, "engineering-daytime")
    paged = _incident(5, Severity.SEV3, "engineering-daytime", pages=(PageRecord(
        id="p", step="0", role="engineering-oncall", person="engineer-on-call", channel="console",
        kind=PageKind.TRIGGER, at=T0, text="x"),))
    found = open_for_role([mine, acked, resolved, elsewhere, paged], "engineering-oncall", routing)
    assert [i.id for i in found] == ["inc-2", "inc-1", "inc-5"]
    handover = shifts.Handover(at=MONDAY_0900, until=None, people=("engineer-on-call",), incoming=("engineer-on-call",))
    text = notice_text("engineering-oncall", handover, found, NY)
    assert text == ("[ON CALL] you now hold engineering-oncall, from Mon 2025-03-17 09:00 (America/New_York) | "
                    "3 open for engineering-oncall: | [SEV1] inc-2 acknowledged: checkout 2 down | "
                    "[SEV2] inc-1 open: checkout 1 down | [SEV3] inc-5 open: checkout 5 down")
    assert "Jane" not in text
    many = notice_text("engineering-oncall", handover, [_incident(n, Severity.SEV1, "x") for n in range(80)], NY)
    assert len(many) <= SUMMARY_LIMIT and many.endswith("more")
    assert notice_text("backlog", handover, [], NY).endswith("| no open incidents for backlog")


def test_a_notice_skips_pagerduty_channels_for_the_fallback() -> None:
    routing = CONFIG.routing
    pd = ChannelConfig(type="pagerduty", routing_key_env="PD_KEY")
    people = {**routing.people, "giles": Person(channels=("pd", "console")),
              "christian": Person(channels=("pd",), fallback="console"), "engineer-on-call": Person(channels=("pd",))}
    routing = routing.model_copy(update={"channels": {**routing.channels, "pd": pd}, "people": people})
    assert notice_channels(routing, "giles") == ["console"]
    assert notice_channels(routing, "christian") == ["console"]
    assert notice_channels(routing, "engineer-on-call") == []
    assert notice_channels(routing, "engineer-daytime") == ["console"]


# --- the sweep, through the scheduled handler, on both stores ----------------------------------


@pytest.fixture(params=["sqlite", "dynamodb"])
def env(request: Any, tmp_path: Path, clock: FakeClock, console: RecordingChannel) -> Iterator[tuple[Client, Deps]]:
    folder = copy_config(tmp_path)
    routing = (folder / "routing.yaml").read_text()
    old = "    shifts: [{person: engineer-on-call}]\n"
    assert old in routing
    (folder / "routing.yaml").write_text(routing.replace(old, (
        "    shifts:\n"
        "      - {person: engineer-on-call, days: [mon, tue, wed], start: \"09:00\", end: \"09:00\"}\n"
        "      - {person: engineer-daytime, days: [thu, fri, sat, sun], start: \"09:00\", end: \"09:00\"}\n")))
    yield from app_on(request.param, tmp_path, clock, console, {"RESPONDER_CONFIG_DIR": str(folder)})


def sweep(http: Client) -> dict[str, Any]:
    event = http.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={},
                                          resources=["arn:aws:events:us-east-1:123456789012:rule/escalation_sweep"])
    return dict(http.lambda_.invoke("escalation_sweep", event).payload)


def notices(console: RecordingChannel) -> list[tuple[str, str, str]]:
    """(person, role, text) of each shift-change notice sent, and forget everything sent."""
    got = [(p.person, p.role, p.text) for p in console.sent if p.incident_id.startswith("shift:")]
    console.sent.clear()
    return got


def test_each_handover_is_told_once_to_whoever_now_holds_the_role(env: tuple[Client, Deps], clock: FakeClock,
                                                                   console: RecordingChannel) -> None:
    http, deps = env
    token = deps.tokens.create("giles", TokenRole.RESPONDER)[1]
    clock.now = MONDAY_0900 - timedelta(minutes=5)
    assert "shift_notices" not in sweep(http)  # the first look only remembers who holds each role
    opened = post(http, token, "/incidents", {"severity": 2, "title": "Acme: wrong totals"})
    assert opened.status_code == 201
    incident_id = opened.json_body["incident"]["id"]
    console.sent.clear()
    assert notices(console) == [] and "shift_notices" not in sweep(http)
    clock.now = MONDAY_0900 + timedelta(seconds=30)
    assert sweep(http)["shift_notices"] == {"engineering-oncall": "DUE", "engineering-daytime": "DUE"}
    (daytime, _, _), (person, role, text) = notices(console)
    assert daytime == "engineer-daytime"  # business hours open at 09:00 too
    assert (person, role) == ("engineer-on-call", "engineering-oncall")
    assert f"[SEV2] {incident_id} open: Acme: wrong totals" in text and "until Thu 2025-03-20 09:00" in text
    assert "shift_notices" not in sweep(http)  # a redelivered sweep in the same minute
    clock.advance(minutes=1)
    assert "shift_notices" not in sweep(http) and notices(console) == []
    stored, _ = deps.store.get_doc(DOC_KEY)
    assert stored is not None and stored["roles"]["engineering-oncall"]["status"] == "sent"
    # an override through the API hands founder-primary to christian, and back to giles at its end
    window = {"role": "founder-primary", "person": "christian", "from": (clock.now + timedelta(minutes=2)).isoformat(),
              "to": (clock.now + timedelta(hours=1)).isoformat()}
    assert post(http, token, "/oncall/overrides", window).status_code == 201
    clock.advance(minutes=2)
    assert sweep(http)["shift_notices"] == {"founder-primary": "DUE"}
    assert [(p, r) for p, r, _ in notices(console)] == [("christian", "founder-primary")]
    clock.advance(minutes=58)
    sweep(http)
    told = notices(console)
    assert [(p, r) for p, r, _ in told] == [("giles", "founder-primary")]
    assert f"[SEV2] {incident_id}" in told[0][2]  # founder-primary is a step of the Sev2 chain


def test_a_failed_notice_is_sent_again_by_the_next_sweep(env: tuple[Client, Deps], clock: FakeClock,
                                                          console: RecordingChannel) -> None:
    http, deps = env
    clock.now = MONDAY_0900 - timedelta(minutes=5)
    sweep(http)
    console.fail = True
    clock.now = MONDAY_0900
    assert sweep(http)["shift_notices"] == {"engineering-oncall": "DUE", "engineering-daytime": "DUE"}
    stored, _ = deps.store.get_doc(DOC_KEY)
    assert stored is not None and stored["roles"]["engineering-oncall"]["status"] == "failed"
    console.fail = False
    clock.advance(minutes=1)
    assert sweep(http)["shift_notices"] == {"engineering-oncall": "RETRY", "engineering-daytime": "RETRY"}
    assert [(p, r) for p, r, _ in notices(console)] == [("engineer-daytime", "engineering-daytime"),
                                                        ("engineer-on-call", "engineering-oncall")]
    clock.advance(minutes=1)
    assert "shift_notices" not in sweep(http) and notices(console) == []


class Interleaved:
    """The store, but right after the first read of the notices' document another sweep runs whole."""

    def __init__(self, store: Any, other: Any) -> None:
        self.store, self.other, self.writes_lost = store, other, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def get_doc(self, key: str) -> tuple[dict[str, Any] | None, int]:
        read = self.store.get_doc(key)
        if key == DOC_KEY and self.other is not None:
            other, self.other = self.other, None
            other()
        return read  # type: ignore[no-any-return]

    def put_doc(self, key: str, doc: dict[str, Any], expected_version: int) -> None:
        try:
            self.store.put_doc(key, doc, expected_version)
        except ConflictError:
            self.writes_lost += 1
            raise


def test_two_sweeps_at_once_send_one_notice(env: tuple[Client, Deps], clock: FakeClock,
                                             console: RecordingChannel) -> None:
    http, deps = env
    clock.now = MONDAY_0900 - timedelta(minutes=5)
    sweep(http)
    clock.now = MONDAY_0900
    deps.pipeline.refresh_schedule()
    racing = ShiftNotices(deps.pipeline)
    racing.store = interleaved = Interleaved(deps.store, lambda: ShiftNotices(deps.pipeline).sweep(clock.now))
    assert racing.sweep(clock.now) == {}  # decided again on the other's record: that notice is done
    assert interleaved.writes_lost == 1  # its claim lost to the other sweep's
    assert [(p, r) for p, r, _ in notices(console)] == [("engineer-daytime", "engineering-daytime"),
                                                        ("engineer-on-call", "engineering-oncall")]
