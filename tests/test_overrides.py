"""On-call overrides without a deploy (issue 13 §3): ``POST/GET /oncall/overrides``,
``DELETE /oncall/overrides/{id}``, the CLI, kept in the store and used by ``holders()`` when paging;
through chalice.test.Client on both stores."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.cli import main
from chalicelib.models import PageKind
from chalicelib.web.tokens import Role
from chalicelib.wiring import Deps
from tests.conftest import T0, FakeClock, RecordingChannel, app_on
from tests.test_operations import cli, cli_store, paged, post  # noqa: F401 (cli_store: a fixture)

WINDOW = {"role": "founder-primary", "person": "christian", "from": (T0 - timedelta(hours=1)).isoformat(),
          "to": (T0 + timedelta(hours=2)).isoformat()}


@pytest.fixture(params=["sqlite", "dynamodb"])
def env(request: Any, tmp_path: Path, clock: FakeClock, console: RecordingChannel) -> Iterator[tuple[Client, Deps]]:
    yield from app_on(request.param, tmp_path, clock, console)


@pytest.fixture
def token(env: tuple[Client, Deps]) -> str:
    return env[1].tokens.create("giles", Role.RESPONDER)[1]


def listed(http: Client, token: str) -> list[dict[str, Any]]:
    response = http.http.get("/oncall/overrides", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.json_body
    return list(response.json_body["overrides"])


def test_an_override_made_through_the_api_pages_its_person_and_its_removal_stops_that(
        env: tuple[Client, Deps], token: str, console: RecordingChannel, clock: FakeClock) -> None:
    http, _ = env
    made = post(http, token, "/oncall/overrides", WINDOW)
    assert made.status_code == 201, made.json_body
    override = made.json_body
    assert override["by"] == "giles" and override["role"] == "founder-primary" and override["id"].startswith("ovr-")
    assert listed(http, token) == [override]
    assert post(http, token, "/incidents", {"severity": 1, "title": "checkout down"}).status_code == 201
    assert paged(console) == [("christian", PageKind.TRIGGER)]  # founder-primary is christian for now, not giles
    removed = http.http.delete(f"/oncall/overrides/{override['id']}", headers={"Authorization": f"Bearer {token}"})
    assert removed.status_code == 200 and removed.json_body["removed_by"] == "giles"
    assert listed(http, token) == []
    clock.advance(minutes=1)
    assert post(http, token, "/incidents", {"severity": 1, "title": "search down"}).status_code == 201
    assert paged(console) == [("giles", PageKind.TRIGGER)]
    gone = http.http.delete(f"/oncall/overrides/{override['id'][:-1]}x", headers={"Authorization": f"Bearer {token}"})
    assert gone.status_code == 404 and gone.json_body["field"] == "id"


def test_an_override_is_used_by_the_sweep_once_it_starts(env: tuple[Client, Deps], token: str,
                                                         console: RecordingChannel, clock: FakeClock) -> None:
    http, deps = env
    later = {**WINDOW, "role": "founder-backup", "person": "engineer-daytime",
             "from": (T0 + timedelta(minutes=4)).isoformat()}
    assert post(http, token, "/oncall/overrides", later).status_code == 201
    assert post(http, token, "/incidents", {"severity": 1, "title": "checkout down"}).status_code == 201
    assert paged(console) == [("giles", PageKind.TRIGGER)]
    clock.now = T0 + timedelta(minutes=5)
    deps.pipeline.sweep()  # step 2, founder-backup: engineer-daytime by the stored override, not christian
    assert paged(console) == [("engineer-daytime", PageKind.ESCALATION)]


@pytest.mark.parametrize("change, field", [
    ({"role": "nobody-role"}, "role"), ({"person": "mallory"}, "person"), ({"role": None}, "role"),
    ({"from": "yesterday"}, "from"), ({"to": "2025-03-14T18:00:00"}, "to"),
    ({"to": WINDOW["from"]}, "to"), ({"color": "red"}, "color")])
def test_a_bad_override_is_refused_naming_the_field(env: tuple[Client, Deps], token: str, change: dict[str, Any],
                                                    field: str) -> None:
    http, _ = env
    body = {k: v for k, v in {**WINDOW, **change}.items() if v is not None}
    refused = post(http, token, "/oncall/overrides", body)
    assert refused.status_code == 400 and refused.json_body["field"] == field, refused.json_body
    assert listed(http, token) == []


def test_the_role_matrix_of_overrides(env: tuple[Client, Deps]) -> None:
    http, deps = env
    viewer = deps.tokens.create("vera", Role.VIEWER)[1]
    assert post(http, viewer, "/oncall/overrides", WINDOW).status_code == 403
    assert http.http.delete("/oncall/overrides/ovr-1", headers={"Authorization": f"Bearer {viewer}"}).status_code == 403
    assert listed(http, viewer) == []
    assert http.http.get("/oncall/overrides").status_code == 401


def test_the_cli_adds_lists_and_removes_overrides(cli_store: None, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    at = "--now", T0.isoformat()
    code, added, err = cli(capsys, "oncall", "override", "--role", "founder-primary", "--person", "christian",
                           "--from", WINDOW["from"], "--to", WINDOW["to"], "--by", "giles", *at)
    assert code == 0 and added["person"] == "christian" and added["by"] == "giles", err
    assert main(["oncall", "--json", "--at", T0.isoformat()]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["roles"]["founder-primary"] == ["christian"] and [o["id"] for o in shown["overrides"]] == [added["id"]]
    code, removed, err = cli(capsys, "oncall", "override-remove", added["id"], "--by", "giles", *at)
    assert code == 0 and removed["removed_by"] == "giles", err
    assert main(["oncall", "--json", "--at", T0.isoformat()]) == 0
    assert json.loads(capsys.readouterr().out)["roles"]["founder-primary"] == ["giles"]
    code, _, err = cli(capsys, "oncall", "override", "--role", "founder-primary", "--person", "mallory",
                       "--from", WINDOW["from"], "--to", WINDOW["to"], *at)
    assert code == 1 and "person: must name a person" in err and err.count("\n") == 1
