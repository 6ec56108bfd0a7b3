"""On-call schedules and business hours: pure functions of the config and a moment."""

from __future__ import annotations

import itertools
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from chalicelib import cli, config
from chalicelib.config.routing import BusinessHours, Role
from chalicelib.decisions import escalation
from chalicelib.decisions.oncall import coverage_gaps, holders, in_business_hours, next_business_moment, same_person_at
from chalicelib.models import PageKind, PageRecord, PageStatus, Severity
from tests.conftest import CONFIG, copy_config

NY = ZoneInfo("America/New_York")
ROTATION = Role.model_validate({
    "coverage": "always",
    "shifts": [
        {"person": "alice", "days": ["mon", "tue", "wed"], "start": "09:00", "end": "09:00"},
        {"person": "bob", "days": ["thu", "fri", "sat", "sun"], "start": "09:00", "end": "09:00"},
    ],
    "overrides": [{"person": "carol", "start": "2026-12-02T09:00:00-05:00", "end": "2026-12-03T09:00:00-05:00"}],
})


@pytest.mark.parametrize("local, expected", [
    ("2026-11-30T10:00", ["alice"]),   # Monday
    ("2026-11-26T08:59", ["alice"]),   # Thursday before hand-off: Wednesday's shift runs to 09:00
    ("2026-12-03T09:00", ["bob"]),
    ("2026-11-30T08:59", ["bob"]),     # Sunday's shift runs into Monday morning
    ("2026-12-02T12:00", ["carol"]),   # override wins over Wednesday's shift
])
def test_holders_follow_shifts_handoffs_and_overrides(local: str, expected: list[str]) -> None:
    at = datetime.fromisoformat(local).replace(tzinfo=NY)
    assert holders(ROTATION, at, NY) == expected


def test_rotation_has_no_gap_and_a_missing_day_is_named() -> None:
    hours = BusinessHours()
    assert coverage_gaps(ROTATION, hours) == []
    partial = Role.model_validate({"shifts": [{"person": "a", "days": ["mon", "tue", "wed", "thu", "fri", "sat"]}]})
    assert coverage_gaps(partial, hours) == ["from Sun 00:00 to Mon 00:00"]


def test_business_hours_role_needs_only_business_hours() -> None:
    daytime = Role.model_validate({"coverage": "business-hours", "shifts": [
        {"person": "d", "days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}]})
    assert coverage_gaps(daytime, BusinessHours()) == [
        f"from {day} 17:00 to {day} 18:00" for day in ("Mon", "Tue", "Wed", "Thu", "Fri")]


def test_business_hours_follow_new_york_wall_clock_across_dst() -> None:
    hours = BusinessHours()
    winter = datetime(2025, 3, 7, 14, 0, tzinfo=UTC)   # 09:00 EST
    summer = datetime(2025, 3, 14, 13, 0, tzinfo=UTC)  # 09:00 EDT
    assert in_business_hours(hours, winter, NY) and in_business_hours(hours, summer, NY)
    assert not in_business_hours(hours, summer - timedelta(minutes=1), NY)
    friday_evening = datetime(2025, 3, 14, 22, 30, tzinfo=UTC)  # 18:30 EDT Friday
    assert next_business_moment(hours, friday_evening, NY) == datetime(2025, 3, 17, 9, 0, tzinfo=NY)


def test_shipped_schedule_has_everyone_where_the_runbook_says() -> None:
    night = datetime(2025, 3, 14, 7, 0, tzinfo=UTC)
    roles = {name: holders(role, night, NY) for name, role in CONFIG.routing.roles.items()}
    assert roles == {"founder-primary": ["giles"], "founder-backup": ["christian"],
                     "engineering-oncall": ["engineer-on-call"], "engineering-daytime": [], "backlog": []}


def page(attempts: int, at: datetime) -> PageRecord:
    return PageRecord(id="SEV1#0/0:giles:pd", step="SEV1#0/0", role="founder-primary", person="giles",
                      channel="pd", kind=PageKind.TRIGGER, at=at, text="x", status=PageStatus.SENDING,
                      attempts=attempts)


@pytest.mark.parametrize("attempts, delay_s, decision", [
    (1, 30, escalation.RetryDecision.RETRY),
    (2, 60, escalation.RetryDecision.RETRY),
    (3, 120, escalation.RetryDecision.RETRY_AND_FALLBACK),
    (9, 300, escalation.RetryDecision.RETRY_AND_FALLBACK),
])
def test_retry_backoff_and_fallback_after_three_failures(attempts: int, delay_s: int, decision: str) -> None:
    now = datetime(2025, 3, 14, 14, 0, tzinfo=UTC)
    failed, got = escalation.after_failure(page(attempts, now), True, None, now, CONFIG, Severity.SEV1)
    assert failed.status is PageStatus.FAILED and failed.next_attempt_at == now + timedelta(seconds=delay_s)
    assert got == decision


def test_retry_after_header_and_half_response_time() -> None:
    now = datetime(2025, 3, 14, 14, 0, tzinfo=UTC)
    failed, _ = escalation.after_failure(page(1, now), True, 240.0, now, CONFIG, Severity.SEV1)
    assert failed.next_attempt_at == now + timedelta(seconds=240)
    later = now + timedelta(minutes=7, seconds=30)  # half of Sev1's 15 minutes
    _, decision = escalation.after_failure(page(1, now), True, None, later, CONFIG, Severity.SEV1)
    assert decision is escalation.RetryDecision.RETRY_AND_FALLBACK
    gave_up, decision = escalation.after_failure(page(1, now), False, None, now, CONFIG, Severity.SEV1)
    assert gave_up.status is PageStatus.GAVE_UP and decision is escalation.RetryDecision.FALLBACK


# --- daylight-saving handovers: one meaning, nobody flips back ---------------------------------

SUNDAY_HANDOVER = Role.model_validate({"coverage": "always", "shifts": [
    {"person": "alice", "days": ["sat"], "start": "02:30", "end": "02:30"},
    {"person": "bob", "days": ["sun", "mon", "tue", "wed", "thu", "fri"], "start": "02:30", "end": "02:30"},
]})
FALL_HANDOVER = Role.model_validate({"coverage": "always", "shifts": [
    {"person": "alice", "days": ["sat"], "start": "01:30", "end": "01:30"},
    {"person": "bob", "days": ["sun", "mon", "tue", "wed", "thu", "fri"], "start": "01:30", "end": "01:30"},
]})


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize("at, expected", [
    ("2026-03-08T06:59", ["alice"]),  # 01:59 EST
    ("2026-03-08T07:00", ["bob"]),    # 03:00 EDT: a 02:30 handover happens at the first instant after the gap
    ("2026-03-08T07:30", ["bob"]),
])
def test_handover_at_a_nonexistent_local_time_happens_when_the_gap_ends(at: str, expected: list[str]) -> None:
    assert holders(SUNDAY_HANDOVER, utc(at), NY) == expected


@pytest.mark.parametrize("at, expected", [
    ("2026-11-01T05:29", ["alice"]),  # 01:29 EDT
    ("2026-11-01T05:30", ["bob"]),    # 01:30 EDT: the first occurrence
    ("2026-11-01T06:00", ["bob"]),    # 01:00 EST, the repeated hour: alice does not come back
    ("2026-11-01T06:29", ["bob"]),
    ("2026-11-01T06:59", ["bob"]),
    ("2026-11-01T07:00", ["bob"]),    # 02:00 EST
])
def test_handover_at_a_repeated_local_time_happens_once_at_the_first_occurrence(at: str, expected: list[str]) -> None:
    assert holders(FALL_HANDOVER, utc(at), NY) == expected


def test_no_holder_ever_flips_back_across_either_change() -> None:
    for role, day in ((SUNDAY_HANDOVER, "2026-03-08"), (FALL_HANDOVER, "2026-11-01")):
        start = utc(f"{day}T03:00")
        seen = [holders(role, start + timedelta(minutes=m), NY)[0] for m in range(6 * 60)]
        changes = [b for a, b in itertools.pairwise(seen) if a != b]
        assert changes == ["bob"], (day, changes)


def test_business_hours_starting_at_a_nonexistent_time_start_when_the_gap_ends() -> None:
    hours = BusinessHours.model_validate({"days": ["sun"], "start": "02:30", "end": "18:00"})
    before = utc("2026-03-08T06:00")  # 01:00 EST
    assert next_business_moment(hours, before, NY) == utc("2026-03-08T07:00")  # 03:00 EDT, not 03:30
    assert in_business_hours(hours, utc("2026-03-08T07:00"), NY)
    assert not in_business_hours(hours, utc("2026-03-08T06:59"), NY)


def test_business_hours_at_a_repeated_time_start_and_end_at_the_first_occurrence() -> None:
    starts = BusinessHours.model_validate({"days": ["sun"], "start": "01:30", "end": "18:00"})
    assert next_business_moment(starts, utc("2026-11-01T05:00"), NY) == utc("2026-11-01T05:30")
    assert all(in_business_hours(starts, utc("2026-11-01T05:30") + timedelta(minutes=m), NY) for m in range(120))
    ends = BusinessHours.model_validate({"days": ["sat"], "start": "09:00", "end": "01:30"})
    assert in_business_hours(ends, utc("2026-11-01T05:29"), NY)
    assert not any(in_business_hours(ends, utc("2026-11-01T05:30") + timedelta(minutes=m), NY) for m in range(120))


# --- one person holding two roles of one chain: a warning, not an error ----------------------

def test_shipped_routing_has_no_same_person_warning() -> None:
    assert CONFIG.warnings == ()


def weekend_backup_is_the_primary(folder: Path) -> Path:
    copy_config(folder)
    path = folder / "routing.yaml"
    old = "  founder-backup:\n    coverage: always\n    shifts: [{person: christian}]\n"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, "  founder-backup:\n    coverage: always\n    shifts:\n"
                                      "      - {person: christian, days: [mon, tue, wed, thu, fri]}\n"
                                      "      - {person: giles, days: [sat, sun]}\n"))
    return folder


def christmas_eve_swap(folder: Path) -> Path:
    copy_config(folder)
    path = folder / "routing.yaml"
    old = "  founder-primary:\n    coverage: always\n    shifts: [{person: giles}]\n"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, old + "    overrides:\n      - {person: christian, "
                                            "start: 2026-12-24T00:00:00-05:00, end: 2026-12-25T00:00:00-05:00}\n"))
    return folder


def test_weekly_same_person_in_two_chain_roles_is_a_warning_naming_roles_person_and_hours(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="responder"):
        loaded = config.load(weekend_backup_is_the_primary(tmp_path))
    [warning] = loaded.warnings
    assert warning.startswith(str(tmp_path / "routing.yaml") + ": ")
    assert ("roles founder-primary and founder-backup are both giles from Sat 00:00 to Mon 00:00 every week "
            "(America/New_York)") in warning
    assert warning in caplog.text


def test_override_that_makes_primary_the_backup_is_a_dated_warning(tmp_path: Path) -> None:
    [warning] = config.load(christmas_eve_swap(tmp_path)).warnings
    assert ("roles founder-primary and founder-backup are both christian from Thu 2026-12-24 00:00 "
            "to Fri 2026-12-25 00:00 (America/New_York, an override)") in warning


def test_same_person_at_a_moment(tmp_path: Path) -> None:
    routing = config.load(christmas_eve_swap(tmp_path)).routing
    assert same_person_at(routing, datetime(2026, 12, 24, 12, 0, tzinfo=NY)) == [
        ("founder-primary", "founder-backup", "christian")]
    assert same_person_at(routing, datetime(2026, 12, 25, 0, 0, tzinfo=NY)) == []


def test_oncall_command_shows_the_same_person_now_and_the_warnings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RESPONDER_CONFIG_DIR", str(christmas_eve_swap(tmp_path)))
    assert cli.main(["oncall", "--at", "2026-12-24T12:00:00-05:00"]) == 0
    out = capsys.readouterr().out
    assert "now: christian holds both founder-primary and founder-backup" in out
    assert "warning: " in out and "both christian from Thu 2026-12-24 00:00" in out
    assert cli.main(["oncall", "--at", "2026-12-26T12:00:00-05:00", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["same_person_now"] == [] and len(report["warnings"]) == 1
