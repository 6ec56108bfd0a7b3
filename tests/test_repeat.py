"""Escalate until someone answers (issue 10 §4-5): chains repeat until acknowledged, a step never
pages someone already paged in the loop, and everyone paged hears the stand-down."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib import config
from chalicelib.decisions import escalation, pd_alerts
from chalicelib.decisions.escalation import RepeatReason
from chalicelib.errors import ConfigError
from chalicelib.models import EscalationState, Incident, IncidentStatus, PageKind, PageStatus, Severity, SignalKind
from tests.conftest import CONFIG, FakeClock, config_with_channels, copy_config
from tests.test_escalation import Recorders, T, deps_for, open_sev1


def pages_by_minute(recorders: Recorders, deps: Any, clock: FakeClock, minutes: int,
                    ack_at: int | None = None, incident_id: str | None = None) -> list[tuple[int, str, str]]:
    """(minute, person, kind) of everything sent from now on, sweeping minute by minute as the schedule does."""
    seen: list[tuple[int, str, str]] = []
    counts = {name: len(channel.sent) for name, channel in recorders.by_name.items()}
    start = clock.now
    for minute in range(0, minutes + 1):
        clock.now = start + timedelta(minutes=minute)
        if ack_at == minute and incident_id:
            deps.pipeline.acknowledge(incident_id, "alice")
        deps.pipeline.sweep()
        for name, channel in recorders.by_name.items():
            seen += [(minute, p.person, p.kind.value) for p in channel.sent[counts[name]:]]
            counts[name] = len(channel.sent)
    return seen


def test_unacknowledged_sev1_is_paged_again_by_forty_minutes(any_store: Any) -> None:
    clock, recorders = FakeClock(T), Recorders(["console"])
    deps = deps_for(any_store, clock, recorders)
    incident_id = open_sev1(deps)
    sent = pages_by_minute(recorders, deps, clock, 40)
    everyone = ["giles", "christian", "engineer-on-call"]
    assert recorders.people()[0] == "giles"  # paged when it opened
    assert [(m, who) for m, who, _ in sent if m < 15] == [(5, "christian"), (10, "engineer-on-call")]
    # from the second loop on, everyone in the chain at once, every 15 minutes
    assert sorted(who for m, who, _ in sent if m == 15) == sorted(everyone)
    assert sorted(who for m, who, _ in sent if m == 30) == sorted(everyone)
    assert {m for m, _, _ in sent} == {5, 10, 15, 30}
    incident = deps.store.get(incident_id)
    assert incident.escalation.loop == 2 and incident.next_action_at == T + timedelta(minutes=45)
    assert any(e.what.startswith("nobody acknowledged: loop 2, until acknowledged") for e in incident.timeline)
    # page ids stay unique per loop (step, loop, person, channel)
    ids = [p.id for p in incident.pages]
    assert len(ids) == len(set(ids)) == 9 and "SEV1#0/L1/0:giles:console" in ids


def test_acknowledged_sev1_is_not_paged_again(any_store: Any) -> None:
    clock, recorders = FakeClock(T), Recorders(["console"])
    deps = deps_for(any_store, clock, recorders)
    incident_id = open_sev1(deps)
    sent = pages_by_minute(recorders, deps, clock, 40, ack_at=3, incident_id=incident_id)
    assert recorders.people() == ["giles", "giles"]
    assert sent == [(3, "giles", "acknowledge")]  # "acknowledged by alice": and nothing more
    assert deps.store.get(incident_id).next_action_at is None


def test_resolved_sev1_is_not_paged_again(any_store: Any) -> None:
    clock, recorders = FakeClock(T), Recorders(["console"])
    deps = deps_for(any_store, clock, recorders)
    incident_id = open_sev1(deps)
    clock.now = T + timedelta(minutes=12)
    deps.pipeline.sweep()
    deps.pipeline.resolve(incident_id, "giles")
    before = len(recorders.people())
    assert [(m, who) for m, who, _ in pages_by_minute(recorders, deps, clock, 40)] == []
    assert len(recorders.people()) == before


def test_two_sweeps_at_a_new_loop_page_once(any_store: Any) -> None:
    clock, recorders = FakeClock(T), Recorders(["console"])
    deps = deps_for(any_store, clock, recorders)
    incident_id = open_sev1(deps)
    pages_by_minute(recorders, deps, clock, 14)
    clock.now = T + timedelta(minutes=15)
    barrier = threading.Barrier(2)

    def sweep() -> None:
        barrier.wait()
        deps.pipeline.sweep()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert recorders.people()[3:] == ["giles", "christian", "engineer-on-call"]
    assert len(deps.store.get(incident_id).pages) == 6


# --- pure decisions --------------------------------------------------------------------------

def incident(severity: Severity, status: IncidentStatus = IncidentStatus.OPEN, cfg: Any = CONFIG,
             at: datetime = T) -> Incident:
    return Incident(id="inc-1", key="k", kind=SignalKind.ALARM, title="checkout 5xx", severity=severity,
                    owner="founder-primary", playbook=None, rule="r", status=status, opened_at=at, last_seen=at,
                    escalation=escalation.start(severity, cfg, at))


def walk(start: Incident, minutes: int, cfg: Any = CONFIG) -> list[tuple[int, str]]:
    """(minute, person) of every page the pure escalation queues, minute by minute."""
    current, pages = start, []
    for minute in range(minutes + 1):
        before = len(current.pages)
        current = escalation.escalate(current, cfg, T + timedelta(minutes=minute))
        pages += [(minute, p.person) for p in current.pages[before:]]
    return pages


def test_sev2_repeats_once() -> None:
    assert walk(incident(Severity.SEV2), 400) == [(0, "engineer-on-call"), (60, "giles"),
                                                  (65, "engineer-on-call"), (65, "giles")]


def test_sweep_away_for_an_hour_runs_only_the_latest_loop() -> None:
    start = escalation.escalate(incident(Severity.SEV1), CONFIG, T + timedelta(minutes=10))
    later = escalation.escalate(start, CONFIG, T + timedelta(minutes=70))
    assert later.escalation is not None and later.escalation.loop == 4
    assert len(later.pages) - len(start.pages) == 3


@pytest.mark.parametrize(("status", "minute", "expected"), [
    (IncidentStatus.OPEN, 12, RepeatReason.NOT_YET),
    (IncidentStatus.OPEN, 15, RepeatReason.REPEAT),
    (IncidentStatus.ACKNOWLEDGED, 15, RepeatReason.ACKNOWLEDGED),
    (IncidentStatus.RESOLVED, 15, RepeatReason.RESOLVED),
])
def test_repeat_decision(status: IncidentStatus, minute: int, expected: RepeatReason) -> None:
    walked = escalation.escalate(incident(Severity.SEV1), CONFIG, T + timedelta(minutes=10))
    walked = walked.model_copy(update={"status": status})
    assert escalation.repeat_decision(walked, CONFIG, T + timedelta(minutes=minute)) is expected


def test_repeat_decision_while_the_chain_runs_and_when_loops_are_done() -> None:
    sev1 = escalation.escalate(incident(Severity.SEV1), CONFIG, T + timedelta(minutes=5))
    assert escalation.repeat_decision(sev1, CONFIG, T + timedelta(minutes=20)) is RepeatReason.CHAIN_RUNNING
    sev2 = escalation.escalate(incident(Severity.SEV2), CONFIG, T + timedelta(minutes=60))
    sev2 = escalation.escalate(sev2, CONFIG, T + timedelta(minutes=65))
    assert escalation.repeat_decision(sev2, CONFIG, T + timedelta(days=1)) is RepeatReason.NO_MORE_LOOPS
    sev4 = incident(Severity.SEV4)
    assert escalation.repeat_decision(sev4, CONFIG, T + timedelta(days=1)) is RepeatReason.NOT_REPEATED


# --- configuration ---------------------------------------------------------------------------

def edited(tmp_path: Path, old: str, new: str) -> Path:
    copy_config(tmp_path)
    path = tmp_path / "routing.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return tmp_path


@pytest.mark.parametrize(("old", "new", "message"), [
    ("repeat: until-acknowledged", "repeat: often", r"escalation\.SEV1\.repeat: .*until-acknowledged"),
    ("repeat: 1 ", "repeat: -1 ", r"escalation\.SEV2\.repeat: .*0 or more"),
    ("repeat_after_minutes: 15", "repeat_after_minutes: 10",
     r"escalation\.SEV1: .*repeat_after_minutes \(10\) must be longer than the last step's after_minutes \(10\)"),
    ("repeat_after_minutes: 15", "repeat_after_minutes: 0", r"escalation\.SEV1\.repeat_after_minutes"),
    ("    steps: []", "    steps: []\n    repeat: 2", r"escalation\.SEV4: .*nothing to repeat"),
])
def test_bad_repeat_settings_are_refused_naming_the_key(tmp_path: Path, old: str, new: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config.load(edited(tmp_path, old, new))


def test_a_sev1_chain_that_says_nothing_about_repeating_repeats_until_acknowledged(tmp_path: Path) -> None:
    folder = edited(tmp_path, "    repeat: until-acknowledged    # +15, +30, +45 … everyone in the chain, "
                              "until someone acks\n    repeat_after_minutes: 15\n", "")
    chain = config.load(folder).routing.escalation[Severity.SEV1]
    assert chain.loops is None and chain.period_minutes == 15


def test_repeat_zero_turns_it_off_and_period_alone_means_until_acknowledged(tmp_path: Path) -> None:
    folder = edited(tmp_path, "repeat: until-acknowledged", "repeat: 0")
    assert config.load(folder).routing.escalation[Severity.SEV1].loops == 1
    folder = edited(tmp_path, "    repeat: 1 ", "    repeat_after_minutes: 90 ")
    chain = config.load(folder).routing.escalation[Severity.SEV2]
    assert chain.loops is None and chain.period_minutes == 90


# --- the next distinct person ----------------------------------------------------------------

def backup_is_primary(tmp_path: Path) -> Path:
    return edited(tmp_path, "shifts: [{person: christian}]", "shifts: [{person: giles}]")


def test_a_step_whose_person_was_already_paged_moves_on_to_the_next_person(any_store: Any, tmp_path: Path) -> None:
    clock, recorders = FakeClock(T), Recorders(["console"])
    deps = deps_for(any_store, clock, recorders, backup_is_primary(tmp_path))
    incident_id = open_sev1(deps)
    sent = pages_by_minute(recorders, deps, clock, 20)
    # giles holds both founder roles: paged once per loop; engineering is paged at +5, not +10
    assert recorders.people()[0] == "giles"
    assert [(m, who) for m, who, _ in sent] == [(5, "engineer-on-call"), (15, "giles"), (15, "engineer-on-call")]
    timeline = [e.what for e in deps.store.get(incident_id).timeline]
    assert "escalation step 2: founder-backup is giles, already paged in this loop: skipped, on to the next person" \
        in timeline
    assert "escalation step 3: engineering-oncall (engineer-on-call)" in timeline


# --- stand down ------------------------------------------------------------------------------

def mixed_channels(tmp_path: Path) -> Path:
    return config_with_channels(
        tmp_path, "  sms-giles:\n    type: sns\n    topic_arn_env: GILES_SMS_TOPIC_ARN\n"
                  "  slack-christian:\n    type: slack\n    webhook_url_env: CHRISTIAN_SLACK_URL\n",
        {"giles": "[sms-giles, console]", "christian": "[slack-christian]"})


def test_ack_notice_reaches_everyone_paged_on_each_channel_they_were_paged_on_once(
        any_store: Any, tmp_path: Path) -> None:
    clock, recorders = FakeClock(T), Recorders(["console", "sms-giles", "slack-christian"])
    deps = deps_for(any_store, clock, recorders, mixed_channels(tmp_path))
    incident_id = open_sev1(deps)
    pages_by_minute(recorders, deps, clock, 16)  # two loops: giles and christian paged twice each
    deps.pipeline.acknowledge(incident_id, "alice")
    deps.pipeline.acknowledge(incident_id, "alice")  # idempotent: nobody hears it twice
    acks = {name: [(p.person, p.text) for p in ch.sent if p.kind is PageKind.ACKNOWLEDGE]
            for name, ch in recorders.by_name.items()}
    assert {name: [who for who, _ in sent] for name, sent in acks.items()} == {
        "console": ["giles", "engineer-on-call"], "sms-giles": ["giles"], "slack-christian": ["christian"]}
    assert all("acknowledged by alice — you can stand down" in text for sent in acks.values() for _, text in sent)
    deps.pipeline.resolve(incident_id, "alice")
    resolves = sorted((p.person, name) for name, ch in recorders.by_name.items() for p in ch.sent
                      if p.kind is PageKind.RESOLVE)
    assert resolves == [("christian", "slack-christian"), ("engineer-on-call", "console"),
                        ("giles", "console"), ("giles", "sms-giles")]


def test_a_page_cancelled_before_it_went_out_gets_no_notice(any_store: Any, tmp_path: Path) -> None:
    clock, recorders = FakeClock(T), Recorders(["console", "sms-giles", "slack-christian"])
    deps = deps_for(any_store, clock, recorders, mixed_channels(tmp_path))
    incident_id = open_sev1(deps)
    deps.pipeline.acknowledge(incident_id, "giles")
    assert recorders.people("slack-christian") == []
    assert [p.kind for p in recorders.by_name["sms-giles"].sent] == [PageKind.TRIGGER, PageKind.ACKNOWLEDGE]


def test_reached_people_survive_a_severity_restart() -> None:
    sev2 = escalation.escalate(incident(Severity.SEV2), CONFIG, T)
    page = sev2.pages[0].model_copy(update={"status": "sent"})
    reached = escalation.delivered(sev2.with_pages(page), page, T)
    assert reached.escalation is not None
    restarted = escalation.start(Severity.SEV1, CONFIG, T, restart=1, previous=reached.escalation)
    assert restarted.reached == (("engineer-on-call", "console", "engineering-oncall"),)
    assert restarted.loop == 0 and restarted.paged == ()


def everyone_on_pagerduty(tmp_path: Path) -> Any:
    folder = config_with_channels(tmp_path, "  pd:\n    type: pagerduty\n    routing_key_env: PD_KEY\n",
                                  {"giles": "[pd, console]", "christian": "[pd]", "engineer-on-call": "[pd]"})
    return config.load(folder)


def test_state_is_bounded_by_people_not_by_time(tmp_path: Path) -> None:
    cfg = everyone_on_pagerduty(tmp_path)
    pagerduty = pd_alerts.pagerduty_channels(cfg)
    current = incident(Severity.SEV1, cfg=cfg)
    for minute in range(0, 24 * 60, 15):
        current = escalation.escalate(current, cfg, T + timedelta(minutes=minute))
        pending = [p for p in current.pages if p.status is PageStatus.PENDING]
        current, claimed = pd_alerts.claimed(current, pending, pagerduty)
        for page in claimed:
            sent = page.model_copy(update={"status": PageStatus.SENT})
            current = escalation.delivered(current.with_pages(sent), sent, T, pagerduty)
    state: EscalationState | None = current.escalation
    assert state is not None and state.loop > 90
    assert len(state.reached) == 4 and len(state.paged) == 3
    # one open PagerDuty alert per person, however many loops paged them
    assert [(a.person, len(a.maybe_open)) for a in state.pagerduty] == [
        ("christian", 1), ("engineer-on-call", 1), ("giles", 1)]
    assert all(a.maybe_open[0] > 90 for a in state.pagerduty)
    keys = escalation.acknowledge_pages(current, T, pagerduty, "alice")
    assert sorted(len(p.dedup_keys) for p in keys if p.channel == "pd") == [1, 1, 1]


def test_a_trigger_whose_send_failed_keeps_its_key_for_the_next_loop(tmp_path: Path) -> None:
    """Unconfirmed, PagerDuty may or may not have opened it: the next loop triggers the same key
    (folded if it is open, opened if not) and the older key is resolved with it."""
    cfg = everyone_on_pagerduty(tmp_path)
    pagerduty = pd_alerts.pagerduty_channels(cfg)
    current = escalation.escalate(incident(Severity.SEV1, cfg=cfg), cfg, T)
    current, [first] = pd_alerts.claimed(current, [p for p in current.pages if p.channel == "pd"], pagerduty)
    assert first.dedup_keys == ("inc-1/giles/0",)  # failed: never confirmed
    [alerts] = current.escalation.pagerduty
    assert alerts.maybe_open == (0,) and not alerts.confirmed
    assert pd_alerts.next_key(alerts) == 0
    confirmed = alerts.model_copy(update={"confirmed": True})
    assert pd_alerts.next_key(confirmed) == 1


@pytest.mark.parametrize(("chain", "restarts"), [("SEV1#0", 0), ("SEV1#10", 10), ("SEV2#3", 3), ("odd", 0)])
def test_restart_number_is_parsed_not_matched_by_suffix(chain: str, restarts: int) -> None:
    state = EscalationState(chain=chain, severity=Severity.SEV1, started_at=T)
    assert escalation.restart_of(state) == restarts


def test_the_tenth_restart_pages_as_an_escalation_not_a_new_trigger() -> None:
    current = incident(Severity.SEV1)
    assert current.escalation is not None
    current = current.model_copy(update={"escalation": current.escalation.model_copy(update={"chain": "SEV1#10"})})
    [page] = escalation.step_pages(current, 0, CONFIG, T)
    assert page.kind is PageKind.ESCALATION


def test_raising_an_acknowledged_sev2_to_sev1_reopens_it_and_pages_the_sev1_chain(any_store: Any) -> None:
    from chalicelib.handlers import on_event
    from tests.conftest import load_event
    from tests.test_escalation import sweep_minutes

    clock, recorders = FakeClock(T), Recorders(["console"])
    deps = deps_for(any_store, clock, recorders)
    sev2 = on_event(load_event("ecs-deployment-failed.json"), "eventbridge", deps)["outcomes"][0]
    assert sev2["severity"] == 2
    incident_id = str(sev2["incident_id"])
    deps.pipeline.acknowledge(incident_id, "engineer-on-call")
    before = len(recorders.people())
    clock.now = T + timedelta(minutes=2)
    deps.pipeline.mark_phi_exposure(incident_id, "alice")  # PHI exposure suspected: Sev1
    raised = deps.store.get(incident_id)
    assert raised.severity is Severity.SEV1 and raised.status is IncidentStatus.OPEN
    assert any(e.what.startswith("acknowledged by engineer-on-call") for e in raised.timeline)
    assert any("re-opened (was acknowledged by engineer-on-call)" in e.what for e in raised.timeline)
    assert recorders.people()[before:][:1] == ["giles"]  # the Sev1 chain starts at once
    sweep_minutes(deps, clock, 5)
    assert "christian" in recorders.people()[before:]
    # a second acknowledgement stops it again, and is told to whoever was paged since
    deps.pipeline.acknowledge(incident_id, "giles")
    assert deps.store.get(incident_id).status is IncidentStatus.ACKNOWLEDGED
    acks = [p.person for p in recorders.by_name["console"].sent if p.kind is PageKind.ACKNOWLEDGE]
    assert "christian" in acks


def test_which_resolved_alert_resolves_the_incident() -> None:
    from chalicelib.decisions.pd_alerts import LEGACY_KEY as LEGACY
    from chalicelib.decisions.pd_alerts import AlertReason, pagerduty_alert
    from chalicelib.models import PagerDutyAlerts

    current = incident(Severity.SEV1)
    assert current.escalation is not None
    giles = PagerDutyAlerts(person="giles", current=3, confirmed=True, maybe_open=(2, 3), channels=("pd",))
    legacy = PagerDutyAlerts(person="christian", maybe_open=(LEGACY,), channels=("pd",))
    current = current.model_copy(update={"escalation": current.escalation.model_copy(
        update={"pagerduty": (giles, legacy)})})
    pd = frozenset({"pd"})
    assert pagerduty_alert(current, "inc-1/giles/3", pd) is AlertReason.CURRENT
    assert pagerduty_alert(current, "inc-1/giles/2", pd) is AlertReason.EARLIER
    assert pagerduty_alert(current, "inc-1/giles/1", pd) is AlertReason.CLOSED  # we resolved it ourselves
    assert pagerduty_alert(current, "inc-1", pd) is AlertReason.CURRENT  # christian's only alert: the old key
    assert pagerduty_alert(current, "alarm:checkout-5xx", pd) is AlertReason.FOREIGN
    assert pagerduty_alert(current, "inc-2/giles/3", pd) is AlertReason.FOREIGN
