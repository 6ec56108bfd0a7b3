"""Attacks on flapping (issue 14 §3): a quick recovery held open and quiet, resolved by the sweep.

Each test attacks one promise (the page path never goes silent; nothing an event says is lost; no
PHI) or the acceptance, on both stores wherever a store is involved."""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from chalicelib.handlers import on_event
from chalicelib.models import IncidentStatus, PageKind
from chalicelib.store import full_timeline
from chalicelib.store.dynamodb import DynamoStore
from chalicelib.store.sqlite import SqliteStore
from chalicelib.wiring import Deps
from tests.conftest import T0, FakeClock, RecordingChannel, copy_config, create_table, make_deps, new_id, sns_event
from tests.test_grouping import NIGHT, feed, night_deps  # noqa: F401  (the fixture: shipped config, either store)
from tests.test_night_replay import store_url  # noqa: F401  (the fixture: the CLI on either store)
from tests.test_silences import ALARM, WINDOW, World, worlds

STORES = ["sqlite", "dynamodb"]


def actionable(channel: RecordingChannel, incident_id: str | None = None) -> list[Any]:
    return [p for p in channel.sent if p.kind in (PageKind.TRIGGER, PageKind.ESCALATION)
            and (incident_id is None or p.incident_id == incident_id)]


def sweep_for(deps: Deps, clock: FakeClock, minutes: int) -> None:
    for _ in range(minutes):
        clock.advance(minutes=1)
        deps.pipeline.sweep()


@pytest.fixture(params=STORES)
def world(request: Any, tmp_path: Path, clock: FakeClock, console: RecordingChannel) -> Iterator[World]:
    """The shipped config, flapping ``{4, 10, 10}``, through the app on either store."""
    yield from worlds(request.param, tmp_path, clock, console)


def test_a_silenced_alarm_that_flaps_and_recovers_inside_its_window_never_pages(world: World) -> None:
    """Attacks silences: a flapping hold (not only a first quick recovery) of a silenced alarm must not
    page when the window ends while the recovery is held."""
    window = {**WINDOW, "ends_at": (T0 + timedelta(minutes=10)).isoformat()}
    assert world.silence(window).status_code == 201
    for minute, state in ((0, "ALARM"), (1, "OK"), (2, "ALARM"), (3, "OK")):
        world.clock.now = T0 + timedelta(minutes=minute)
        world.alarm(state)
    sweep_for(world.deps, world.clock, 20)  # the window ends at +10, the recovery (+3) is quiet from then
    assert actionable(world.console) == [] and world.console.sent == []
    assert all(i.status is IncidentStatus.RESOLVED for i in world.deps.store.list())


SEV1 = "Checkout API returns 5xx.\nseverity: SEV1"


def alarm(deps: Deps, state: str, description: str | None = None) -> dict[str, Any]:
    """The checkout 5xx alarm (a SEV2 by the matrix, SEV1 when its description says so) in ``state``."""
    changes: dict[str, Any] = {"NewStateValue": state}
    if description:
        changes["AlarmDescription"] = description
    [outcome] = on_event(sns_event(ALARM, message_id=new_id(), **changes), "sns", deps)["outcomes"]
    return dict(outcome)


def paged(channel: RecordingChannel) -> list[tuple[str, PageKind]]:
    return [(p.person, p.kind) for p in actionable(channel)]


def test_a_worse_severity_while_a_recovery_is_held_pages_the_new_owner_at_once(world: World) -> None:
    """Attacks the page path: a SEV1 trigger during a held recovery must page the SEV1 chain in that delivery."""
    opened = alarm(world.deps, "ALARM")
    assert paged(world.console) == [("engineer-on-call", PageKind.TRIGGER)]
    world.clock.advance(minutes=1)
    assert alarm(world.deps, "OK")["reason"] == "RECOVERY_HELD"
    world.clock.advance(minutes=1)
    raised = alarm(world.deps, "ALARM", SEV1)
    assert raised["reason"] == "SEVERITY_RAISED" and raised["incident_id"] == opened["incident_id"]
    assert raised["pages"] == 1 and paged(world.console)[1:] == [("giles", PageKind.ESCALATION)]
    incident = world.deps.store.get(opened["incident_id"])
    assert incident is not None and incident.flap is not None and incident.flap.quiet_since is None
    sweep_for(world.deps, world.clock, 11)  # the SEV1 chain goes on: backup at +5, on-call at +10
    assert [person for person, _ in paged(world.console)][1:] == ["giles", "christian", "engineer-on-call"]
    assert world.deps.store.get(opened["incident_id"]).is_open  # type: ignore[union-attr]


def test_a_chain_resumed_after_a_void_hold_pages_each_step_that_fell_due_once(world: World) -> None:
    """Attacks escalation: steps that fell due during the hold page once each after a re-fire, none twice."""
    alarm(world.deps, "ALARM", SEV1)
    world.clock.advance(minutes=1)
    assert alarm(world.deps, "OK", SEV1)["reason"] == "RECOVERY_HELD"
    sweep_for(world.deps, world.clock, 7)  # +8: backup's step (+5) fell due, paused
    assert paged(world.console) == [("giles", PageKind.TRIGGER)]
    assert alarm(world.deps, "ALARM", SEV1)["reason"] == "ALREADY_OPEN"
    sweep_for(world.deps, world.clock, 4)  # +12: backup now, on-call at +10
    assert [person for person, _ in paged(world.console)] == ["giles", "christian", "engineer-on-call"]
    sweep_for(world.deps, world.clock, 2)
    assert len(paged(world.console)) == 3


def test_an_acknowledged_alarm_that_recovers_quickly_is_resolved_after_the_stable_period_once(world: World) -> None:
    """Attacks acknowledgement: a held recovery of an acknowledged incident resolves once, told once, never re-pages."""
    opened = alarm(world.deps, "ALARM")
    world.clock.advance(minutes=1)
    world.deps.pipeline.acknowledge(opened["incident_id"], by="engineer-on-call")
    world.clock.advance(minutes=1)
    assert alarm(world.deps, "OK")["reason"] == "RECOVERY_HELD"
    world.clock.advance(minutes=1)
    assert alarm(world.deps, "ALARM")["reason"] == "ALREADY_OPEN"  # fired again: still acknowledged, nobody paged
    world.clock.advance(minutes=1)
    assert alarm(world.deps, "OK")["reason"] == "FLAPPING"  # the fourth change in ten minutes
    sweep_for(world.deps, world.clock, 11)
    incident = world.deps.store.get(opened["incident_id"])
    assert incident is not None and incident.status is IncidentStatus.RESOLVED
    assert incident.acknowledged_by == "engineer-on-call"
    kinds = Counter(p.kind for p in world.console.sent)
    assert kinds[PageKind.TRIGGER] == 1 and kinds[PageKind.RESOLVE] == 1 and kinds[PageKind.ESCALATION] == 0


def test_insufficient_data_between_states_is_noted_and_neither_voids_nor_extends_a_hold(world: World) -> None:
    """Attacks "nothing is lost": INSUFFICIENT_DATA during a hold is on the timeline, changes nothing."""
    opened = alarm(world.deps, "ALARM")
    world.clock.advance(minutes=1)
    assert alarm(world.deps, "INSUFFICIENT_DATA")["reason"] == "ANNOTATED"
    world.clock.advance(minutes=1)
    assert alarm(world.deps, "OK")["reason"] == "RECOVERY_HELD"  # two minutes after its trigger
    world.clock.advance(minutes=5)
    assert alarm(world.deps, "INSUFFICIENT_DATA")["reason"] == "ANNOTATED"
    sweep_for(world.deps, world.clock, 4)  # +11: quiet for 9 minutes since the OK
    assert world.deps.store.get(opened["incident_id"]).is_open  # type: ignore[union-attr]
    sweep_for(world.deps, world.clock, 1)
    incident = world.deps.store.get(opened["incident_id"])
    assert incident is not None and incident.status is IncidentStatus.RESOLVED and incident.flap is not None
    assert incident.flap.count == 2
    timeline = [e.what for e in full_timeline(world.deps.store, incident)]
    assert sum(1 for t in timeline if t.startswith("noted: ")) == 2
    assert Counter(p.kind for p in world.console.sent) == {PageKind.TRIGGER: 1, PageKind.RESOLVE: 1}


@pytest.fixture(params=STORES)
def shared(request: Any, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """Stores on one database: each call is another Lambda's connection to it."""
    if request.param == "sqlite":
        yield lambda: SqliteStore(tmp_path / "shared.db")
        return
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        table = create_table(client)
        yield lambda: DynamoStore(table, client=client)


def without_flapping(tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "no-flapping"
    folder.mkdir()
    copy_config(folder)
    routing = yaml.safe_load((folder / "routing.yaml").read_text())
    del routing["flapping"]
    (folder / "routing.yaml").write_text(yaml.safe_dump(routing))
    return {"RESPONDER_CONFIG_DIR": str(folder)}


def test_without_flapping_config_a_quick_recovery_resolves_at_once_and_a_refire_pages_again(
        shared: Callable[[], Any], tmp_path: Path, clock: FakeClock, console: RecordingChannel) -> None:
    """Attacks a config without ``flapping:``: nothing is held, each fire is its own incident and page."""
    deps = make_deps(shared(), clock, console, without_flapping(tmp_path))
    first = alarm(deps, "ALARM")
    clock.advance(minutes=1)
    assert alarm(deps, "OK")["reason"] == "RESOLVED"
    clock.advance(minutes=1)
    second = alarm(deps, "ALARM")
    assert second["reason"] == "OPENED" and second["incident_id"] != first["incident_id"]
    assert paged(console) == [("engineer-on-call", PageKind.TRIGGER)] * 2
    incident = deps.store.get(first["incident_id"])
    assert incident is not None and incident.flap is None


def test_a_hold_left_by_a_config_with_flapping_does_not_pause_the_chain_under_one_without(
        shared: Callable[[], Any], tmp_path: Path, clock: FakeClock, console: RecordingChannel) -> None:
    """Attacks the page path across a deploy that drops ``flapping:``: the alarm fires again during the
    hold and its chain must go on (founder at +60), not wait for a resolve that no config will make."""
    before = make_deps(shared(), clock, console)
    after = make_deps(shared(), clock, console, without_flapping(tmp_path))
    opened = alarm(before, "ALARM")
    clock.advance(minutes=1)
    assert alarm(before, "OK")["reason"] == "RECOVERY_HELD"
    clock.advance(minutes=1)
    assert alarm(after, "ALARM")["reason"] == "ALREADY_OPEN"
    sweep_for(after, clock, 60)
    assert paged(console) == [("engineer-on-call", PageKind.TRIGGER), ("giles", PageKind.ESCALATION)]
    assert after.store.get(opened["incident_id"]).is_open  # type: ignore[union-attr]


def test_a_hold_left_by_a_config_with_flapping_resolves_under_one_without(
        shared: Callable[[], Any], tmp_path: Path, clock: FakeClock, console: RecordingChannel) -> None:
    """Attacks a deploy that drops ``flapping:`` during a hold: the recovered alarm is resolved by the next
    sweep, not left open forever with its chain paused."""
    before = make_deps(shared(), clock, console)
    after = make_deps(shared(), clock, console, without_flapping(tmp_path))
    opened = alarm(before, "ALARM")
    clock.advance(minutes=1)
    assert alarm(before, "OK")["reason"] == "RECOVERY_HELD"
    sweep_for(after, clock, 10)  # the sweep looks at it when the old config would have resolved it
    incident = after.store.get(opened["incident_id"])
    assert incident is not None and incident.status is IncidentStatus.RESOLVED
    assert Counter(p.kind for p in console.sent) == {PageKind.TRIGGER: 1, PageKind.RESOLVE: 1}


def test_a_refire_on_another_lambda_that_remembered_the_alarm_voids_the_hold(
        shared: Callable[[], Any], clock: FakeClock, console: RecordingChannel) -> None:
    """Attacks the hot path: lambda A remembers the alarm as a plain repeat; after B held its recovery, A's
    re-fire must take the full path (the hold void, the change counted), not be counted under the hold."""
    a, b = make_deps(shared(), clock, console), make_deps(shared(), clock, console)
    opened = alarm(a, "ALARM")
    clock.advance(minutes=1)
    assert alarm(b, "OK")["reason"] == "RECOVERY_HELD"
    clock.advance(minutes=1)
    again = alarm(a, "ALARM")
    assert again["reason"] == "ALREADY_OPEN" and again["incident_id"] == opened["incident_id"]
    incident = a.store.get(opened["incident_id"])
    assert incident is not None and incident.flap is not None
    assert incident.flap.quiet_since is None and incident.flap.count == 3
    sweep_for(b, clock, 60)  # not resolved by the sweep as if quiet; the chain goes on to the founder at +60
    assert paged(console) == [("engineer-on-call", PageKind.TRIGGER), ("giles", PageKind.ESCALATION)]
    assert a.store.get(opened["incident_id"]).is_open  # type: ignore[union-attr]


def test_a_redelivered_trigger_during_a_hold_is_a_duplicate_and_leaves_the_hold(world: World) -> None:
    """Attacks redelivery: SNS delivering the opening ALARM again (same MessageId) is no new trigger."""
    first = sns_event(ALARM, message_id=new_id(), NewStateValue="ALARM")
    [opened] = on_event(first, "sns", world.deps)["outcomes"]
    world.clock.advance(minutes=1)
    ok = sns_event(ALARM, message_id=new_id(), NewStateValue="OK")
    assert on_event(ok, "sns", world.deps)["outcomes"][0]["reason"] == "RECOVERY_HELD"
    world.clock.advance(minutes=1)
    for again in (first, ok):
        assert on_event(again, "sns", world.deps)["outcomes"][0]["reason"] == "DUPLICATE"
    incident = world.deps.store.get(opened["incident_id"])
    assert incident is not None and incident.flap is not None
    assert incident.flap.quiet_since == T0 + timedelta(minutes=1) and incident.flap.count == 2
    sweep_for(world.deps, world.clock, 9)
    assert world.deps.store.get(opened["incident_id"]).status is IncidentStatus.RESOLVED  # type: ignore[union-attr]


@pytest.mark.parametrize("winner", ["trigger", "sweep"])
def test_a_trigger_racing_the_sweeps_resolve_is_never_lost(
        winner: str, shared: Callable[[], Any], clock: FakeClock, console: RecordingChannel,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Attacks the race: a re-fire on lambda B between the sweep's read and its resolving write (and the
    sweep's resolve between B's read and write) ends with the alarm firing on exactly one open, paged incident."""
    sweeper, firer = make_deps(shared(), clock, console), make_deps(shared(), clock, console)
    opened = alarm(sweeper, "ALARM")
    clock.advance(minutes=1)
    assert alarm(sweeper, "OK")["reason"] == "RECOVERY_HELD"
    clock.advance(minutes=10)  # quiet for the stable period: this sweep resolves it
    fired: list[dict[str, Any]] = []
    if winner == "trigger":
        save = sweeper.store.save

        def trigger_first(incident: Any) -> Any:
            if incident.status is IncidentStatus.RESOLVED and not fired:
                fired.append(alarm(firer, "ALARM"))
            return save(incident)
        monkeypatch.setattr(sweeper.store, "save", trigger_first)
        sweeper.pipeline.sweep()
    else:
        save = firer.store.save

        def sweep_first(incident: Any) -> Any:
            if not fired:
                fired.append({})
                sweeper.pipeline.sweep()
            return save(incident)
        monkeypatch.setattr(firer.store, "save", sweep_first)
        fired.append(alarm(firer, "ALARM"))
    outcome = fired[-1]
    open_now = [i for i in sweeper.store.list() if i.is_open]
    assert len(open_now) == 1 and open_now[0].id == outcome["incident_id"]
    if winner == "trigger":
        assert outcome["reason"] == "ALREADY_OPEN" and outcome["incident_id"] == opened["incident_id"]
        assert open_now[0].flap is not None and open_now[0].flap.quiet_since is None
        assert Counter(p.kind for p in console.sent) == {PageKind.TRIGGER: 1}
    else:
        assert outcome["reason"] == "OPENED" and outcome["incident_id"] != opened["incident_id"]
        assert Counter(p.kind for p in console.sent) == {PageKind.TRIGGER: 2, PageKind.RESOLVE: 1}


PHI = "patient Jane Roe MRN 00412345"


def test_no_phi_from_the_alarm_reaches_the_hold_its_void_or_the_sweeps_resolve(world: World) -> None:
    """Attacks PHI: the texts flapping adds (held, fired again, flapping, resolved after quiet) never quote
    an alarm's description or reason, where PHI can sit."""
    for minute, state in ((0, "ALARM"), (1, "OK"), (2, "ALARM"), (3, "OK"), (4, "ALARM"), (5, "OK")):
        world.clock.now = T0 + timedelta(minutes=minute)
        event = sns_event(ALARM, message_id=new_id(), NewStateValue=state, AlarmDescription=f"Checkout 5xx. {PHI}",
                          NewStateReason=f"Threshold crossed for {PHI}")
        on_event(event, "sns", world.deps)
    sweep_for(world.deps, world.clock, 11)
    [incident] = world.deps.store.list()
    assert incident.status is IncidentStatus.RESOLVED and incident.flap is not None and incident.flap.count == 6
    texts = [e.what for e in full_timeline(world.deps.store, incident)] + [p.text for p in world.console.sent]
    assert any("held" in t for t in texts) and any("flapping" in t for t in texts)
    assert not any("Jane Roe" in t or "00412345" in t for t in texts)
    assert "00412345" not in incident.model_dump_json()


def test_only_alarms_are_held_a_heartbeat_that_beats_again_resolves_at_once() -> None:
    """Attacks the heartbeat sweep: a missed beat's incident is no alarm, so its quick recovery is never held."""
    from chalicelib.decisions import flapping
    from tests.conftest import CONFIG

    assert flapping.opened("heartbeat", T0, CONFIG.routing.flapping) is None
    assert flapping.opened("alarm", T0, CONFIG.routing.flapping) is not None


def test_a_quick_recovery_replayed_through_the_cli_is_held_and_the_escalate_command_resolves_it(
        store_url: str) -> None:  # noqa: F811
    """Attacks the replay: the night's 5xx alarm replayed without its cause is held (not lost, not open
    for ever): ``escalate --now`` after the stable period resolves it, one page and one resolve notice."""
    from chalicelib.cli import main
    from chalicelib.store import open_store

    for name, at in (("06-alarm-5xx.json", "2025-03-15T06:01:02Z"), ("10-alarm-5xx-repeat.json", "2025-03-15T06:02:02Z"),
                     ("11-alarm-5xx-ok.json", "2025-03-15T06:04:02Z")):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["replay", str(NIGHT / name), "--now", at]) == 0
    reasons = [json.loads(line)["reason"] for line in out.getvalue().splitlines()]
    assert reasons == ["RECOVERY_HELD"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["escalate", "--now", "2025-03-15T06:13:02Z"]) == 0
        store = open_store(store_url, dynamodb_client=boto3.client("dynamodb", region_name="us-east-1")
                           if store_url.startswith("dynamodb") else None)
        assert [i.status for i in store.list()] == [IncidentStatus.OPEN]
        assert main(["escalate", "--now", "2025-03-15T06:14:02Z"]) == 0
    [incident] = store.list()
    assert incident.status is IncidentStatus.RESOLVED and incident.count == 2
    assert Counter((p.kind, p.status.value) for p in incident.pages) == {
        (PageKind.TRIGGER, "sent"): 1, (PageKind.RESOLVE, "sent"): 1}


def test_an_effect_arriving_while_its_causes_recovery_is_held_pages_at_once_and_once(
        night_deps: tuple[Deps, RecordingChannel, FakeClock]) -> None:  # noqa: F811
    """Attacks inhibition: a cause that recovered (its recovery held) explains nothing new: the 5xx
    alarm arriving then pages at once, not when the sweep resolves the cause, and only once."""
    deps, channel, clock = night_deps
    cause = feed(deps, "18-alarm-unhealthy-hosts.json")
    clock.advance(minutes=3)
    assert feed(deps, "25-alarm-unhealthy-hosts-ok.json")["reason"] == "RECOVERY_HELD"
    clock.advance(minutes=1)
    effect = feed(deps, "06-alarm-5xx.json")
    assert effect["reason"] == "OPENED" and len(actionable(channel, effect["incident_id"])) == 1
    sweep_for(deps, clock, 9)  # +13: the cause quiet for 10 minutes since +3
    assert deps.store.get(cause["incident_id"]).status is IncidentStatus.RESOLVED  # type: ignore[union-attr]
    sweep_for(deps, clock, 5)
    assert len(actionable(channel, effect["incident_id"])) == 1


def test_a_maintenance_window_starting_during_a_hold_leaves_its_resolve_notice(world: World) -> None:
    """Attacks silences: a silence that starts while a paged alarm's recovery is held must not swallow the
    resolve notice owed to whoever was paged."""
    opened = alarm(world.deps, "ALARM")
    world.clock.advance(minutes=1)
    assert alarm(world.deps, "OK")["reason"] == "RECOVERY_HELD"
    world.clock.advance(minutes=1)
    window = {**WINDOW, "starts_at": world.clock.now.isoformat()}
    assert world.silence(window).status_code == 201
    sweep_for(world.deps, world.clock, 10)
    assert world.deps.store.get(opened["incident_id"]).status is IncidentStatus.RESOLVED  # type: ignore[union-attr]
    assert [(p.person, p.kind) for p in world.console.sent] == [
        ("engineer-on-call", PageKind.TRIGGER), ("engineer-on-call", PageKind.RESOLVE)]


def test_a_shift_notice_still_lists_an_incident_whose_recovery_is_held() -> None:
    """Attacks the shift-notice sweep: a held recovery is open until the sweep resolves it, so the incoming
    on-call is told of it (it may fire again on their watch and resume its chain)."""
    from chalicelib.decisions.incidents import Reason, flap_decision, new_incident
    from chalicelib.decisions.shifts import Handover, notice_text, open_for_role
    from chalicelib.models import Transition
    from tests.test_flapping import C, flapping_config, signal

    config = flapping_config()
    opened = new_incident("inc-held", signal(Transition.TRIGGER, 0), C, T0, config)
    reason, held = flap_decision(Reason.RESOLVED, opened, signal(Transition.RESOLVE, 1), T0 + timedelta(minutes=1),
                                 config)
    assert reason is Reason.RECOVERY_HELD and held is not None
    listed = open_for_role([held], "engineering-oncall", config.routing)
    assert listed == [held]
    text = notice_text("engineering-oncall", Handover(at=T0 + timedelta(minutes=2), until=None, people=("x",),
                                                 incoming=("x",)), listed,
                       config.routing.zone)
    assert "inc-held recovering: db-cpu-high" in text  # open until the sweep resolves it, and says why
    assert "inc-held open: db-cpu-high" in notice_text("engineering-oncall", Handover(
        at=T0, until=None, people=("x",), incoming=("x",)), [opened], config.routing.zone)


def test_a_flapping_sev1_nobody_acknowledges_still_escalates_and_everyone_paged_hears_the_resolve_once(
        world: World) -> None:
    """Attacks the page path under the acceptance's storm: 30 transitions in 20 minutes of a SEV1 are one
    incident and one trigger page, but holds must not freeze its chain (backup, on-call, the 15-minute loop)."""
    reasons: Counter[str] = Counter()
    for n in range(30):
        reasons[alarm(world.deps, "ALARM" if n % 2 == 0 else "OK", SEV1)["reason"]] += 1
        world.clock.advance(seconds=40)
        world.deps.pipeline.sweep()
    assert reasons == {"OPENED": 1, "RECOVERY_HELD": 1, "ALREADY_OPEN": 1, "FLAPPING": 27}
    chain_then_loop = ("christian", "engineer-on-call", "giles", "christian", "engineer-on-call")
    assert paged(world.console) == [("giles", PageKind.TRIGGER)] + [
        (person, PageKind.ESCALATION) for person in chain_then_loop]
    sweep_for(world.deps, world.clock, 12)
    [incident] = world.deps.store.list()
    assert incident.status is IncidentStatus.RESOLVED
    assert sorted(p.person for p in world.console.sent if p.kind is PageKind.RESOLVE) == [
        "christian", "engineer-on-call", "giles"]


@pytest.mark.parametrize("late", [False, True], ids=["cause-first", "late-cause"])
def test_a_cause_alarm_whose_quick_recovery_the_sweep_resolves_releases_the_effect_it_held(
        late: bool, night_deps: tuple[Deps, RecordingChannel, FakeClock]) -> None:  # noqa: F811
    """Attacks the page path: the unhealthy-hosts alarm holds the 5xx alarm (inhibited, or taken over after
    it paged) and recovers within minutes; when the sweep resolves it the still-firing 5xx alarm pages."""
    deps, channel, clock = night_deps
    cause_then_effect = ("18-alarm-unhealthy-hosts.json", "06-alarm-5xx.json")
    first, second = cause_then_effect[::-1] if late else cause_then_effect
    one = feed(deps, first)
    clock.advance(seconds=20)
    two = feed(deps, second)
    cause, effect = (two, one) if late else (one, two)
    assert deps.store.get(effect["incident_id"]).held_by == cause["incident_id"]  # type: ignore[union-attr]
    paged_before = len(actionable(channel, effect["incident_id"]))
    assert paged_before == (1 if late else 0)
    clock.advance(minutes=3)
    assert feed(deps, "25-alarm-unhealthy-hosts-ok.json")["reason"] == "RECOVERY_HELD"
    sweep_for(deps, clock, 12)
    assert deps.store.get(cause["incident_id"]).status is IncidentStatus.RESOLVED  # type: ignore[union-attr]
    released = deps.store.get(effect["incident_id"])
    assert released is not None and released.held is None
    assert len(actionable(channel, effect["incident_id"])) == paged_before + 1  # still firing: it pages (afresh)
