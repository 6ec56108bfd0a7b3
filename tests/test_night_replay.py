"""Issue 14 acceptance: the night replay (tests/events/night/) pages once per underlying problem.

The corpus is replayed through the CLI, ``replay FILE --now AT`` per event in the manifest's
order, on SQLite and on DynamoDB (moto). On main before grouping it paged 9 times (README.md
there); now: one page for the RDS failover, one for the failed deploy, and every event recorded.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.cli import main
from chalicelib.models import IncidentStatus, PageStatus
from chalicelib.store import full_timeline, open_store
from tests.conftest import EVENTS_DIR, create_table

NIGHT = EVENTS_DIR / "night"
SECRET = "night-replay-sentry-secret-NOT-REAL"  # the test value build.py signs with


@pytest.fixture(params=["sqlite", "dynamodb"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("SENTRY_CLIENT_SECRET", SECRET)
    monkeypatch.delenv("RESPONDER_CONFIG_DIR", raising=False)  # the shipped config: its example service
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'night.db'}"
        monkeypatch.setenv("RESPONDER_STORE", url)
        yield url
        return
    with mock_aws():
        url = f"dynamodb://{create_table(boto3.client('dynamodb', region_name='us-east-1'))}"
        monkeypatch.setenv("RESPONDER_STORE", url)
        yield url


def replay_night() -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for item in json.loads((NIGHT / "manifest.json").read_text()):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["replay", str(NIGHT / item["file"]), "--now", item["at"]]) == 0, item
        lines += [json.loads(line) for line in out.getvalue().splitlines()]
    return lines


def test_night_replay_pages_once_per_problem_and_records_every_event(store_url: str) -> None:
    outcomes = replay_night()
    store = open_store(store_url, dynamodb_client=boto3.client("dynamodb", region_name="us-east-1")
                       if store_url.startswith("dynamodb") else None)
    incidents = {i.id: i for i in store.list()}

    manifest = json.loads((NIGHT / "manifest.json").read_text())
    assert 20 <= len(manifest) <= 40
    # every event recorded: one outcome each, none refused, each on an incident it names or recorded alone
    assert len(outcomes) == len(manifest)
    assert all(o.get("status", 200) == 200 for o in outcomes)
    assert {o["reason"] for o in outcomes} <= {"OPENED", "ALREADY_OPEN", "RESOLVED", "ANNOTATED", "GROUPED",
                                               "INHIBITED", "WATCHING", "RECORDED"}
    assert all(o["incident_id"] in incidents for o in outcomes if o.get("incident_id"))

    pages = {i.id: [p for p in i.pages if p.kind.calls_for_action and p.status is PageStatus.SENT]
             for i in incidents.values()}
    paged = {i: p for i, p in pages.items() if p}
    assert sum(len(p) for p in paged.values()) == 2  # 9 on main before grouping
    failover, deploy = sorted((incidents[i] for i in paged), key=lambda i: i.opened_at)
    assert failover.title == "credentialing-db RDS-EVENT-0013" and failover.service == "credentialing-api"
    assert failover.related_count == 7  # RDS-EVENT-0049, two Sentry issues, 5xx, connections, latency, spike
    assert deploy.kind == "ecs_deployment" and deploy.status is IncidentStatus.RESOLVED
    assert deploy.severity.value == 1  # the unhealthy-hosts alarm released the watch at its severity
    assert "service credentialing-api" in paged[deploy.id][0].text
    held = [i for i in incidents.values() if i.held_by]
    assert len(held) == len(incidents) - 2 and all(i.held_by in paged for i in held)
    # the rollback was planned at the first alarm (dry run off prod): its playbook ran on the deploy's incident
    assert deploy.playbook == "deploy-rollback" and any("playbook" in e.what or "deploy-rollback" in e.what
                                                        for e in full_timeline(store, deploy))


def test_simulate_names_the_service_of_a_signal(capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RESPONDER_CONFIG_DIR", raising=False)
    assert main(["simulate", str(NIGHT / "06-alarm-5xx.json"), "--now", "2025-03-15T06:01:02Z"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["service"] == "credentialing-api"
    assert "service credentialing-api" in plan["pages"][0]["text"]
