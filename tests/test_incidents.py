"""Incident decisions are pure functions returning a reason."""

from __future__ import annotations

import pytest

from chalicelib.decisions.classify import classify
from chalicelib.decisions.incidents import Reason, apply, decide, new_incident
from chalicelib.models import IncidentStatus, Severity, Transition
from chalicelib.sources import to_signals
from tests.conftest import CONFIG, T0, load_event


def signal_of(name: str):  # type: ignore[no-untyped-def]
    [signal] = to_signals(load_event(name), T0)
    return signal, classify(signal, CONFIG.severity)


@pytest.mark.parametrize("name, open_before, reason", [
    ("sns-cloudwatch-alarm-metric.json", False, Reason.OPENED),
    ("sns-cloudwatch-alarm-metric.json", True, Reason.ALREADY_OPEN),
    ("sns-cloudwatch-alarm-ok.json", True, Reason.RESOLVED),
    ("sns-cloudwatch-alarm-ok.json", False, Reason.NO_OPEN_INCIDENT),
    ("sns-cloudwatch-alarm-insufficient-data.json", True, Reason.ANNOTATED),
    ("sns-cloudwatch-alarm-insufficient-data.json", False, Reason.RECORDED),
])
def test_decide(name: str, open_before: bool, reason: Reason) -> None:
    signal, c = signal_of(name)
    trigger, tc = signal_of("sns-cloudwatch-alarm-metric.json")
    current = new_incident("inc-1", trigger, tc, T0, CONFIG) if open_before else None
    assert decide(signal, c, current) is reason


def test_worse_severity_on_open_incident_raises_it() -> None:
    warning, wc = signal_of("sentry-metric-alert-critical.json")
    current = new_incident("inc-1", warning, wc.model_copy(update={"severity": Severity.SEV3}), T0, CONFIG)
    assert decide(warning, wc, current) is Reason.SEVERITY_RAISED
    raised = apply(Reason.SEVERITY_RAISED, current, warning, wc, T0, CONFIG)
    assert raised.severity is Severity.SEV2 and raised.owner == "engineering-oncall"
    assert "severity raised SEV3 → SEV2" in raised.timeline[-1].what


def test_repeats_are_counted_not_itemised() -> None:
    signal, c = signal_of("sns-cloudwatch-alarm-metric.json")
    current = new_incident("inc-1", signal, c, T0, CONFIG)
    for _ in range(80):
        current = apply(Reason.ALREADY_OPEN, current, signal, c, T0, CONFIG)
    assert current.count == 81
    assert len(current.timeline) == 1  # opened; the full timeline shows one line for the repeats


def test_resolve_marks_time_and_status() -> None:
    signal, c = signal_of("sns-cloudwatch-alarm-metric.json")
    ok, okc = signal_of("sns-cloudwatch-alarm-ok.json")
    assert ok.transition is Transition.RESOLVE
    resolved = apply(Reason.RESOLVED, new_incident("inc-1", signal, c, T0, CONFIG), ok, okc, T0, CONFIG)
    assert resolved.status is IncidentStatus.RESOLVED and resolved.resolved_at == T0
