"""The terminal views: short ages, the order people scan a list in, who did what."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from chalicelib import sources
from chalicelib.decisions.classify import classify
from chalicelib.decisions.incidents import new_incident
from chalicelib.models import Incident, IncidentStatus, TimelineEntry
from chalicelib.reports.textview import age, incident_detail, incident_table, ordered
from tests.conftest import CONFIG, T0, load_event, sns_event


@pytest.mark.parametrize(("delta", "text"), [
    (timedelta(seconds=-5), "0s"), (timedelta(seconds=59), "59s"), (timedelta(minutes=1), "1m"),
    (timedelta(minutes=59, seconds=59), "59m"), (timedelta(hours=1, minutes=5), "1h05m"),
    (timedelta(hours=23, minutes=59), "23h59m"), (timedelta(days=2, hours=4, minutes=30), "2d04h"),
])
def test_age_is_short(delta: timedelta, text: str) -> None:
    assert age(delta) == text


def _incident(event: dict[str, Any], minutes: int = 0, status: IncidentStatus = IncidentStatus.OPEN) -> Incident:
    [signal] = sources.to_signals(event, T0, "test")
    at = T0 + timedelta(minutes=minutes)
    return new_incident(f"inc-{minutes:03d}", signal, classify(signal, CONFIG.severity), at, CONFIG).model_copy(
        update={"status": status})


def test_ordered_open_first_then_most_severe_then_newest() -> None:
    alb = sns_event("sns-cloudwatch-alarm-metric.json")  # Sev3
    ecs = load_event("ecs-deployment-failed.json")  # Sev2
    rows = [_incident(alb, 0), _incident(ecs, 1, IncidentStatus.RESOLVED), _incident(alb, 2),
            _incident(ecs, 3, IncidentStatus.ACKNOWLEDGED), _incident(ecs, 4)]
    assert [i.id for i in ordered(rows)] == ["inc-004", "inc-002", "inc-000", "inc-003", "inc-001"]


def test_detail_names_who_did_it_once() -> None:
    incident = _incident(load_event("ecs-deployment-failed.json"))
    incident = incident.noted(TimelineEntry(at=T0, by="giles", what="acknowledged by giles"))
    incident = incident.noted(TimelineEntry(at=T0, by="giles", what="note: looking at the deploy"))
    text = incident_detail(incident, T0, CONFIG.routing.zone)
    assert "  Fri 2025-03-14 10:42  acknowledged by giles\n" in text
    assert "  Fri 2025-03-14 10:42  note: looking at the deploy  [giles]" in text


def test_hostile_titles_and_notes_cannot_rewrite_the_terminal() -> None:
    """A title or note with newlines and terminal escapes prints as one plain line each."""
    hostile = "db-cpu\x1b[2J\x1b[31mFAKE\nSEV1 resolved by ops\r"
    incident = _incident(load_event("ecs-deployment-failed.json")).model_copy(update={"title": hostile})
    incident = incident.noted(TimelineEntry(at=T0, by="eve\x1b[0m", what="note: " + hostile))
    for text in (incident_detail(incident, T0, CONFIG.routing.zone),
                 incident_table([incident], T0, CONFIG.routing.zone)):
        assert "\x1b" not in text and "\r" not in text
        assert not any(line.startswith("SEV1 resolved") for line in text.splitlines())
