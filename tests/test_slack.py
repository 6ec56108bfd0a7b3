"""Slack both ways (issue 13 §5): Block Kit buttons on our messages, ``POST /webhooks/slack``
(signature, replay window, the member mapped to a person, the action applied as them, the
message replaced in place) and the slash commands, through the Chalice test client on both stores.

Payload shapes are Slack's own (tests/events/slack/, provenance in tests/events/SOURCES.md),
signed here with a test secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import boto3
import pytest
from chalice.test import Client
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

import app as app_module
from chalicelib import config
from chalicelib.errors import ConfigError
from chalicelib.models import Incident, IncidentStatus, PageKind, Severity
from chalicelib.notify import slack_blocks
from chalicelib.notify.paging import PageRequest
from chalicelib.operations import Operations
from chalicelib.store.dynamodb import DynamoStore
from chalicelib.store.sqlite import SqliteStore
from chalicelib.web import slack
from chalicelib.wiring import Deps
from tests.conftest import (
    EVENTS_DIR,
    T0,
    FakeClock,
    RecordingChannel,
    config_with_channels,
    create_table,
    installed,
    make_deps,
)
from tests.test_fuzz import FUZZ, mangle

SECRET = "test-slack-signing-secret-0123456789"
FOUNDERS_WEBHOOK = "https://hooks.slack.com/services/T000/B000/FOUNDERS"
GILES_WEBHOOK = "https://hooks.slack.com/services/T000/B000/GILES"
GILES, CHRISTIAN, VIEWER, STRANGER = "W111", "U0CHRIS01", "U0VIEWER1", "U0NOBODY9"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class RecordingTransport:
    """Outbound HTTP as the channels and the response_url replies send it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Any:
        self.calls.append((url, json.loads(body)))
        return type("R", (), {"status": 200, "headers": {}, "body": b"ok"})()

    def get(self, url: str, timeout: float) -> Any:
        raise AssertionError("no GET expected")

    def to(self, url: str) -> list[dict[str, Any]]:
        return [body for called, body in self.calls if called == url]

    def replies(self) -> list[dict[str, Any]]:
        return [body for called, body in self.calls if called.startswith("https://hooks.slack.com/actions/")]


def slack_config(folder: Path) -> Path:
    """Giles paged on Slack; the founders' channel on Slack; three members mapped (one a viewer)."""
    channels = ("  slack-founders:\n    type: slack\n    webhook_url_env: SLACK_FOUNDERS_WEBHOOK_URL\n"
                "  slack-giles:\n    type: slack\n    webhook_url_env: SLACK_GILES_WEBHOOK_URL\n")
    config_with_channels(folder, channels, people={
        "giles": f"[slack-giles], slack_user: {GILES}",
        "christian": f"[console], slack_user: {CHRISTIAN}",
        "engineer-daytime": f"[console], slack_user: {VIEWER}, slack_role: viewer"})
    routing = folder / "routing.yaml"
    routing.write_text(routing.read_text() + "\ncommunications: {founder_channel: slack-founders}\n")
    return folder


def env_for(folder: Path) -> dict[str, str]:
    return {"RESPONDER_CONFIG_DIR": str(folder), "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_FOUNDERS_WEBHOOK_URL": FOUNDERS_WEBHOOK, "SLACK_GILES_WEBHOOK_URL": GILES_WEBHOOK}


@pytest.fixture
def transport() -> RecordingTransport:
    return RecordingTransport()


@pytest.fixture(params=["sqlite", "dynamodb"])
def app(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock, console: RecordingChannel,
        transport: RecordingTransport) -> Iterator[tuple[Client, Deps]]:
    env = env_for(slack_config(tmp_path))
    if request.param == "sqlite":
        for built in installed(make_deps(SqliteStore(tmp_path / "s.db"), clock, console, env, transport=transport)):
            with Client(app_module.app, stage_name="dev") as http:
                yield http, built
        return
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        store = DynamoStore(create_table(dynamodb), client=dynamodb)
        for built in installed(make_deps(store, clock, console, env, transport=transport)):
            with Client(app_module.app, stage_name="dev") as http:
                yield http, built


def signed(body: bytes, at: datetime, secret: str = SECRET) -> dict[str, str]:
    timestamp = str(int(at.timestamp()))
    digest = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {**FORM, "X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": f"v0={digest}"}


def button_body(verb: str, incident_id: str, user: str = GILES,
                response_url: str = "https://hooks.slack.com/actions/T111/111/random-value") -> bytes:
    payload = json.loads((EVENTS_DIR / "slack" / "block-actions-button.json").read_text())
    payload["actions"][0].update(action_id=f"{verb}:{incident_id}", value=incident_id)
    payload["user"]["id"] = user
    payload["response_url"] = response_url
    return urlencode({"payload": json.dumps(payload)}).encode()


def command_body(command: str, text: str, user: str = GILES) -> bytes:
    fields = dict(parse_qsl((EVENTS_DIR / "slack" / "slash-command.form").read_text(), keep_blank_values=True))
    fields.update(command=command, text=text, user_id=user)
    return urlencode(fields).encode()


def post(client: Client, body: bytes, at: datetime, secret: str = SECRET) -> Any:
    return client.http.post("/webhooks/slack", headers=signed(body, at, secret), body=body)


def open_sev1(deps: Deps) -> Incident:
    _, incident = Operations(deps.pipeline).page(severity=1, title="customer reports wrong totals", by="test")
    assert incident is not None and incident.status is IncidentStatus.OPEN
    return incident


def unchanged(deps: Deps, before: Incident) -> bool:
    after = deps.store.get(before.id)
    return after is not None and after.version == before.version and after.status is before.status


# --- our messages carry the buttons --------------------------------------------------------


def test_founders_channel_and_slack_paged_person_get_buttons_carrying_only_the_incident_id(
        app: tuple[Client, Deps], transport: RecordingTransport) -> None:
    _, deps = app
    incident = open_sev1(deps)
    [founders] = transport.to(FOUNDERS_WEBHOOK)
    [giles] = transport.to(GILES_WEBHOOK)
    for message in (founders, giles):
        [section, actions] = message["blocks"]
        assert section["type"] == "section" and "customer reports wrong totals" in section["text"]["text"]
        assert [(b["action_id"], b["value"], b["text"]["text"]) for b in actions["elements"]] == [
            (f"ack:{incident.id}", incident.id, "Acknowledge"), (f"resolve:{incident.id}", incident.id, "Resolve"),
            (f"take:{incident.id}", incident.id, "Take")]
    assert "/ack/" not in json.dumps(founders)  # the ack link is the paged person's alone
    assert "/ack/" in giles["text"]


def test_which_messages_carry_which_buttons() -> None:
    def verbs(kind: PageKind, page_id: str = "p") -> tuple[slack_blocks.Verb, ...]:
        return slack_blocks.page_verbs(PageRequest(role="r", person="p", channel="c", kind=kind, text="t",
                                                   incident_id="inc-1", severity=Severity.SEV1, source="s",
                                                   page_id=page_id))
    assert verbs(PageKind.TRIGGER) == verbs(PageKind.ESCALATION) == slack_blocks.ALL
    assert verbs(PageKind.UPDATE, "update:opened:slack") == verbs(PageKind.UPDATE, "update:raised to sev1:s") \
        == slack_blocks.ALL
    assert verbs(PageKind.UPDATE, "update:acknowledged:slack") == (slack_blocks.Verb.RESOLVE, slack_blocks.Verb.TAKE)
    for kind, page_id in ((PageKind.UPDATE, "update:resolved:slack"), (PageKind.RESOLVE, "p"),
                          (PageKind.REMINDER, "p"), (PageKind.ACKNOWLEDGE, "p")):
        assert verbs(kind, page_id) == ()
    assert slack_blocks.message("t", "x" * 300, slack_blocks.ALL)["blocks"][1:] == []  # an id too long for Slack
    assert slack_blocks.parse_action("ack:inc-1") == (slack_blocks.Verb.ACK, "inc-1")
    for bad in ("nuke:inc-1", "ack:", "ack", 7, None, "ack:" + "x" * 300):
        assert slack_blocks.parse_action(bad) is None


def test_messages_are_valid_block_kit_for_slacks_own_sdk(app: tuple[Client, Deps],
                                                         transport: RecordingTransport) -> None:
    from slack_sdk.models.blocks import Block

    open_sev1(app[1])
    for _, body in transport.calls:
        for block in body["blocks"]:
            Block.parse(block).validate_json()  # raises on anything Slack would refuse


# --- the signature ------------------------------------------------------------------------------


def test_bad_signature_is_401_and_nothing_changes(app: tuple[Client, Deps], transport: RecordingTransport,
                                                  clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    client, deps = app
    incident = open_sev1(deps)
    sent = len(transport.calls)
    body = button_body("ack", incident.id)
    for headers in (signed(body, clock(), "another-secret"), FORM,
                    {**signed(body, clock()), "X-Slack-Signature": "v1=" + "0" * 64},
                    {**signed(body, clock()), "X-Slack-Request-Timestamp": "yesterday"}):
        response = client.http.post("/webhooks/slack", headers=headers, body=body)
        assert response.status_code == 401 and response.json_body["error"] == "unauthorized"
        assert response.json_body["field"] in ("X-Slack-Signature", "X-Slack-Request-Timestamp")
        assert SECRET not in json.dumps(response.json_body)
    tampered = button_body("resolve", incident.id)
    assert client.http.post("/webhooks/slack", headers=signed(body, clock()), body=tampered).status_code == 401
    assert unchanged(deps, incident) and len(transport.calls) == sent
    assert "slack request refused" in caplog.text and SECRET not in caplog.text


def test_good_signature_older_than_5_minutes_or_ahead_is_401_and_nothing_changes(
        app: tuple[Client, Deps], transport: RecordingTransport, clock: FakeClock) -> None:
    client, deps = app
    incident = open_sev1(deps)
    sent = len(transport.calls)
    body = button_body("ack", incident.id)
    for at in (clock() - timedelta(minutes=5, seconds=1), clock() + timedelta(minutes=5, seconds=1)):
        response = post(client, body, at)
        assert response.status_code == 401 and response.json_body["field"] == "X-Slack-Request-Timestamp"
    assert unchanged(deps, incident) and len(transport.calls) == sent
    assert post(client, body, clock() - timedelta(minutes=4, seconds=59)).status_code == 200  # inside the window


def test_signature_agrees_with_slacks_sdk() -> None:
    from slack_sdk.signature import SignatureVerifier

    body = command_body("/oncall", "")
    headers = {k.lower(): v for k, v in signed(body, T0).items()}
    assert headers["x-slack-signature"] == SignatureVerifier(SECRET).generate_signature(
        timestamp=headers["x-slack-request-timestamp"], body=body)
    assert slack.check_signature(headers, body, SECRET, T0) is slack.Verdict.VALID
    assert slack.check_signature(headers, body, SECRET, T0 + timedelta(minutes=6)) is slack.Verdict.TOO_OLD
    assert slack.check_signature(headers, body, SECRET, T0 - timedelta(minutes=6)) is slack.Verdict.FROM_THE_FUTURE
    assert slack.check_signature(headers, body + b"&x=1", SECRET, T0) is slack.Verdict.MISMATCH
    assert slack.check_signature({}, body, SECRET, T0) is slack.Verdict.MISSING


def test_no_signing_secret_is_503(tmp_path: Path, clock: FakeClock, console: RecordingChannel) -> None:
    env = {k: v for k, v in env_for(slack_config(tmp_path)).items() if k != "SLACK_SIGNING_SECRET"}
    for _ in installed(make_deps(SqliteStore(tmp_path / "s.db"), clock, console, env)):
        with Client(app_module.app, stage_name="dev") as client:
            response = post(client, command_body("/oncall", ""), clock())
            assert response.status_code == 503 and "SLACK_SIGNING_SECRET" in response.json_body["message"]


# --- buttons ------------------------------------------------------------------------------------


def test_ack_button_acts_as_the_mapped_person_and_updates_the_message(
        app: tuple[Client, Deps], transport: RecordingTransport, clock: FakeClock) -> None:
    client, deps = app
    incident = open_sev1(deps)
    clock.advance(minutes=2)
    response = post(client, button_body("ack", incident.id), clock())
    assert response.status_code == 200
    acked = deps.store.get(incident.id)
    assert acked.status is IncidentStatus.ACKNOWLEDGED and acked.acknowledged_by == "giles"
    assert any(e.by == "giles" and e.what == "acknowledged by giles via slack" for e in acked.timeline)
    [reply] = transport.replies()
    assert reply["replace_original"] is True and "acknowledged by giles" in reply["text"]
    assert [b["action_id"] for b in reply["blocks"][1]["elements"]] == [f"resolve:{incident.id}", f"take:{incident.id}"]


def test_resolve_and_take_buttons(app: tuple[Client, Deps], transport: RecordingTransport,
                                  clock: FakeClock) -> None:
    client, deps = app
    incident = open_sev1(deps)
    assert post(client, button_body("take", incident.id, user=CHRISTIAN), clock()).status_code == 200
    taken = deps.store.get(incident.id)
    assert taken.owner == "christian"
    assert any(e.by == "christian" and "→ christian by christian" in e.what for e in taken.timeline)
    assert "taken by christian" in transport.replies()[-1]["text"]
    assert post(client, button_body("resolve", incident.id, user=CHRISTIAN), clock()).status_code == 200
    resolved = deps.store.get(incident.id)
    assert resolved.status is IncidentStatus.RESOLVED and resolved.resolved_by == "christian"
    last = transport.replies()[-1]
    assert "resolved by christian" in last["text"] and len(last["blocks"]) == 1  # no buttons left
    again = post(client, button_body("ack", incident.id, user=CHRISTIAN), clock())
    assert again.status_code == 200 and transport.replies()[-1]["response_type"] == "ephemeral"
    assert "resolved" in transport.replies()[-1]["text"]  # the 409's reason, to the presser only


@pytest.mark.parametrize("user", [STRANGER, VIEWER])
def test_unknown_or_viewer_slack_user_is_refused_and_nothing_changes(
        app: tuple[Client, Deps], transport: RecordingTransport, clock: FakeClock, user: str) -> None:
    client, deps = app
    incident = open_sev1(deps)
    for verb in ("ack", "resolve", "take"):
        response = post(client, button_body(verb, incident.id, user=user), clock())
        assert response.status_code == 200
        reply = transport.replies()[-1]
        assert reply["response_type"] == "ephemeral" and reply["replace_original"] is False
        assert "nothing was done" in reply["text"] or "needs responder" in reply["text"]
    assert unchanged(deps, incident)


def test_only_slacks_own_response_urls_are_called(app: tuple[Client, Deps], transport: RecordingTransport,
                                                  clock: FakeClock) -> None:
    client, deps = app
    incident = open_sev1(deps)
    sent = len(transport.calls)
    for url in ("https://evil.example/actions/1", "http://hooks.slack.com/actions/1",
                "https://hooks.slack.com.evil.example/actions/1"):
        assert post(client, button_body("ack", incident.id, response_url=url), clock()).status_code == 200
    assert deps.store.get(incident.id).status is IncidentStatus.ACKNOWLEDGED  # the action itself still counts
    assert all(not url.startswith(("https://evil", "http://", "https://hooks.slack.com.evil"))
               for url, _ in transport.calls[sent:])


@pytest.mark.parametrize("body, field", [
    (b"payload=%7Bnot-json", "payload"), (urlencode({"payload": json.dumps({"type": "view_submission"})}).encode(),
                                          "payload.type"), (b"hello=world", "body"), (b"\xff\xfe", "body")])
def test_bad_bodies_are_400_naming_the_field(app: tuple[Client, Deps], clock: FakeClock, body: bytes,
                                              field: str) -> None:
    response = post(app[0], body, clock())
    assert response.status_code == 400 and response.json_body["field"] == field


def test_a_button_that_is_not_ours_changes_nothing(app: tuple[Client, Deps], transport: RecordingTransport,
                                                   clock: FakeClock) -> None:
    client, deps = app
    incident = open_sev1(deps)
    body = urlencode({"payload": (EVENTS_DIR / "slack" / "block-actions-button.json").read_text()}).encode()
    assert post(client, body, clock()).status_code == 200  # the fixture as captured: action_id "a"
    assert transport.replies()[-1]["response_type"] == "ephemeral" and unchanged(deps, incident)
    assert post(client, button_body("ack", "inc-nope"), clock()).status_code == 200
    assert "No incident inc-nope" in transport.replies()[-1]["text"]


# --- slash commands -----------------------------------------------------------------------------


def test_oncall_lists_who_holds_each_role_now(app: tuple[Client, Deps], clock: FakeClock) -> None:
    response = post(app[0], command_body("/oncall", "", user=VIEWER), clock())  # a viewer may ask
    assert response.status_code == 200 and response.json_body["response_type"] == "ephemeral"
    lines = response.json_body["text"].split("\n")
    assert lines[0] == "On call at Fri 2025-03-14 10:42 America/New_York:"
    assert "founder-primary: giles" in lines and "engineering-daytime: engineer-daytime" in lines
    assert "backlog: nobody" in lines


def test_incident_ack_resolve_and_snooze(app: tuple[Client, Deps], clock: FakeClock) -> None:
    client, deps = app
    first, second = open_sev1(deps), open_sev1(deps)
    snoozed = post(client, command_body("/incident", f"snooze {first.id} 30m"), clock())
    assert snoozed.json_body["response_type"] == "in_channel", snoozed.json_body
    assert deps.store.get(first.id).snoozed_until == clock() + timedelta(minutes=30)
    until = (clock() + timedelta(hours=2)).isoformat()
    post(client, command_body("/incident", f"snooze {second.id} {until}", user=CHRISTIAN), clock())
    assert deps.store.get(second.id).snoozed_until == clock() + timedelta(hours=2)
    acked = post(client, command_body("/incident", f"ack {first.id}"), clock())
    assert acked.json_body["text"] == f"{first.id} acknowledged by giles"
    assert deps.store.get(first.id).acknowledged_by == "giles"
    resolved = post(client, command_body("/incident", f"  resolve   {first.id} ", user=CHRISTIAN), clock())
    assert resolved.json_body["text"] == f"{first.id} resolved by christian"
    assert any(e.by == "christian" and e.what.startswith("resolved by christian via slack")
               for e in deps.store.get(first.id).timeline)


def test_page_role_text_is_a_manual_page_through_the_pipeline(
        app: tuple[Client, Deps], transport: RecordingTransport, clock: FakeClock) -> None:
    client, deps = app
    response = post(client, command_body("/page", "founder-primary sev1 customer says totals &amp; tax are wrong"),
                    clock())
    assert response.status_code == 200 and response.json_body["response_type"] == "in_channel"
    [incident] = deps.store.list()
    assert incident.kind == "manual" and incident.severity is Severity.SEV1 and incident.owner == "founder-primary"
    assert incident.title == "customer says totals & tax are wrong" and incident.id in response.json_body["text"]
    assert any("customer says totals &amp; tax are wrong" in body["text"] for body in transport.to(GILES_WEBHOOK))
    post(client, command_body("/page", "engineering-oncall the nightly export is late"), clock())
    assert sorted(i.severity.value for i in deps.store.list()) == [1, 2]  # no sevN: Sev2


@pytest.mark.parametrize("command, text, user, reason", [
    ("/oncall", "", STRANGER, "not a person in routing.yaml"),
    ("/incident", "ack inc-1", VIEWER, "needs responder"),
    ("/deploy", "prod", GILES, "Unknown command /deploy"),
    ("/incident", "", GILES, "Usage: /incident"),
    ("/incident", "nuke inc-1", GILES, "Usage: /incident"),
    ("/incident", "ack inc-1 extra", GILES, "Usage: /incident"),
    ("/incident", "snooze {id} tomorrow", GILES, "until:"),
    ("/incident", "snooze {id} 9000d", GILES, "until:"),
    ("/incident", "ack inc-nope", GILES, "No incident"),
    ("/page", "", GILES, "Usage: /page"),
    ("/page", "founder-primary", GILES, "Usage: /page"),
    ("/page", "sales-team the CRM is down", GILES, "role:"),
])
def test_refusals_are_one_ephemeral_line_and_change_nothing(
        app: tuple[Client, Deps], transport: RecordingTransport, clock: FakeClock, command: str, text: str,
        user: str, reason: str) -> None:
    client, deps = app
    incident = open_sev1(deps)
    sent = len(transport.calls)
    response = post(client, command_body(command, text.format(id=incident.id), user=user), clock())
    assert response.status_code == 200 and response.json_body["response_type"] == "ephemeral"
    assert reason in response.json_body["text"] and "\n" not in response.json_body["text"]
    assert unchanged(deps, incident) and len(deps.store.list()) == 1 and len(transport.calls) == sent


# --- routing.yaml: slack_user -------------------------------------------------------------------


def test_slack_user_is_validated(tmp_path: Path) -> None:
    folder = slack_config(tmp_path)
    assert config.load(str(folder)).routing.people["christian"].slack_user == CHRISTIAN
    routing = folder / "routing.yaml"
    original = routing.read_text()
    for broken in (original.replace(CHRISTIAN, GILES),  # one member, two people
                   original.replace(CHRISTIAN, "christian@example.com"),
                   original.replace("slack_role: viewer", "slack_role: owner")):
        routing.write_text(broken)
        with pytest.raises(ConfigError):
            config.load(str(folder))


# --- fuzzing: signed garbage is a 200 with a reason or a 400 naming the field, never a 5xx ------


@FUZZ
@given(data=st.data(), command=st.sampled_from(["/oncall", "/incident", "/page", "/other", ""]),
       text=st.text(max_size=80), user=st.sampled_from([GILES, CHRISTIAN, VIEWER, STRANGER, ""]))
def test_signed_garbage_is_200_or_400_never_5xx(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject,
                                                command: str, text: str, user: str) -> None:
    folder = tmp_path_factory.mktemp("slack")
    clock = FakeClock()
    deps = make_deps(SqliteStore(folder / "s.db"), clock, RecordingChannel(), env_for(slack_config(folder)),
                     transport=RecordingTransport())
    incident = open_sev1(deps)
    payload = json.loads((EVENTS_DIR / "slack" / "block-actions-button.json").read_text())
    payload["user"]["id"] = user
    payload["actions"][0]["action_id"] = data.draw(st.sampled_from([f"ack:{incident.id}", f"take:{incident.id}",
                                                                     "resolve:inc-x", "a"]))
    bodies = [urlencode({"payload": json.dumps(mangle(payload, data))}).encode(),
              command_body(command, text, user), data.draw(st.binary(max_size=200))]
    for _ in installed(deps):
        with Client(app_module.app, stage_name="dev") as client:
            for body in bodies:
                response = post(client, body, clock())
                assert response.status_code in (200, 400), response.body
                if response.status_code == 400:
                    assert response.json_body["field"] in ("body", "payload", "payload.type")
