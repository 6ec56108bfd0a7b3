"""Holes an attacker found in the finished work of issues 10 and 11, each pinned by a test.

Every test runs on SQLite and on moto DynamoDB through the Chalice test client, on real
payload shapes from tests/events/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from chalice.test import Client

from chalicelib import phi
from chalicelib.handlers import on_event
from chalicelib.models import MAX_ID, IncidentStatus
from tests.conftest import T0, app_on, load_event, new_id, sns_event
from tests.test_app import sentry_post
from tests.test_pagerduty_sync import deps, pd, webhook  # noqa: F401  (fixtures: conftest's client serves these deps)


@pytest.fixture(params=["sqlite", "dynamodb"])
def env(request: Any, tmp_path: Any, clock: Any, console: Any) -> Iterator[tuple[Client, Any]]:
    yield from app_on(request.param, tmp_path, clock, console)


def issue_body(action: str, last_seen: str, **issue: Any) -> bytes:
    event = load_event("sentry-issue-created.json")
    event["action"] = action
    event["data"]["issue"].update({"lastSeen": last_seen, **issue})
    return json.dumps(event).encode()


def test_a_signed_body_over_64_kb_keeps_no_name_at_rest(env: Any) -> None:
    """Its clipped text head could not be parsed, so names in it survived the text masks."""
    http, built = env
    body = json.dumps({"action": "created", "installation": {"uuid": "abc"},
                       "actor": {"id": 1, "name": "Jane Q Patientname", "type": "user"},
                       "data": {"comment": "see ticket", "comment_id": "1", "issue_id": "100",
                                "project_slug": "web", "timestamp": "2025-03-14T14:00:00Z",
                                "padding": "x" * 70_000}}).encode()
    response = sentry_post(http, body, resource="comment")
    assert response.status_code < 500
    record = built.store.get_delivery(response.json_body["delivery_id"])
    assert "Patientname" not in json.dumps(record)
    assert record["outcome"]["raw_bytes"] == len(body)


@pytest.mark.parametrize("field, value", [("id", "9" * 3_000), ("shortId", "S" * 500_000)])
def test_oversized_sentry_ids_and_titles_still_open_an_incident(env: Any, field: str, value: str) -> None:
    """A 3 KB id made a partition key over DynamoDB's 2 KB; a 500 KB title an item over 400 KB."""
    http, built = env
    response = sentry_post(http, issue_body("created", "2025-03-14T14:40:00Z", **{field: value}), resource="issue")
    assert response.status_code == 200 and response.json_body["reason"] == "OPENED", response.json_body
    [incident] = built.store.list()
    assert len(incident.key) <= MAX_ID and len(incident.title) <= 500


def test_an_unsigned_resource_header_of_any_length_is_harmless(env: Any) -> None:
    http, _ = env
    response = sentry_post(http, issue_body("created", "2025-03-14T14:40:00Z"), resource="<!channel>" + "r" * 3_000)
    assert response.status_code < 500


@pytest.mark.parametrize("length", [3_000, 200_000])
def test_an_alarm_with_a_huge_name_is_an_incident_not_a_lost_message(env: Any, length: int) -> None:
    http, built = env
    event = sns_event("sns-cloudwatch-alarm-metric.json", message_id=new_id(), AlarmName="a" * length,
                      AlarmArn="arn:aws:cloudwatch:us-east-1:123456789012:alarm:" + "b" * length)
    http.lambda_.invoke("on_alarm_sns", event)
    [incident] = built.store.list()
    assert incident.key.startswith("alarm:arn:aws:cloudwatch") and "sha256:" in incident.key
    # the same alarm again is the same incident: the bounded key is stable
    again = sns_event("sns-cloudwatch-alarm-metric.json", message_id=new_id(), AlarmName="a" * length,
                      AlarmArn="arn:aws:cloudwatch:us-east-1:123456789012:alarm:" + "b" * length)
    http.lambda_.invoke("on_alarm_sns", again)
    assert len(built.store.list()) == 1


def test_an_old_created_body_replayed_after_the_dedupe_window_reopens_nothing(env: Any, clock: Any,
                                                                               console: Any) -> None:
    """Sentry creates an issue once: a ``created`` no newer than the last resolve is a replay."""
    http, _ = env
    created = issue_body("created", "2025-03-14T14:40:00Z")
    assert sentry_post(http, created).json_body["reason"] == "OPENED"
    clock.advance(minutes=10)
    assert sentry_post(http, issue_body("resolved", "2025-03-14T14:40:00Z")).json_body["reason"] == "RESOLVED"
    sent = len(console.sent)
    clock.advance(days=15)  # past delivery_keep_days: the body's digest is forgotten
    assert sentry_post(http, created).json_body["reason"] == "STALE"
    assert len(console.sent) == sent


def test_a_human_reopening_without_new_events_still_reopens(env: Any, clock: Any) -> None:
    """The tie rule above is for ``created`` only: ``unresolved`` with the same lastSeen is news."""
    http, _ = env
    assert sentry_post(http, issue_body("created", "2025-03-14T14:40:00Z")).json_body["reason"] == "OPENED"
    clock.advance(minutes=10)
    assert sentry_post(http, issue_body("resolved", "2025-03-14T14:40:00Z")).json_body["reason"] == "RESOLVED"
    clock.advance(minutes=10)
    assert sentry_post(http, issue_body("unresolved", "2025-03-14T14:40:00Z")).json_body["reason"] == "OPENED"


def test_sentrys_archived_action_stands_the_incident_down(env: Any, clock: Any) -> None:
    http, _ = env
    assert sentry_post(http, issue_body("created", "2025-03-14T14:40:00Z")).json_body["reason"] == "OPENED"
    clock.advance(minutes=2)
    assert sentry_post(http, issue_body("archived", "2025-03-14T14:40:00Z")).json_body["reason"] == "RESOLVED"


def test_a_pagerduty_ack_dated_before_a_reopen_does_not_silence_the_sev1(client: Any, deps: Any) -> None:  # noqa: F811  (deps: the PagerDuty one)
    outcome = on_event(sns_event("sns-cloudwatch-alarm-metric.json", message_id=new_id()), "sns", deps)
    incident_id = outcome["outcomes"][0]["incident_id"]
    deps.clock.advance(minutes=1)
    raw, headers = webhook("incident.acknowledged", incident_id, occurred_at=T0 + timedelta(seconds=50))
    client.http.post("/webhooks/pagerduty", headers=headers, body=raw)
    deps.clock.advance(minutes=2)
    assert deps.pipeline.mark_phi_exposure(incident_id, "alice").status is IncidentStatus.OPEN  # Sev1: re-opened
    deps.clock.advance(minutes=1)
    raw, headers = webhook("incident.acknowledged", incident_id, occurred_at=T0 + timedelta(seconds=55))
    client.http.post("/webhooks/pagerduty", headers=headers, body=raw)
    assert deps.store.get(incident_id).status is IncidentStatus.OPEN


@pytest.mark.parametrize("text", ["call 5551234567 back", "call 555 1234567 back"])
def test_phone_numbers_without_separators_are_masked(text: str) -> None:
    assert phi.mask(text) == f"call {phi.MASK} back"


def test_epoch_seconds_are_not_mistaken_for_phone_numbers() -> None:
    assert phi.mask("at 1741962600") == "at 1741962600"


@pytest.mark.parametrize("command", ["replay", "simulate"])
def test_the_cli_refuses_deep_json_in_one_line(tmp_path: Any, capsys: Any, monkeypatch: Any, command: str) -> None:
    from chalicelib.cli import main

    monkeypatch.setenv("RESPONDER_STORE", f"sqlite:///{tmp_path}/s.db")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    code = main([command, str(deep)])
    err = capsys.readouterr().err
    assert code == 1 and "nested deeper than 64" in err and len(err.strip().splitlines()) == 1
