"""Flapping (issue 14 §3): ``decisions/flapping.py`` (pure), the incident decision that counts state
changes, and the acceptance on both stores: a flapping alarm (30 transitions in 20 minutes) is one
incident, one page and one resolve, after the stable period."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from chalicelib.config.routing import Flapping
from chalicelib.decisions import escalation, flapping
from chalicelib.decisions.flapping import FlapReason, StableReason
from chalicelib.decisions.incidents import Reason, flap_decision, new_incident, settled
from chalicelib.models import Classification, IncidentStatus, PageKind, Severity, Signal, Transition
from chalicelib.store import bounds, full_timeline
from tests.conftest import CONFIG, T0, FakeClock, RecordingChannel, copy_config, new_id, sns_event
from tests.test_silences import World, worlds

ALARM = "sns-cloudwatch-alarm-metric.json"
SETTINGS = Flapping(transitions=4, minutes=10, stable_minutes=10)


# --- the pure decisions ------------------------------------------------------------------------------


def test_changes_are_kept_within_the_window_and_at_most_n() -> None:
    state = flapping.opened("alarm", T0, SETTINGS)
    assert state is not None and state.changes == (T0,) and state.count == 1
    for minute in (1, 2, 3, 4, 5):
        state = flapping.changed(state, T0 + timedelta(minutes=minute), SETTINGS)
    assert state.count == 6 and len(state.changes) == 4 and state.changes[-1] == T0 + timedelta(minutes=5)
    later = flapping.changed(state, T0 + timedelta(minutes=30), SETTINGS)
    assert later.changes == (T0 + timedelta(minutes=30),) and later.count == 7


def test_n_changes_within_m_minutes_is_flapping() -> None:
    state = flapping.opened("alarm", T0, SETTINGS)
    for minute, expected in ((1, FlapReason.NOT_FLAPPING), (2, FlapReason.NOT_FLAPPING), (3, FlapReason.STARTED)):
        state = flapping.changed(state, T0 + timedelta(minutes=minute), SETTINGS)
        assert flapping.on_change(state, T0 + timedelta(minutes=minute), SETTINGS, "alarm") is expected
    assert flapping.on_change(state.model_copy(update={"since": T0}), T0, SETTINGS, "alarm") is FlapReason.FLAPPING
    spread = flapping.opened("alarm", T0, SETTINGS)
    for minute in (4, 8, 12):  # four changes, but never four within ten minutes
        spread = flapping.changed(spread, T0 + timedelta(minutes=minute), SETTINGS)
        assert flapping.on_change(spread, T0 + timedelta(minutes=minute), SETTINGS, "alarm") \
            is FlapReason.NOT_FLAPPING


def test_an_incident_hands_on_its_changes_only_when_it_fired_and_recovered_within_m() -> None:
    quick = flapping.changed(flapping.opened("alarm", T0, SETTINGS), T0 + timedelta(minutes=2), SETTINGS)
    assert flapping.worth_carrying(quick, T0 + timedelta(minutes=2), SETTINGS) == (T0, T0 + timedelta(minutes=2))
    slow = flapping.changed(flapping.opened("alarm", T0, SETTINGS), T0 + timedelta(minutes=62), SETTINGS)
    assert flapping.worth_carrying(slow, T0 + timedelta(minutes=62), SETTINGS) == ()
    assert flapping.worth_carrying(quick, T0, None) == ()
    fresh = flapping.opened("alarm", T0 + timedelta(minutes=3), SETTINGS)
    assert fresh is not None
    joined = flapping.carried(fresh, (T0 - timedelta(minutes=20), T0, T0 + timedelta(minutes=2)),
                              T0 + timedelta(minutes=3), SETTINGS)
    assert joined.changes == (T0, T0 + timedelta(minutes=2), T0 + timedelta(minutes=3))  # the old one is out of M
    assert flapping.on_change(joined, T0 + timedelta(minutes=3), SETTINGS, "alarm") is FlapReason.NOT_FLAPPING


def test_only_alarms_flap_and_only_when_configured() -> None:
    assert flapping.opened("sentry_issue", T0, SETTINGS) is None
    assert flapping.opened("alarm", T0, None) is None
    state = flapping.opened("alarm", T0, SETTINGS)
    assert flapping.on_change(state, T0, None, "alarm") is FlapReason.OFF
    assert flapping.on_change(state, T0, SETTINGS, "sentry_issue") is FlapReason.OFF


def signal(transition: Transition, minute: float, severity_word: str = "") -> Signal:
    return Signal(kind="alarm", source="cloudwatch", delivery_id=f"d-{minute}", incident_key="alarm:x",
                  transition=transition, occurred_at=T0, title=f"db-cpu-high{severity_word}")


C = Classification(severity=Severity.SEV2, owner="engineering-oncall", response_minutes=15, playbook=None,
                   rule="test")


def flapping_config(transitions: int = 4) -> Any:
    routing = CONFIG.routing.model_copy(update={"flapping": Flapping(transitions=transitions, minutes=10,
                                                                     stable_minutes=10)})
    return CONFIG.model_copy(update={"routing": routing})


@pytest.mark.parametrize(("n", "held_as", "held_text", "fired_as", "fired_text", "after"), [
    # N=2: the recovery one minute after firing makes it flapping
    (2, Reason.FLAPPING, "flapping from now, state change #2 (2 in 10 min): recovered: db-cpu-high; resolves "
     "after 10 quiet minutes unless it fires again", Reason.FLAPPING, "flapping, state change #3", "flapping"),
    # N=4: not flapping yet, but a recovery one minute after firing may be the first flap: held
    (4, Reason.RECOVERY_HELD, "recovered 60 s after firing (state change #2): held, resolves after 10 quiet "
     "minutes unless it fires again", Reason.ALREADY_OPEN, "fired again 2 min after recovering (state change #3)",
     "recovering"),
], ids=["flapping", "held"])
def test_a_quick_recovery_is_held_quiet_with_its_chain_paused_and_the_sweep_resolves_it(
        n: int, held_as: Reason, held_text: str, fired_as: Reason, fired_text: str, after: str) -> None:
    """Held, not resolved; the chain waits; the same OK again changes nothing; a trigger ends the
    quiet period (nobody paged again); quiet for S minutes, the sweep resolves it."""
    config = flapping_config(transitions=n)
    incident = new_incident("inc-1", signal(Transition.TRIGGER, 0), C, T0, config)
    assert incident.flap is not None and incident.flap.count == 1
    reason, held = flap_decision(Reason.RESOLVED, incident, signal(Transition.RESOLVE, 1),
                                 T0 + timedelta(minutes=1), config)
    assert reason is held_as and held is not None and held.is_open and held.flap is not None
    assert held.flap.count == 2 and held.flap.last is Transition.RESOLVE
    assert (held.flap.since is not None) is (held_as is Reason.FLAPPING)
    assert held.flap.quiet_since == T0 + timedelta(minutes=1)
    assert held.timeline[-1].what.startswith(held_text)
    assert bounds.repeat_floor(held.model_copy(update={"count": 50})) is None  # its next trigger takes the full path
    # the chain waits while the recovery is held: nothing is due before the hold ends
    late = T0 + timedelta(hours=2)
    assert escalation.due_steps(held, config, late) == [] and escalation.due_steps(incident, config, late) != []
    assert escalation.next_action_at(held, config) == T0 + timedelta(minutes=11)
    assert flapping.stable(held, T0 + timedelta(minutes=10), config.routing.flapping) is StableReason.NOT_YET
    assert settled(held, config, T0 + timedelta(minutes=10)) is held
    # the same OK again is not a change and resolves nothing
    again, same = flap_decision(Reason.RESOLVED, held, signal(Transition.RESOLVE, 2), T0 + timedelta(minutes=2),
                                config)
    assert again is held_as and same is not None and same.flap == held.flap
    # it fires again: counted on the same incident, the hold is void, the chain goes on, nobody paged again
    reason, firing = flap_decision(Reason.ALREADY_OPEN, held, signal(Transition.TRIGGER, 3),
                                   T0 + timedelta(minutes=3), config)
    assert reason is fired_as and firing is not None and firing.flap is not None
    assert firing.flap.quiet_since is None and firing.flap.count == 3
    assert firing.timeline[-1].what.startswith(fired_text)
    assert escalation.due_steps(firing, config, late) != []
    assert flapping.stable(firing, T0 + timedelta(hours=1), config.routing.flapping) is StableReason.FIRING
    # quiet for S minutes: the sweep resolves it
    resolved = settled(held, config, T0 + timedelta(minutes=11))
    assert resolved.status is IncidentStatus.RESOLVED
    assert resolved.timeline[-1].what == f"resolved: quiet for 10 minutes after {after} (2 state changes)"


def test_a_recovery_after_a_longer_firing_resolves_at_once() -> None:
    config = flapping_config(transitions=4)
    incident = new_incident("inc-1", signal(Transition.TRIGGER, 0), C, T0, config)
    reason, counted = flap_decision(Reason.RESOLVED, incident, signal(Transition.RESOLVE, 11),
                                    T0 + timedelta(minutes=11), config)  # more than M (10) after firing
    assert reason is Reason.RESOLVED and counted is not None and counted.flap is not None
    assert counted.flap.count == 2 and counted.flap.last is Transition.RESOLVE and counted.flap.quiet_since is None
    assert flapping.stable(counted, T0 + timedelta(hours=1), config.routing.flapping) is StableReason.NOT_HELD


def test_a_quick_recovery_of_an_incident_that_paged_nobody_resolves_at_once() -> None:
    """Held under a cause or silenced, it never paged: holding its recovery would only let it page
    later (an effect still open when its cause resolves, a silenced one when its window ends)."""
    config = flapping_config(transitions=4)
    incident = new_incident("inc-1", signal(Transition.TRIGGER, 0), C, T0, config)
    for quiet in (incident.model_copy(update={"held": "inhibited", "held_by": "inc-0"}),
                  incident.model_copy(update={"status": IncidentStatus.SILENCED})):
        reason, after = flap_decision(Reason.RESOLVED, quiet, signal(Transition.RESOLVE, 1),
                                      T0 + timedelta(minutes=1), config)
        assert reason is Reason.RESOLVED and after is not None and after.flap is not None
        assert after.flap.quiet_since is None and after.flap.count == 2


def test_a_recovery_is_held_only_within_m_minutes_of_its_trigger() -> None:
    state = flapping.opened("alarm", T0, SETTINGS)
    assert state is not None
    for minutes, expected in ((1, FlapReason.HELD), (9.9, FlapReason.HELD), (10, FlapReason.NOT_FLAPPING),
                              (45, FlapReason.NOT_FLAPPING)):
        at = T0 + timedelta(minutes=minutes)
        recovered = flapping.changed(state, at, SETTINGS).model_copy(update={"last": Transition.RESOLVE})
        assert flapping.on_change(recovered, at, SETTINGS, "alarm") is expected, minutes
        fired = recovered.model_copy(update={"last": Transition.TRIGGER})
        assert flapping.on_change(fired, at, SETTINGS, "alarm") is FlapReason.NOT_FLAPPING


def test_a_worse_severity_still_raises_a_flapping_incident_and_ends_its_quiet_period() -> None:
    config = flapping_config(transitions=2)
    incident = new_incident("inc-1", signal(Transition.TRIGGER, 0), C, T0, config)
    _, held = flap_decision(Reason.RESOLVED, incident, signal(Transition.RESOLVE, 1), T0 + timedelta(minutes=1), config)
    reason, raised = flap_decision(Reason.SEVERITY_RAISED, held, signal(Transition.TRIGGER, 2),
                                   T0 + timedelta(minutes=2), config)
    assert reason is Reason.SEVERITY_RAISED and raised is not None and raised.flap is not None
    assert raised.flap.quiet_since is None


# --- the acceptance, on both stores --------------------------------------------------------------------


def flapping_world(kind: str, tmp_path: Path, clock: FakeClock, console: RecordingChannel,
                   settings: dict[str, int]) -> Iterator[World]:
    folder = tmp_path / "config"
    folder.mkdir()
    copy_config(folder)
    routing = yaml.safe_load((folder / "routing.yaml").read_text())
    routing["flapping"] = settings
    (folder / "routing.yaml").write_text(yaml.safe_dump(routing))
    yield from worlds(kind, tmp_path, clock, console, {"RESPONDER_CONFIG_DIR": str(folder)})


SHIPPED = CONFIG.routing.flapping.model_dump() if CONFIG.routing.flapping else {}
QUICK = {"transitions": 2, "minutes": 5, "stable_minutes": 10}


@pytest.fixture(params=["sqlite", "dynamodb"])
def flappy(request: Any, tmp_path: Path, clock: FakeClock, console: RecordingChannel) -> Iterator[World]:
    """An alarm that fires and recovers within 5 minutes is flapping; it resolves after 10 quiet minutes."""
    yield from flapping_world(request.param, tmp_path, clock, console, QUICK)


@pytest.fixture(params=["sqlite", "dynamodb"])
def shipped(request: Any, tmp_path: Path, clock: FakeClock, console: RecordingChannel) -> Iterator[World]:
    """The shipped ``flapping:`` settings."""
    yield from flapping_world(request.param, tmp_path, clock, console, SHIPPED)


def test_the_shipped_settings_are_the_ones_the_acceptance_runs_with() -> None:
    assert SHIPPED == {"transitions": 4, "minutes": 10, "stable_minutes": 10}


def deliver(world: World, state: str) -> dict[str, Any]:
    [outcome] = world_event(world, state)
    return outcome


def world_event(world: World, state: str) -> list[dict[str, Any]]:
    from chalicelib.handlers import on_event

    event = sns_event(ALARM, message_id=new_id(), NewStateValue=state)
    return list(on_event(event, "sns", world.deps)["outcomes"])


@pytest.fixture(params=[(store, name) for name in ("shipped", "n2") for store in ("sqlite", "dynamodb")],
                ids=lambda p: "-".join(p))
def any_flappy(request: Any, tmp_path: Path, clock: FakeClock,
               console: RecordingChannel) -> Iterator[tuple[World, dict[str, int], dict[str, int]]]:
    """Both stores, with the shipped settings (N=4: a held recovery and a trigger come before it is
    known to flap) and with N=2 (flapping from the first recovery)."""
    store, name = request.param
    settings, before_flapping = (SHIPPED, {"RECOVERY_HELD": 1, "ALREADY_OPEN": 1}) if name == "shipped" else (QUICK, {})
    for world in flapping_world(store, tmp_path, clock, console, settings):
        yield world, settings, before_flapping


def test_acceptance_30_transitions_in_20_minutes_are_one_incident_one_page_one_resolve(
        any_flappy: tuple[World, dict[str, int], dict[str, int]]) -> None:
    world, settings, before_flapping = any_flappy
    reasons: Counter[str] = Counter()
    incidents = set()
    for n in range(30):  # ALARM, OK, ALARM … every 40 s: 30 transitions in 20 minutes
        outcome = deliver(world, "ALARM" if n % 2 == 0 else "OK")
        reasons[outcome["reason"]] += 1
        incidents.add(outcome["incident_id"])
        world.clock.advance(seconds=40)
        world.deps.pipeline.sweep()  # the scheduled sweep keeps running meanwhile
    flapping_changes = 29 - sum(before_flapping.values())
    assert reasons == {"OPENED": 1, **before_flapping, "FLAPPING": flapping_changes} and len(incidents) == 1
    [incident_id] = incidents
    for _ in range(12):  # quiet since the last OK: the sweep resolves it after 10 minutes, not before
        world.clock.advance(minutes=1)
        world.deps.pipeline.sweep()
    incident = world.deps.store.get(incident_id)
    assert incident is not None and incident.status is IncidentStatus.RESOLVED
    assert incident.resolved_at is not None
    last_ok = world.clock.now - timedelta(minutes=12, seconds=40)
    assert timedelta(minutes=10) <= incident.resolved_at - last_ok < timedelta(minutes=11)
    kinds = Counter(p.kind for p in world.console.sent)
    assert kinds == {PageKind.TRIGGER: 1, PageKind.RESOLVE: 1}  # one page, one resolve notice
    assert len(world.console.sent) == 2
    timeline = [e.what for e in full_timeline(world.deps.store, incident)]
    first = settings["transitions"]
    assert any(f"flapping from now, state change #{first} " in t for t in timeline)
    assert any("state change #20 " in t for t in timeline)  # the flap count, on the timeline
    assert timeline[-1] == "resolve page to engineer-on-call (engineering-oncall) on console: sent"
    assert "resolved: quiet for 10 minutes after flapping (30 state changes)" in timeline
    assert incident.flap is not None and incident.flap.count == 30


def test_the_same_alarm_after_the_stable_period_is_a_new_incident(flappy: World) -> None:
    world = flappy
    first = deliver(world, "ALARM")
    world.clock.advance(minutes=1)
    assert deliver(world, "OK")["reason"] == "FLAPPING"
    world.clock.advance(minutes=10)
    world.deps.pipeline.sweep()
    world.clock.advance(minutes=1)
    second = deliver(world, "ALARM")
    assert second["reason"] == "OPENED" and second["incident_id"] != first["incident_id"]


def test_an_alarm_that_recovers_for_good_within_minutes_resolves_after_the_stable_period(shipped: World) -> None:
    world = shipped
    opened = deliver(world, "ALARM")
    world.clock.advance(minutes=3)
    assert deliver(world, "OK")["reason"] == "RECOVERY_HELD"
    for minute in range(1, 12):
        world.clock.advance(minutes=1)
        world.deps.pipeline.sweep()
        incident = world.deps.store.get(opened["incident_id"])
        assert incident is not None and incident.is_open is (minute < 10), minute
    assert Counter(p.kind for p in world.console.sent) == {PageKind.TRIGGER: 1, PageKind.RESOLVE: 1}
    timeline = [e.what for e in full_timeline(world.deps.store, incident)]
    assert "resolved: quiet for 10 minutes after recovering (2 state changes)" in timeline


def test_an_alarm_that_recovers_after_burning_longer_resolves_at_once(shipped: World) -> None:
    world = shipped
    deliver(world, "ALARM")
    world.clock.advance(minutes=25)
    assert deliver(world, "OK")["reason"] == "RESOLVED"
    assert Counter(p.kind for p in world.console.sent)[PageKind.RESOLVE] >= 1


@pytest.fixture(params=["sqlite", "dynamodb"])
def long_hold(request: Any, tmp_path: Path, clock: FakeClock, console: RecordingChannel) -> Iterator[World]:
    """A stable period (90 min) longer than the SEV2 chain's second step (60 min)."""
    yield from flapping_world(request.param, tmp_path, clock, console,
                              {"transitions": 4, "minutes": 10, "stable_minutes": 90})


def test_a_held_recovery_pauses_the_chain_and_a_new_trigger_resumes_it(long_hold: World) -> None:
    """Unacknowledged and recovered within minutes: nobody is escalated to while the recovery is held;
    once it fires again the chain goes on where it was."""
    world = long_hold
    opened = deliver(world, "ALARM")
    world.clock.advance(minutes=1)
    assert deliver(world, "OK")["reason"] == "RECOVERY_HELD"
    pages_before = len(world.console.sent)
    for _ in range(70):  # past the SEV2 chain's next step (+60), still within the hold
        world.clock.advance(minutes=1)
        world.deps.pipeline.sweep()
    assert len(world.console.sent) == pages_before
    incident = world.deps.store.get(opened["incident_id"])
    assert incident is not None and incident.is_open and incident.escalation is not None
    assert incident.escalation.next_step == 1
    assert deliver(world, "ALARM")["reason"] == "ALREADY_OPEN"
    world.clock.advance(minutes=1)
    world.deps.pipeline.sweep()
    later = world.deps.store.get(opened["incident_id"])
    assert later is not None and later.is_open and later.escalation is not None
    assert later.escalation.next_step == 2  # the chain went on: founder-primary paged
    assert len(world.console.sent) > pages_before


def test_an_alarm_that_fires_again_long_after_recovering_is_not_flapping(shipped: World) -> None:
    world = shipped
    ids = set()
    for _ in range(3):
        ids.add(deliver(world, "ALARM")["incident_id"])
        world.clock.advance(minutes=1)
        assert deliver(world, "OK")["reason"] == "RECOVERY_HELD"
        for _ in range(15):  # quiet: the sweep resolves it; more than M (10) after the last change
            world.clock.advance(minutes=1)
            world.deps.pipeline.sweep()
    assert len(ids) == 3
    assert Counter(p.kind for p in world.console.sent) == {PageKind.TRIGGER: 3, PageKind.RESOLVE: 3}
    for incident_id in ids:
        incident = world.deps.store.get(incident_id)
        assert incident is not None and incident.flap is not None and incident.flap.since is None
