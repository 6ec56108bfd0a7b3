"""The minute sweep handles each due incident on its own: one that cannot be saved never
costs another incident its escalation (issue 10 §3)."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.errors import ConflictError, StoreError
from chalicelib.handlers import on_event
from chalicelib.models import Incident
from chalicelib.notify import delivery
from chalicelib.settings import Settings
from chalicelib.store.dynamodb import DynamoStore
from chalicelib.store.sqlite import SqliteStore
from chalicelib.wiring import Deps, build_deps
from tests.conftest import FakeClock, RecordingChannel, create_table, load_event, new_id
from tests.test_escalation import T


class RefusesOne:
    """A store whose every save of one incident fails (an item DynamoDB refuses, a bug …)."""

    refuse: str | None = None
    error: Exception = StoreError("ValidationException")

    def save(self, incident: Incident) -> Incident:
        if incident.id == self.refuse:
            raise self.error
        return super().save(incident)  # type: ignore[misc]


class SqliteRefusesOne(RefusesOne, SqliteStore):
    pass


class DynamoRefusesOne(RefusesOne, DynamoStore):
    pass


@pytest.fixture(params=["sqlite", "dynamodb"])
def refusing_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RefusesOne]:
    if request.param == "sqlite":
        yield SqliteRefusesOne(tmp_path / "s.db")
        return
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        yield DynamoRefusesOne(create_table(client), client=client)


def sev1_on(deps: Deps, bucket: str) -> str:
    event = copy.deepcopy(load_event("eventbridge-cloudtrail-s3-putobjectretention.json"))
    event["id"] = new_id()
    event["detail"]["requestParameters"]["bucketName"] = bucket
    outcome = on_event(event, "eventbridge", deps)["outcomes"][0]
    assert outcome["severity"] == 1 and outcome["reason"] == "OPENED"
    return str(outcome["incident_id"])


class Metrics:
    """Stands in for Powertools Metrics: what the sweep counted."""

    def __init__(self) -> None:
        self.added: list[tuple[str, float]] = []
        self.flushed = 0

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.added.append((name, value))

    def flush_metrics(self) -> None:
        self.flushed += 1


def two_sev1s(tmp_path: Path, error: Exception, store: RefusesOne | None = None,
              ) -> tuple[Deps, FakeClock, RecordingChannel, RefusesOne, str, str]:
    store = store or SqliteRefusesOne(tmp_path / "s.db")
    store.error = error
    clock, console = FakeClock(T), RecordingChannel()
    deps = build_deps(Settings.from_env({"RESPONDER_AUDIT": f"file://{tmp_path}/audit.jsonl"}), clock=clock,
                      store=store, channels={"console": lambda: console})
    broken, healthy = sev1_on(deps, "backup-vault-prod"), sev1_on(deps, "backup-vault-eu")
    store.refuse = broken
    return deps, clock, console, store, broken, healthy


@pytest.mark.parametrize("error", [StoreError("ValidationException: Item size has exceeded"),
                                   ConflictError("kept changing"), RuntimeError("a bug")],
                         ids=["store-error", "conflict", "bug"])
def test_an_incident_that_cannot_be_saved_does_not_stop_the_next_sev1s_escalation(
        tmp_path: Path, error: Exception, refusing_store: RefusesOne, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    deps, clock, console, _, broken, healthy = two_sev1s(tmp_path, error, refusing_store)
    deps.pipeline.escalator.incidents.pause = lambda attempt: None  # no waiting between conflict retries
    reported: list[Exception] = []
    monkeypatch.setattr(delivery, "_report_to_sentry", reported.append)
    metrics = Metrics()
    deps.pipeline.escalator.metrics = metrics
    clock.now = T + timedelta(minutes=5)
    with caplog.at_level(logging.INFO, logger="responder"):
        report = deps.pipeline.sweep()
    # the healthy Sev1's +5 minute step went out, whatever order the two came in
    assert [p.person for p in console.sent if p.incident_id == healthy] == ["giles", "christian"]
    assert report["incidents"] == 2 and report["errors"] == 1 and report["error_ids"] == [broken]
    assert report["sent"] == 1
    # logged by id and exception type only, reported to Sentry, counted in the metric
    [line] = [r for r in caplog.records if r.getMessage() == "sweep: incident failed"]
    assert line.outcome == {"incident_id": broken, "error": type(error).__name__}  # type: ignore[attr-defined]
    assert str(error) not in json.dumps(line.outcome)  # type: ignore[attr-defined]
    assert [type(e) for e in reported] == [type(error)]
    assert metrics.added == [("SweepIncidentFailed", 1)] and metrics.flushed == 1


def test_the_failed_incident_is_tried_again_next_minute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deps, clock, console, store, broken, _ = two_sev1s(tmp_path, StoreError("ThrottlingException"))
    monkeypatch.setattr(delivery, "_report_to_sentry", lambda exc: None)
    deps.pipeline.escalator.metrics = Metrics()
    clock.now = T + timedelta(minutes=5)
    assert deps.pipeline.sweep()["error_ids"] == [broken]
    store.refuse = None  # the store recovers
    clock.now = T + timedelta(minutes=6)
    report = deps.pipeline.sweep()
    assert report["errors"] == 0 and report["incidents"] == 1
    assert [p.person for p in console.sent if p.incident_id == broken] == ["giles", "christian"]


def test_failed_sweep_metric_is_one_emf_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    deps, clock, _, _, _, _ = two_sev1s(tmp_path, RuntimeError("a bug"))
    monkeypatch.setattr(delivery, "_report_to_sentry", lambda exc: None)
    clock.now = T + timedelta(minutes=5)
    capsys.readouterr()
    deps.pipeline.sweep()
    emf = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "AlarmResponder"
    assert emf["SweepIncidentFailed"] in ([1.0], 1.0)


def test_one_structured_line_per_run_with_the_counts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from chalicelib.handlers import sweep

    deps, clock, _, store, _, _ = two_sev1s(tmp_path, RuntimeError("unused"))
    store.refuse = None
    clock.now = T + timedelta(minutes=5)
    with caplog.at_level(logging.INFO, logger="responder"):
        sweep(deps)
    [line] = [r for r in caplog.records if r.getMessage() == "sweep done"]
    assert line.outcome == {"incidents": 2, "sent": 2, "failed": 0, "errors": 0,  # type: ignore[attr-defined]
                            "error_ids": [], "deferred": 0, "not_due": 0}


def test_sentry_capture_goes_through_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    import sentry_sdk

    captured: list[BaseException] = []
    monkeypatch.setattr(sentry_sdk, "capture_exception", captured.append)
    error = RuntimeError("x")
    delivery._report_to_sentry(error)
    assert captured == [error]


def test_a_slow_sweep_stops_starting_incidents_after_its_budget_and_leaves_them_due(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deps, clock, console, store, first, second = two_sev1s(tmp_path, RuntimeError("unused"))
    store.refuse = None
    third = sev1_on(deps, "backup-vault-ap")
    escalator = deps.pipeline.escalator
    advance, order = escalator.advance, []

    def slow(incident_id: str, now: Any, current: Any = None) -> Any:
        order.append(incident_id)
        clock.advance(seconds=25)  # this one took 25 s (a channel at its timeout, say)
        return advance(incident_id, now, current)

    monkeypatch.setattr(escalator, "advance", slow)
    clock.now = T + timedelta(minutes=5)
    report = deps.pipeline.sweep()
    assert report["incidents"] == 1 and report["deferred"] == 2 and len(order) == 1
    monkeypatch.setattr(escalator, "advance", advance)
    clock.now = T + timedelta(minutes=6)
    report = deps.pipeline.sweep()  # the next minute picks up the two left due
    assert report["incidents"] == 2 and report["deferred"] == 0
    paged = {p.incident_id for p in console.sent if p.person == "christian"}
    assert paged == {first, second, third}


def failing_first(tmp_path: Path) -> tuple[Deps, FakeClock, RefusesOne, str, str]:
    """A Sev1 that cannot be saved, due a minute before a healthy one."""
    store = SqliteRefusesOne(tmp_path / "s.db")
    store.error = StoreError("ValidationException")
    clock = FakeClock(T)
    deps = build_deps(Settings.from_env({"RESPONDER_AUDIT": f"file://{tmp_path}/audit.jsonl"}), clock=clock,
                      store=store, channels={"console": lambda: RecordingChannel()})
    broken = sev1_on(deps, "backup-vault-prod")
    clock.now = T + timedelta(minutes=1)
    healthy = sev1_on(deps, "backup-vault-eu")
    store.refuse = broken
    deps.pipeline.escalator.metrics = Metrics()
    return deps, clock, store, broken, healthy


def test_an_incident_whose_last_sweep_failed_is_tried_after_the_others(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deps, clock, _, broken, healthy = failing_first(tmp_path)
    monkeypatch.setattr(delivery, "_report_to_sentry", lambda exc: None)
    escalator = deps.pipeline.escalator
    advance, order = escalator.advance, []

    def recorded(incident_id: str, now: Any, current: Any = None) -> Any:
        order.append(incident_id)
        return advance(incident_id, now, current)

    monkeypatch.setattr(escalator, "advance", recorded)
    clock.now = T + timedelta(minutes=6)
    deps.pipeline.sweep()
    assert order == [broken, healthy]  # by due time: the broken one was due first
    order.clear()
    clock.now = T + timedelta(minutes=11)
    deps.pipeline.sweep()
    assert order == [healthy, broken]  # it failed last time: the others go first


def test_the_same_failure_is_reported_to_sentry_once_an_hour(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    deps, clock, _, _, _ = failing_first(tmp_path)
    reported: list[Exception] = []
    monkeypatch.setattr(delivery, "_report_to_sentry", reported.append)
    errors = 0
    for minute in range(6, 6 + 61):  # every minute for an hour
        clock.now = T + timedelta(minutes=minute)
        errors += deps.pipeline.sweep()["errors"]
    assert errors == 61  # still logged and counted every time
    assert len(reported) == 2  # at minute 6 and an hour later
