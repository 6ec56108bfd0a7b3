"""One-click ack links: signed, bound to incident and person, expiring, single-use; GET changes nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.handlers import on_event
from chalicelib.models import IncidentStatus
from chalicelib.store.sqlite import SqliteStore
from chalicelib.web.tokens import Role
from chalicelib.wiring import Deps
from tests.conftest import FakeClock, RecordingChannel, installed, load_event, make_deps

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def deps(tmp_path: Path, clock: FakeClock, console: RecordingChannel) -> Iterator[Deps]:
    built = make_deps(SqliteStore(tmp_path / "s.db"), clock, console, env={
        "RESPONDER_PUBLIC_URL": "https://responder.example.com", "RESPONDER_LINK_SECRET": "link-secret-for-tests"})
    yield from installed(built)


def paged(deps: Deps) -> tuple[str, str]:
    """Open a Sev1 (giles is paged on the console) and return its id and the token of giles's link,
    as his own channel received it."""
    console = deps.pager._channel("console")
    assert isinstance(console, RecordingChannel)
    before = len(console.sent)
    outcome = on_event(load_event("eventbridge-cloudtrail-s3-putobjectretention.json"), "eventbridge", deps)
    incident_id = str(outcome["outcomes"][0]["incident_id"])
    [sent] = console.sent[before:]
    assert sent.ack_url and sent.ack_url.startswith("https://responder.example.com/ack/")
    assert f"ack: {sent.ack_url}" in sent.text  # the link is in the page that was sent
    return incident_id, sent.ack_url.rsplit("/ack/", 1)[1]


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
    from chalicelib.notify.links import LinkProblem

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


def test_each_paged_person_gets_their_own_link(deps: Deps, clock: Any, console: RecordingChannel) -> None:
    incident_id, _ = paged(deps)
    clock.advance(minutes=5)
    deps.pipeline.sweep()
    pages = deps.store.get(incident_id).pages
    assert [p.person for p in pages] == ["giles", "christian"]
    assert [p.person for p in console.sent] == ["giles", "christian"]
    assert console.sent[0].ack_url != console.sent[1].ack_url
    assert pages[0].ack_link != pages[1].ack_link


# --- the link is the paged person's credential: nobody else can read it -----------------------


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _candidates(texts: list[str]) -> set[str]:
    """Everything in ``texts`` that could be tried as a link token: what follows any ``/ack/``, and
    every word (ids, nonces, hashes) a viewer can see."""
    found: set[str] = set()
    for text in texts:
        for word in re.split(r"[\s|\[\]()\"',]+", text):
            if "/ack/" in word:
                found.add(word.rsplit("/ack/", 1)[1])
            elif len(word) >= 8:
                found.add(word)
    return {c for c in found if c and "/" not in c}


def test_viewer_finds_no_usable_link_anywhere_and_acks_nothing(client: Client, deps: Deps, clock: Any) -> None:
    incident_id, token = paged(deps)
    clock.advance(minutes=5)
    deps.pipeline.sweep()  # the second step: christian has a link too
    _, viewer = deps.tokens.create("auditor", Role.VIEWER)
    auth = {"Authorization": f"Bearer {viewer}"}
    seen = []
    readable = sorted(path for path, methods in app_module.app.routes.items() if "GET" in methods
                      and not path.startswith("/ack/"))
    assert readable == ["/console", "/console/incidents/{incident_id}", "/console/login", "/console/oncall",
                        "/health", "/heartbeats", "/incidents", "/incidents/{incident_id}",
                        "/incidents/{incident_id}/postmortem", "/oncall/overrides"]
    # the console's pages with the viewer's own session (its cookie, not the bearer token)
    login = client.http.post("/console/login", headers=FORM, body=f"token={viewer}".encode())
    assert login.status_code == 303
    console = {"Cookie": login.headers["Set-Cookie"].split(";")[0]}
    for path in (p.replace("{incident_id}", incident_id) for p in readable):
        response = client.http.get(path, headers=console if path.startswith("/console") else auth)
        if path == "/console/login":  # a live session is sent on to the list
            assert response.status_code == 303, path
            continue
        assert response.status_code == 200, path
        seen.append(response.body.decode())
        if not {k.lower(): v for k, v in response.headers.items()}.get("content-type", "").startswith("text/"):
            seen += list(_strings(response.json_body))
    assert all(token not in text for text in seen)
    [page, _] = deps.store.get(incident_id).pages
    assert page.ack_link is not None and page.ack_link.redacted in page.text  # the stored text shows it redacted
    candidates = _candidates(seen)
    assert page.ack_link.id in candidates  # what verification needs is visible, and useless alone
    for candidate in sorted(candidates):
        for response in (client.http.get(f"/ack/{candidate}"),
                         client.http.post(f"/ack/{candidate}", headers=FORM, body=b"")):
            assert response.status_code != 200 or b"Acknowledged by" not in response.body, candidate
    assert deps.store.get(incident_id).status is IncidentStatus.OPEN


def test_no_stored_record_holds_the_link(deps: Deps, tmp_path: Path) -> None:
    incident_id, token = paged(deps)
    database = (tmp_path / "s.db").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("s.db-*"))
    assert token.encode() not in database and token.split(".")[1].encode() not in database
    assert token not in deps.store.get(incident_id).model_dump_json()


def test_the_persons_own_channel_gets_the_whole_link_every_time(deps: Deps, clock: Any) -> None:
    from chalicelib.notify.links import LinkProblem

    failing = RecordingChannel(fail=True)
    deps.pager._built["console"] = failing
    outcome = on_event(load_event("eventbridge-cloudtrail-s3-putobjectretention.json"), "eventbridge", deps)
    incident_id = str(outcome["outcomes"][0]["incident_id"])
    working = RecordingChannel()
    deps.pager._built["console"] = working
    clock.advance(seconds=31)
    deps.pipeline.sweep()  # the retry carries the same link, rebuilt from what was stored
    [sent] = working.sent
    assert sent.ack_url and f"ack: {sent.ack_url}" in sent.text
    assert deps.links is not None
    claim = deps.links.check(sent.ack_url.rsplit("/ack/", 1)[1], clock())
    assert not isinstance(claim, LinkProblem) and claim.incident_id == incident_id and claim.person == "giles"


def test_pages_stored_before_redaction_lose_their_link_when_read() -> None:
    from chalicelib.models import PageRecord

    stored = {"id": "SEV1#0/0:giles:console", "step": "SEV1#0/0", "role": "founder-primary", "person": "giles",
              "channel": "console", "kind": "trigger", "at": "2025-03-14T14:42:40Z",
              "text": "[SEV1] OPEN cloudtrail: x | incident inc-1 | ack: https://r.example/ack/abc.def | https://l",
              "ack_url": "https://r.example/ack/abc.def"}
    page = PageRecord.model_validate(stored)
    assert "abc.def" not in page.model_dump_json() and page.text.endswith("ack: [link redacted] | https://l")


# --- the ack page keeps the link to itself, and acts only on a POST from itself -----------------


def test_every_ack_page_keeps_the_link_out_of_caches_referrers_and_frames(client: Client, deps: Deps) -> None:
    _, token = paged(deps)
    responses = [client.http.get(f"/ack/{token}"), client.http.get("/ack/not.valid"),
                 client.http.post(f"/ack/{token}", headers=FORM, body=b""),
                 client.http.post(f"/ack/{token}", headers=FORM, body=b""),
                 client.http.post(f"/ack/{token}", headers={**FORM, "Origin": "https://evil.example"}, body=b"")]
    for response in responses:
        headers = {k.lower(): v for k, v in response.headers.items()}
        assert headers["cache-control"] == "no-store"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-content-type-options"] == "nosniff"
        policy = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
        assert "script-src" not in policy and "form-action 'self'" in policy


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Origin": "https://responder.example.com.evil.example"},
    {"Origin": "http://responder.example.com"},  # not the same origin: another scheme
    {"Origin": "null", "Sec-Fetch-Site": "cross-site"},  # a sandboxed frame on another site
    {"Sec-Fetch-Site": "cross-site"},
])
def test_post_from_another_origin_is_refused_and_changes_nothing(client: Client, deps: Deps,
                                                                  headers: dict[str, str]) -> None:
    incident_id, token = paged(deps)
    refused = client.http.post(f"/ack/{token}", headers={**FORM, **headers}, body=b"")
    assert refused.status_code == 403 and b"did not come from the responder" in refused.body
    assert deps.store.get(incident_id).status is IncidentStatus.OPEN
    # the link was not spent: the person's own press still works
    done = client.http.post(f"/ack/{token}", headers={**FORM, "Origin": "https://responder.example.com"}, body=b"")
    assert done.status_code == 200 and deps.store.get(incident_id).status is IncidentStatus.ACKNOWLEDGED


@pytest.mark.parametrize("headers", [
    {"Origin": "https://responder.example.com"},
    {"Origin": "https://Responder.Example.com:443"},
    # what Chromium sends for our own form under Referrer-Policy: no-referrer
    {"Origin": "null", "Sec-Fetch-Site": "same-origin"},
    {},  # no browser headers at all
])
def test_post_from_our_own_page_acknowledges(client: Client, deps: Deps, headers: dict[str, str]) -> None:
    incident_id, token = paged(deps)
    response = client.http.post(f"/ack/{token}", headers={**FORM, **headers}, body=b"")
    assert response.status_code == 200 and b"Acknowledged by giles" in response.body
    assert deps.store.get(incident_id).status is IncidentStatus.ACKNOWLEDGED


def test_pagerduty_gets_the_whole_link_as_its_acknowledge_button(tmp_path: Path, clock: FakeClock) -> None:
    from chalicelib.settings import Settings
    from chalicelib.wiring import build_deps
    from tests.conftest import config_with_channels
    from tests.test_pagerduty_sync import PagerDutyEvents

    config_with_channels(tmp_path, "  pagerduty-founders:\n    type: pagerduty\n    routing_key_env: PD_KEY\n",
                         {"giles": "[pagerduty-founders]"})
    settings = Settings.from_env({"RESPONDER_CONFIG_DIR": str(tmp_path), "PD_KEY": "R0TESTKEY",
                                  "RESPONDER_PUBLIC_URL": "https://responder.example.com",
                                  "RESPONDER_LINK_SECRET": "link-secret-for-tests",
                                  "RESPONDER_AUDIT": f"file://{tmp_path}/audit.jsonl"})
    pd = PagerDutyEvents()
    built = build_deps(settings, clock=clock, store=SqliteStore(tmp_path / "s.db"), transport=pd)
    outcome = on_event(load_event("eventbridge-cloudtrail-s3-putobjectretention.json"), "eventbridge", built)
    [event] = pd.sent
    link = event["links"][0]
    assert link["text"] == "Acknowledge" and link["href"].startswith("https://responder.example.com/ack/")
    assert f"ack: {link['href']}" in event["payload"]["summary"]
    stored = built.store.get(str(outcome["outcomes"][0]["incident_id"]))
    assert link["href"].rsplit("/", 1)[1] not in stored.model_dump_json()


@pytest.mark.parametrize(("headers", "verdict"), [
    ({"Origin": "https://responder.example.com"}, "SAME_ORIGIN"),
    ({"origin": "https://RESPONDER.example.com:443", "Sec-Fetch-Site": "same-origin"}, "SAME_ORIGIN"),
    ({"Origin": "null", "Sec-Fetch-Site": "same-origin"}, "SAME_ORIGIN"),
    ({}, "NOT_SAID"),
    ({"Origin": "null"}, "NOT_SAID"),  # an old browser under no-referrer, no fetch metadata
    ({"Origin": "https://responder.example.com:8443"}, "CROSS_ORIGIN"),
    ({"Origin": "https://evil.example", "Sec-Fetch-Site": "same-origin"}, "CROSS_ORIGIN"),
    ({"Origin": "not a url"}, "CROSS_ORIGIN"),
    ({"Origin": "https://[::1"}, "CROSS_ORIGIN"),
    ({"Sec-Fetch-Site": "same-site"}, "CROSS_ORIGIN"),
    ({"Origin": "null", "Sec-Fetch-Site": "none"}, "CROSS_ORIGIN"),
])
def test_check_origin_decides_by_what_the_browser_says(headers: dict[str, str], verdict: str) -> None:
    from chalicelib.web.ackpage import OriginCheck, check_origin

    assert check_origin(headers, "https://responder.example.com/api") is OriginCheck(verdict)
