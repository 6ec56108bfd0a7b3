"""Escalation, acknowledgement and durable delivery, on a fake clock, on SQLite and DynamoDB (moto).

Every scenario runs the real pipeline (``on_event``) and the real sweep (``Escalator.sweep``)
minute by minute, as the scheduled Lambda would; channels record what they were asked to send.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib import config
from chalicelib.errors import ConfigError
from chalicelib.handlers import on_event
from chalicelib.models import IncidentStatus, PageKind, PageStatus
from chalicelib.settings import Settings
from chalicelib.store.dynamodb import DynamoStore
from chalicelib.wiring import Deps, build_deps
from tests.conftest import (
    AtomicRequests,
    FakeClock,
    RecordingChannel,
    config_with_channels,
    copy_config,
    load_event,
    new_id,
    sns_event,
)

T = datetime(2025, 3, 14, 14, 0, tzinfo=UTC)  # Friday 10:00 in New York


class Recorders:
    """One recording channel per configured channel name, so tests see who got what, where."""

    def __init__(self, names: list[str]) -> None:
        self.by_name = {name: RecordingChannel() for name in names}

    def factories(self) -> dict[str, Any]:
        return {name: (lambda ch=ch: ch) for name, ch in self.by_name.items()}

    def people(self, *channels: str) -> list[str]:
        return [p.person for name in (channels or self.by_name) for p in self.by_name[name].sent]


def deps_for(store: Any, clock: FakeClock, recorders: Recorders, config_dir: Path | None = None,
             env: dict[str, str] | None = None, transport: Any = None) -> Deps:
    if isinstance(store, DynamoStore):
        store = DynamoStore(store.table, client=AtomicRequests(store.client))
    settings = Settings.from_env({**(env or {}), **({"RESPONDER_CONFIG_DIR": str(config_dir)} if config_dir else {})})
    return build_deps(settings, clock=clock, store=store, channels=recorders.factories(), transport=transport)


def sweep_minutes(deps: Deps, clock: FakeClock, minutes: int, *, ack_at: int | None = None,
                  incident_id: str | None = None) -> None:
    start = clock.now
    for minute in range(1, minutes + 1):
        clock.now = start + timedelta(minutes=minute)
        if ack_at == minute and incident_id:
            deps.pipeline.acknowledge(incident_id, "giles")
        deps.pipeline.sweep()


def open_sev1(deps: Deps) -> str:
    outcome = on_event(load_event("eventbridge-cloudtrail-s3-putobjectretention.json"), "eventbridge", deps)
    first = outcome["outcomes"][0]
    assert first["severity"] == 1 and first["reason"] == "OPENED"
    return str(first["incident_id"])


def test_sev1_escalates_primary_backup_engineering_every_five_minutes(any_store: Any) -> None:
    clock, recorders = FakeClock(T), Recorders(["console"])
    deps = deps_for(any_store, clock, recorders)
    incident_id = open_sev1(deps)
    sent_at = []
    start = clock.now
    for minute in range(0, 15):
        clock.now = start + timedelta(minutes=minute)
        deps.pipeline.sweep()
        sent_at += [(minute, p.person) for p in recorders.by_name["console"].sent[len(sent_at):]]
    assert sent_at == [(0, "giles"), (5, "christian"), (10, "engineer-on-call")]
    incident = deps.store.get(incident_id)
    assert [p.kind for p in incident.pages] == [PageKind.TRIGGER, PageKind.ESCALATION, PageKind.ESCALATION]
    # the chain is complete; the sweep looks again when the next loop starts (nobody acknowledged)
    assert incident.next_action_at == T + timedelta(minutes=15)


def test_ack_stops_every_later_page(any_store: Any) -> None:
    clock, recorders = FakeClock(T), Recorders(["console"])
    deps = deps_for(any_store, clock, recorders)
    incident_id = open_sev1(deps)
    sweep_minutes(deps, clock, 30, ack_at=6, incident_id=incident_id)
    # paged: giles, christian; then both hear the acknowledgement, once, and nobody is paged again
    assert recorders.people() == ["giles", "christian", "giles", "christian"]
    assert [p.kind for p in recorders.by_name["console"].sent][-2:] == [PageKind.ACKNOWLEDGE] * 2
    incident = deps.store.get(incident_id)
    assert incident.status is IncidentStatus.ACKNOWLEDGED and incident.acknowledged_by == "giles"
    assert incident.time_to_acknowledge == 6 * 60
    # a repeat of the same call after the ack pages no one either
    repeat = load_event("eventbridge-cloudtrail-s3-putobjectretention.json") | {"id": new_id()}
    assert on_event(repeat, "eventbridge", deps)["outcomes"][0]["reason"] == "ALREADY_OPEN"
    assert len(recorders.people()) == 4
    # a resolve notification still goes to whoever was paged
    deps.pipeline.resolve(incident_id, "giles")
    assert recorders.people()[4:] == ["giles", "christian"]
    assert [p.kind for p in recorders.by_name["console"].sent][-2:] == [PageKind.RESOLVE, PageKind.RESOLVE]


def test_ack_that_lands_before_queued_page_is_sent_cancels_it(any_store: Any) -> None:
    clock, recorders = FakeClock(T), Recorders(["console"])
    deps = deps_for(any_store, clock, recorders)
    incident_id = open_sev1(deps)
    clock.now = T + timedelta(minutes=5)
    deps.pipeline.escalator.escalate(incident_id, clock.now)  # step 2 queued in the outbox ...
    deps.pipeline.acknowledge(incident_id, "giles")          # ... then the ack lands first
    deps.pipeline.sweep()
    assert recorders.people() == ["giles", "giles"]  # the page, then "acknowledged by giles"
    statuses = {p.person: p.status for p in deps.store.get(incident_id).pages if p.kind.calls_for_action}
    assert statuses == {"giles": PageStatus.SENT, "christian": PageStatus.CANCELLED}


def test_two_sweeps_at_the_same_moment_page_once(any_store: Any) -> None:
    clock, recorders = FakeClock(T), Recorders(["console"])
    deps = deps_for(any_store, clock, recorders)
    incident_id = open_sev1(deps)
    clock.now = T + timedelta(minutes=5)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def sweep() -> None:
        barrier.wait()
        try:
            deps.pipeline.sweep()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert recorders.people() == ["giles", "christian"]
    assert len(deps.store.get(incident_id).pages) == 2


class FlakyPagerDuty:
    """A PagerDuty Events API that answers 500 until ``up_at``, then 202."""

    def __init__(self, clock: FakeClock, up_at: datetime) -> None:
        self.clock, self.up_at = clock, up_at
        self.calls: list[tuple[datetime, int, dict[str, Any]]] = []

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Any:
        status = 202 if self.clock.now >= self.up_at else 500
        self.calls.append((self.clock.now, status, json.loads(body)))
        return type("R", (), {"status": status, "headers": {}, "body": b"{}"})()


def pagerduty_config(tmp_path: Path) -> Path:
    return config_with_channels(
        tmp_path, "  pagerduty-giles:\n    type: pagerduty\n    routing_key_env: PD_KEY_GILES\n"
                  "  sms-giles:\n    type: sns\n    topic_arn_env: GILES_SMS_TOPIC_ARN\n",
        {"giles": "[pagerduty-giles], fallback: sms-giles"})


def test_pagerduty_down_for_ten_minutes_delivers_once_per_channel_inside_response_time(
        any_store: Any, tmp_path: Path) -> None:
    clock, recorders = FakeClock(T), Recorders(["console", "sms-giles"])
    pagerduty = FlakyPagerDuty(clock, up_at=T + timedelta(minutes=10))
    deps = deps_for(any_store, clock, recorders, pagerduty_config(tmp_path),
                    env={"PD_KEY_GILES": "R0TESTKEY"}, transport=pagerduty)
    incident_id = open_sev1(deps)
    sweep_minutes(deps, clock, 14)  # the first loop (the second starts at +15)
    delivered = [(at, body) for at, status, body in pagerduty.calls if status == 202]
    assert len(delivered) == 1 and delivered[0][1]["dedup_key"] == f"{incident_id}/giles/0"
    assert delivered[0][0] <= T + timedelta(minutes=15)
    assert [p.person for p in recorders.by_name["sms-giles"].sent] == ["giles"]
    incident = deps.store.get(incident_id)
    giles = {p.channel: p for p in incident.pages if p.person == "giles"}
    assert giles["sms-giles"].sent_at is not None and giles["sms-giles"].sent_at <= T + timedelta(minutes=15)
    assert giles["sms-giles"].fallback_for == giles["pagerduty-giles"].id
    assert giles["pagerduty-giles"].status is PageStatus.SENT and giles["pagerduty-giles"].attempts > 3
    # retries backed off: never two PagerDuty calls inside 30 seconds
    times = [at for at, _, _ in pagerduty.calls]
    assert all(b - a >= timedelta(seconds=30) for a, b in itertools.pairwise(times))


def test_refused_page_goes_to_fallback_at_once(any_store: Any, tmp_path: Path) -> None:
    clock, recorders = FakeClock(T), Recorders(["console", "sms-giles"])

    class Refusing(FlakyPagerDuty):
        def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Any:
            self.calls.append((self.clock.now, 400, json.loads(body)))
            return type("R", (), {"status": 400, "headers": {}, "body": b"{}"})()

    deps = deps_for(any_store, clock, recorders, pagerduty_config(tmp_path), env={"PD_KEY_GILES": "K"},
                    transport=Refusing(clock, T))
    incident_id = open_sev1(deps)
    assert [p.person for p in recorders.by_name["sms-giles"].sent] == ["giles"]
    pages = {p.channel: p.status for p in deps.store.get(incident_id).pages if p.person == "giles"}
    assert pages == {"pagerduty-giles": PageStatus.GAVE_UP, "sms-giles": PageStatus.SENT}


def test_sev3_at_3am_new_york_pages_engineering_daytime_at_9(any_store: Any) -> None:
    night = datetime(2025, 3, 14, 7, 0, tzinfo=UTC)  # 03:00 EDT
    clock, recorders = FakeClock(night), Recorders(["console"])
    deps = deps_for(any_store, clock, recorders)
    event = sns_event("sns-cloudwatch-alarm-metric.json", message_id=new_id(), Trigger={"MetricName": "CPUUtilization", "Namespace": "AWS/EC2", "Dimensions": []})  # not customer-facing
    outcome = on_event(event, "sns", deps)["outcomes"][0]
    assert outcome["severity"] == 3 and outcome["pages"] == 0
    paged_at = None
    for minute in range(0, 7 * 60, 15):
        clock.now = night + timedelta(minutes=minute)
        deps.pipeline.sweep()
        if recorders.people() and paged_at is None:
            paged_at = clock.now
    assert paged_at == datetime(2025, 3, 14, 13, 0, tzinfo=UTC)  # 09:00 EDT
    assert recorders.people() == ["engineer-daytime"]


def test_gap_in_schedule_is_refused_naming_it(tmp_path: Path) -> None:
    copy_config(tmp_path)
    routing = (tmp_path / "routing.yaml").read_text().replace(
        "    shifts: [{person: engineer-on-call}]",
        "    shifts:\n"
        "      - {person: engineer-on-call, days: [mon, tue, wed, thu, fri, sat, sun], start: \"04:00\", end: \"02:00\"}")
    (tmp_path / "routing.yaml").write_text(routing)
    with pytest.raises(ConfigError) as info:
        config.load(tmp_path)
    message = str(info.value)
    assert "roles.engineering-oncall has nobody on call from Mon 02:00 to Mon 04:00" in message
    assert "6 more gaps" in message and "America/New_York" in message


def test_chain_that_cannot_finish_inside_response_time_is_refused(tmp_path: Path) -> None:
    copy_config(tmp_path)
    routing = (tmp_path / "routing.yaml").read_text().replace(
        "      - {role: engineering-oncall, after_minutes: 10}", "      - {role: engineering-oncall, after_minutes: 20}"
    ).replace("repeat_after_minutes: 15", "repeat_after_minutes: 30")
    (tmp_path / "routing.yaml").write_text(routing)
    with pytest.raises(ConfigError, match=r"escalation\.SEV1: the last step pages at \+20 min.*15-minute"):
        config.load(tmp_path)


def test_single_two_hour_gap_is_named_exactly(tmp_path: Path) -> None:
    copy_config(tmp_path)
    routing = (tmp_path / "routing.yaml").read_text().replace(
        "    shifts: [{person: engineer-on-call}]",
        "    shifts:\n"
        "      - {person: engineer-on-call, days: [mon, wed, thu, fri, sat, sun]}\n"
        "      - {person: engineer-on-call, days: [tue], start: \"00:00\", end: \"02:00\"}\n"
        "      - {person: engineer-on-call, days: [tue], start: \"04:00\", end: \"24:00\"}")
    (tmp_path / "routing.yaml").write_text(routing)
    with pytest.raises(ConfigError) as info:
        config.load(tmp_path)
    assert info.value.reason.endswith(
        "roles.engineering-oncall has nobody on call from Tue 02:00 to Tue 04:00 (America/New_York)")


def test_one_failing_channel_never_blocks_the_others(any_store: Any, tmp_path: Path) -> None:
    folder = pagerduty_config(tmp_path)
    routing = (folder / "routing.yaml").read_text().replace(
        "  giles: {channels: [pagerduty-giles], fallback: sms-giles}",
        "  giles: {channels: [pagerduty-giles, console], fallback: sms-giles}")
    (folder / "routing.yaml").write_text(routing)
    clock, recorders = FakeClock(T), Recorders(["console", "sms-giles"])
    deps = deps_for(any_store, clock, recorders, folder, env={"PD_KEY_GILES": "K"},
                    transport=FlakyPagerDuty(clock, up_at=T + timedelta(hours=1)))
    incident_id = open_sev1(deps)
    assert recorders.people("console") == ["giles"]
    pages = {p.channel: p.status for p in deps.store.get(incident_id).pages}
    assert pages == {"pagerduty-giles": PageStatus.FAILED, "console": PageStatus.SENT}
