"""A store that cannot be reached gives a 503 with the usual error body, never a dropped
connection or a bare 500: in the authorizer, in the views, on ack-link pages and webhooks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib import wiring
from chalicelib.errors import ConfigError, TransientError
from chalicelib.handlers import on_event
from chalicelib.models import IncidentStatus
from chalicelib.store.sqlite import SqliteStore
from chalicelib.web.tokens import Role
from chalicelib.wiring import Deps, override_deps
from tests.conftest import FakeClock, RecordingChannel, load_event, make_deps


class FlakyStore(SqliteStore):
    """A real store whose named methods raise what an unreachable DynamoDB raises, when told to."""

    def __init__(self, path: Path) -> None:
        self.failing: set[str] = set()
        super().__init__(path)

    def __getattribute__(self, name: str) -> Any:
        if name in object.__getattribute__(self, "failing"):
            raise TransientError(f"dynamodb {name} on alarm-responder-dev: NoRegionError")
        return object.__getattribute__(self, name)


@pytest.fixture
def flaky(tmp_path: Path, clock: FakeClock, console: RecordingChannel) -> Iterator[tuple[FlakyStore, Deps]]:
    store = FlakyStore(tmp_path / "state.db")
    deps = make_deps(store, clock, console)
    override_deps(deps)
    yield store, deps
    override_deps(None)


@pytest.fixture
def client() -> Iterator[Client]:
    with Client(app_module.app, stage_name="local") as c:
        yield c


def _get(client: Client, path: str, token: str) -> Any:
    return client.http.get(path, headers={"Authorization": f"Bearer {token}"})


def _assert_unavailable(response: Any) -> dict[str, Any]:
    assert response.status_code == 503, response.body
    body = json.loads(response.body)
    assert set(body) == {"message", "error"} and body["error"] == "unavailable"
    assert "the incident store cannot be reached" in body["message"]
    return dict(body)


def test_authorizer_cannot_read_tokens_503(flaky: tuple[FlakyStore, Deps], client: Client) -> None:
    store, deps = flaky
    _, token = deps.tokens.create("giles", Role.VIEWER)
    assert _get(client, "/incidents", token).status_code == 200
    store.failing = {"get_doc"}
    body = _assert_unavailable(_get(client, "/incidents", token))
    assert "NoRegionError" in body["message"]


def test_view_cannot_read_incidents_503(flaky: tuple[FlakyStore, Deps], client: Client) -> None:
    store, deps = flaky
    _, token = deps.tokens.create("giles", Role.RESPONDER)
    store.failing = {"list", "get"}
    _assert_unavailable(_get(client, "/incidents", token))
    _assert_unavailable(client.http.post("/incidents/inc-1/ack", headers={"Authorization": f"Bearer {token}"}))


def test_ack_link_page_503_and_the_link_still_works_later(flaky: tuple[FlakyStore, Deps], client: Client,
                                                          console: RecordingChannel) -> None:
    store, deps = flaky
    outcome = on_event(load_event("eventbridge-cloudtrail-s3-putobjectlegalhold.json"), "eventbridge", deps)
    incident = deps.store.get(outcome["outcomes"][0]["incident_id"])
    assert incident is not None and console.sent[0].ack_url  # the link is in the page giles received
    path = "/ack/" + console.sent[0].ack_url.rsplit("/", 1)[1]
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    store.failing = {"get"}
    _assert_unavailable(client.http.get(path))
    _assert_unavailable(client.http.post(path, headers=form, body=b""))
    store.failing = set()
    assert client.http.post(path, headers=form, body=b"").status_code == 200
    acked = deps.store.get(incident.id)
    assert acked is not None and acked.status is IncidentStatus.ACKNOWLEDGED


def test_settings_that_cannot_build_a_store_503(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any, **__: Any) -> Deps:
        raise ConfigError("environment", "RESPONDER_STORE", "expected sqlite:///path or dynamodb://table")

    override_deps(None)
    monkeypatch.setattr(wiring, "build_deps", broken)
    body = _assert_unavailable(_get(client, "/incidents", "rsp_0123456789ab_secret"))
    assert "RESPONDER_STORE" in body["message"]
    headers = {"Content-Type": "application/json", "Request-ID": "r-1"}
    _assert_unavailable(client.http.post("/webhooks/sentry", headers=headers, body=b"{}"))
