"""One-click ack links: signed, bound to incident and person, expiring, single-use; GET changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.handlers import on_event
from chalicelib.models import IncidentStatus
from chalicelib.store.sqlite import SqliteStore
from chalicelib.wiring import Deps, override_deps
from tests.conftest import FakeClock, RecordingChannel, load_event, make_deps

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def deps(tmp_path: Path, clock: FakeClock, console: RecordingChannel) -> Iterator[Deps]:
    built = make_deps(SqliteStore(tmp_path / "s.db"), clock, console, env={
        "RESPONDER_PUBLIC_URL": "https://responder.example.com", "RESPONDER_LINK_SECRET": "link-secret-for-tests"})
    override_deps(built)
    yield built
    override_deps(None)


@pytest.fixture
def client(deps: Deps) -> Iterator[Client]:
    with Client(app_module.app, stage_name="dev") as c:
        yield c


def paged(deps: Deps) -> tuple[str, str]:
    outcome = on_event(load_event("eventbridge-cloudtrail-s3-putobjectretention.json"), "eventbridge", deps)
    incident_id = str(outcome["outcomes"][0]["incident_id"])
    [page] = deps.store.get(incident_id).pages
    assert page.ack_url and page.ack_url.startswith("https://responder.example.com/ack/")
    assert f"ack: {page.ack_url}" in page.text  # the link is in the page that was sent
    return incident_id, page.ack_url.rsplit("/ack/", 1)[1]


def test_get_shows_a_confirmation_and_changes_nothing(client: Client, deps: Deps) -> None:
    incident_id, token = paged(deps)
    for _ in range(3):  # a mail scanner prefetching it, twice, then the human
        response = client.http.get(f"/ack/{token}")
        assert response.status_code == 200 and b'<form method="post">' in response.body
        assert b"giles, you were paged" in response.body
    assert deps.store.get(incident_id).status is IncidentStatus.OPEN


def test_form_post_acknowledges_and_records_the_paged_person(client: Client, deps: Deps, clock: Any) -> None:
    incident_id, token = paged(deps)
    clock.advance(minutes=3)
    response = client.http.post(f"/ack/{token}", headers=FORM, body=b"")
    assert response.status_code == 200 and b"Acknowledged by giles" in response.body
    incident = deps.store.get(incident_id)
    assert incident.status is IncidentStatus.ACKNOWLEDGED and incident.acknowledged_by == "giles"
    assert incident.time_to_acknowledge == 180
    assert any(e.what == "acknowledged by giles via ack-link" for e in incident.timeline)


def test_second_use_changes_nothing(client: Client, deps: Deps) -> None:
    incident_id, token = paged(deps)
    client.http.post(f"/ack/{token}", headers=FORM, body=b"")
    version = deps.store.get(incident_id).version
    again = client.http.post(f"/ack/{token}", headers=FORM, body=b"")
    assert again.status_code == 409 and b"Already acknowledged" in again.body
    assert deps.store.get(incident_id).version == version


def test_link_used_on_a_still_open_incident_cannot_be_used_twice(deps: Deps) -> None:
    from chalicelib.links import LinkProblem

    assert deps.links is not None
    _, token = paged(deps)
    claim = deps.links.check(token, deps.clock())
    assert not isinstance(claim, LinkProblem)
    assert deps.links.use(deps.store, claim, deps.clock()) is True
    assert deps.links.use(deps.store, claim, deps.clock()) is False


def test_expired_link_changes_nothing(client: Client, deps: Deps, clock: Any) -> None:
    incident_id, token = paged(deps)
    clock.advance(minutes=31)
    for response in (client.http.get(f"/ack/{token}"), client.http.post(f"/ack/{token}", headers=FORM, body=b"")):
        assert response.status_code == 410 and b"This link has expired" in response.body
    assert deps.store.get(incident_id).status is IncidentStatus.OPEN


@pytest.mark.parametrize("tamper", ["payload", "signature", "truncate", "person"])
def test_forged_or_tampered_link_changes_nothing(client: Client, deps: Deps, tamper: str) -> None:
    import base64
    import json

    incident_id, token = paged(deps)
    payload, signature = token.split(".")
    if tamper == "payload":
        token = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + signature
    elif tamper == "signature":
        token = payload + "." + signature[::-1]
    elif tamper == "truncate":
        token = payload
    else:
        claim = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claim["p"] = "mallory"
        forged = base64.urlsafe_b64encode(json.dumps(claim).encode()).decode().rstrip("=")
        token = forged + "." + signature
    response = client.http.post(f"/ack/{token}", headers=FORM, body=b"")
    assert response.status_code in (400, 403) and b"This link is not valid" in response.body
    assert deps.store.get(incident_id).status is IncidentStatus.OPEN


def test_each_paged_person_gets_their_own_link(deps: Deps, clock: Any) -> None:
    incident_id, _ = paged(deps)
    clock.advance(minutes=5)
    deps.pipeline.sweep()
    pages = deps.store.get(incident_id).pages
    assert [p.person for p in pages] == ["giles", "christian"]
    assert pages[0].ack_url != pages[1].ack_url
