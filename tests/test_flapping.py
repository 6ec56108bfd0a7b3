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
from chalicelib.decisions import flapping
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


def test_a_recovery_resolves_until_the_alarm_flaps_then_it_is_held_and_the_sweep_resolves_it() -> None:
    config = flapping_config(transitions=2)
    incident = new_incident("inc-1", signal(Transition.TRIGGER, 0), C, T0, config)
    assert incident.flap is not None and incident.flap.count == 1
    reason, held = flap_decision(Reason.RESOLVED, incident, signal(Transition.RESOLVE, 1), T0 + timedelta(minutes=1),
                                 config)
    assert reason is Reason.FLAPPING and held is not None and held.is_open
    assert held.flap is not None and held.flap.quiet_since == T0 + timedelta(minutes=1)
    assert "flapping from now, state change #2" in held.timeline[-1].what
    assert bounds.repeat_floor(held.model_copy(update={"count": 50})) is None  # its next trigger takes the full path
    assert flapping.stable(held, T0 + timedelta(minutes=10), config.routing.flapping) is StableReason.NOT_YET
    assert settled(held, config, T0 + timedelta(minutes=10)) is held
    # a second OK while quiet is not a change, and resolves nothing
    again, same = flap_decision(Reason.RESOLVED, held, signal(Transition.RESOLVE, 2), T0 + timedelta(minutes=2),
                                config)
    assert again is Reason.FLAPPING and same is not None and same.flap == held.flap
    # it fires again: the quiet period ends, nobody is paged
    reason, firing = flap_decision(Reason.ALREADY_OPEN, held, signal(Transition.TRIGGER, 3),
                                   T0 + timedelta(minutes=3), config)
    assert reason is Reason.FLAPPING and firing is not None and firing.flap is not None
    assert firing.flap.quiet_since is None and firing.flap.count == 3
    assert flapping.stable(firing, T0 + timedelta(hours=1), config.routing.flapping) is StableReason.FIRING
    resolved = settled(held, config, T0 + timedelta(minutes=11))
    assert resolved.status is IncidentStatus.RESOLVED
    assert resolved.timeline[-1].what == "resolved: quiet for 10 minutes after flapping (2 state changes)"


def test_below_n_changes_a_recovery_resolves_as_before() -> None:
    config = flapping_config(transitions=4)
    incident = new_incident("inc-1", signal(Transition.TRIGGER, 0), C, T0, config)
    reason, counted = flap_decision(Reason.RESOLVED, incident, signal(Transition.RESOLVE, 1),
                                    T0 + timedelta(minutes=1), config)
    assert reason is Reason.RESOLVED and counted is not None and counted.flap is not None
    assert counted.flap.count == 2 and counted.flap.last is Transition.RESOLVE


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


@pytest.fixture(params=["sqlite", "dynamodb"])
def flappy(request: Any, tmp_path: Path, clock: FakeClock, console: RecordingChannel) -> Iterator[World]:
    """An alarm that fires and recovers within 5 minutes is flapping; it resolves after 10 quiet minutes."""
    yield from flapping_world(request.param, tmp_path, clock, console,
                              {"transitions": 2, "minutes": 5, "stable_minutes": 10})


def deliver(world: World, state: str) -> dict[str, Any]:
    [outcome] = world_event(world, state)
    return outcome


def world_event(world: World, state: str) -> list[dict[str, Any]]:
    from chalicelib.handlers import on_event

    event = sns_event(ALARM, message_id=new_id(), NewStateValue=state)
    return list(on_event(event, "sns", world.deps)["outcomes"])


def test_acceptance_30_transitions_in_20_minutes_are_one_incident_one_page_one_resolve(flappy: World) -> None:
    world = flappy
    reasons: Counter[str] = Counter()
    incidents = set()
    for n in range(30):  # ALARM, OK, ALARM … every 40 s: 30 transitions in 20 minutes
        outcome = deliver(world, "ALARM" if n % 2 == 0 else "OK")
        reasons[outcome["reason"]] += 1
        incidents.add(outcome["incident_id"])
        world.clock.advance(seconds=40)
        world.deps.pipeline.sweep()  # the scheduled sweep keeps running meanwhile
    assert reasons == {"OPENED": 1, "FLAPPING": 29} and len(incidents) == 1
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
    timeline = [e.what for e in full_timeline(world.deps.store, incident)]
    assert any("flapping from now, state change #2" in t for t in timeline)
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


@pytest.fixture(params=["sqlite", "dynamodb"])
def shipped(request: Any, tmp_path: Path, clock: FakeClock, console: RecordingChannel) -> Iterator[World]:
    """The shipped ``flapping:`` settings."""
    yield from flapping_world(request.param, tmp_path, clock, console,
                              CONFIG.routing.flapping.model_dump() if CONFIG.routing.flapping else {})


def test_an_alarm_that_recovers_for_good_resolves_at_once_with_the_shipped_settings(shipped: World) -> None:
    world = shipped
    deliver(world, "ALARM")
    world.clock.advance(minutes=3)
    assert deliver(world, "OK")["reason"] == "RESOLVED"
    assert Counter(p.kind for p in world.console.sent) == {PageKind.TRIGGER: 1, PageKind.RESOLVE: 1}


def test_with_the_shipped_settings_30_transitions_are_two_incidents_instead_of_fifteen(shipped: World) -> None:
    """The shipped N (4) needs the key's history: the first incident fires and recovers at once (it
    cannot know yet), hands its two changes on, and the second one is flapping from its first OK."""
    world = shipped
    reasons: Counter[str] = Counter()
    incidents = []
    for n in range(30):
        outcome = deliver(world, "ALARM" if n % 2 == 0 else "OK")
        reasons[outcome["reason"]] += 1
        if outcome["incident_id"] not in incidents:
            incidents.append(outcome["incident_id"])
        world.clock.advance(seconds=40)
        world.deps.pipeline.sweep()
    for _ in range(11):
        world.clock.advance(minutes=1)
        world.deps.pipeline.sweep()
    assert reasons == {"OPENED": 2, "RESOLVED": 1, "FLAPPING": 27} and len(incidents) == 2
    assert Counter(p.kind for p in world.console.sent) == {PageKind.TRIGGER: 2, PageKind.RESOLVE: 2}
    second = world.deps.store.get(incidents[1])
    assert second is not None and second.status is IncidentStatus.RESOLVED
    assert second.flap is not None and second.flap.count == 28


def test_an_alarm_that_fires_again_long_after_recovering_is_not_flapping(shipped: World) -> None:
    world = shipped
    for _ in range(3):
        deliver(world, "ALARM")
        world.clock.advance(minutes=1)
        assert deliver(world, "OK")["reason"] == "RESOLVED"
        world.clock.advance(minutes=15)  # more than M (10) after the last change
    assert Counter(p.kind for p in world.console.sent) == {PageKind.TRIGGER: 3, PageKind.RESOLVE: 3}
