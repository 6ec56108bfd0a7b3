"""The incident API through chalice.test.Client: role matrix, errors, ack, resolve, notes, paging."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.handlers import on_event
from chalicelib.web.tokens import Role
from chalicelib.wiring import Deps
from tests.conftest import RecordingChannel, load_event, new_id, sns_event


@pytest.fixture
def tokens(deps: Deps) -> dict[str, str]:
    made = {role.name.lower(): deps.tokens.create(f"{role.name.lower()}-person", role)[1] for role in Role}
    _, revoked = deps.tokens.create("former-employee", Role.ADMIN)
    deps.tokens.revoke(revoked)
    return made | {"revoked": revoked, "unknown": "rsp_0123456789ab_not-a-real-secret", "garbage": "Basic abc"}


@pytest.fixture
def incident_id(deps: Deps) -> str:
    outcome = on_event(load_event("eventbridge-cloudtrail-s3-putobjectlegalhold.json"), "eventbridge", deps)
    return str(outcome["outcomes"][0]["incident_id"])


def call(client: Client, method: str, path: str, token: str | None, body: Any = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = token if token.startswith("Basic") else f"Bearer {token}"
    raw = json.dumps(body).encode() if body is not None else b""
    return getattr(client.http, method.lower())(path, headers=headers, body=raw) if method != "GET" else \
        client.http.get(path, headers=headers)


ROUTES = [
    ("GET", "/incidents", None, "viewer"),
    ("GET", "/incidents/{id}", None, "viewer"),
    ("POST", "/incidents/{id}/notes", {"text": "looking at the bucket policy"}, "responder"),
    ("POST", "/incidents/{id}/ack", None, "responder"),
    ("POST", "/incidents/{id}/resolve", {"note": "retention was restored"}, "responder"),
    ("POST", "/incidents", {"severity": 3, "title": "customer reports wrong totals"}, "responder"),
    ("POST", "/incidents/{id}/escalate", None, "responder"),
    ("POST", "/incidents/{id}/reassign", {"to": "christian"}, "responder"),
    ("POST", "/incidents/{id}/snooze", {"until": "2025-03-14T16:00:00+00:00"}, "responder"),
    ("POST", "/incidents/{id}/severity", {"severity": 2}, "responder"),
    ("GET", "/oncall/overrides", None, "viewer"),
    ("POST", "/oncall/overrides", {"role": "founder-backup", "person": "giles", "from": "2025-03-14T16:00:00+00:00",
                                   "to": "2025-03-14T18:00:00+00:00"}, "responder"),
    ("GET", "/heartbeats", None, "viewer"),
    ("POST", "/heartbeats/nightly-backup", None, "responder"),  # no authorizer: the view checks the token
    ("POST", "/tokens", {"user": "new-hire", "role": "viewer"}, "admin"),
    ("DELETE", "/tokens/{token_id}", None, "admin"),
]
CALLERS = ["none", "unknown", "revoked", "garbage", "viewer", "responder", "admin"]


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("method, path, body, needs", ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
def test_role_matrix(client: Client, deps: Deps, tokens: dict[str, str], incident_id: str, caller: str,
                     method: str, path: str, body: Any, needs: str) -> None:
    victim_id, _ = deps.tokens.create("someone", Role.VIEWER)
    url = path.format(id=incident_id, token_id=victim_id)
    before = deps.store.get(incident_id).version
    response = call(client, method, url, None if caller == "none" else tokens[caller], body)
    if caller in ("none", "unknown", "revoked", "garbage"):
        assert response.status_code == 401
        assert deps.store.get(incident_id).status.value == "open"
        return
    allowed = Role[caller.upper()] >= Role[needs.upper()]
    created = method == "POST" and path.endswith(("/notes", "/tokens", "/incidents", "/overrides"))
    assert response.status_code == ((201 if created else 200) if allowed else 403), response.json_body
    if not allowed:
        assert response.json_body["error"] == "forbidden" and "needs" in response.json_body["message"]
        incident = deps.store.get(incident_id)
        assert incident.status.value == "open" and not any("note:" in e.what for e in incident.timeline)
        assert incident.version == before and len(deps.store.list()) == 1


def test_mutations_record_who(client: Client, deps: Deps, tokens: dict[str, str], incident_id: str) -> None:
    call(client, "POST", f"/incidents/{incident_id}/notes", tokens["responder"], {"text": "checking CloudTrail"})
    acked = call(client, "POST", f"/incidents/{incident_id}/ack", tokens["responder"]).json_body
    assert acked["status"] == "acknowledged" and acked["acknowledged_by"] == "responder-person"
    again = call(client, "POST", f"/incidents/{incident_id}/ack", tokens["admin"])
    assert again.status_code == 200 and again.json_body["acknowledged_by"] == "responder-person"  # idempotent
    resolved = call(client, "POST", f"/incidents/{incident_id}/resolve", tokens["admin"], {"note": "lock held"})
    assert resolved.json_body["resolved_by"] == "admin-person"
    timeline = [(e["by"], e["what"]) for e in resolved.json_body["timeline"]]
    assert ("responder-person", "note: checking CloudTrail") in timeline
    assert ("admin-person", "resolved by admin-person: lock held") in timeline
    conflict = call(client, "POST", f"/incidents/{incident_id}/ack", tokens["responder"])
    assert conflict.status_code == 409 and conflict.json_body["field"] == "status"


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize("path, field", [
    ("/incidents?status=sleeping", "status"), ("/incidents?severity=7", "severity"),
    ("/incidents?severity=two", "severity"), ("/incidents?since=yesterday", "since"),
    ("/incidents?since=2025-03-14T10:00:00", "since"), ("/incidents?limit=0", "limit"),
    ("/incidents?cursor=%25%25%25", "cursor"), ("/incidents?colour=red", "colour"),
    # forged cursors: a naive time (cannot be compared with ours), other shapes, deep nesting
    ("/incidents?cursor=" + _cursor(["2025-03-14T10:00:00", "inc-x"]), "cursor"),
    ("/incidents?cursor=" + _cursor({"a": 1, "b": 2}), "cursor"),
    ("/incidents?cursor=" + _cursor(["2025-03-14T10:00:00+00:00", ["inc-x"]]), "cursor"),
    ("/incidents?cursor=" + _cursor(["9999-12-31T23:59:59-23:59", "inc-x"]), "cursor"),
    ("/incidents?cursor=" + base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).decode(), "cursor"),
])
def test_bad_filters_are_400_naming_the_field(client: Client, tokens: dict[str, str], path: str, field: str) -> None:
    response = call(client, "GET", path, tokens["viewer"])
    assert response.status_code == 400 and response.json_body["field"] == field
    assert response.json_body["message"].startswith(f"{field}:") and "\n" not in response.json_body["message"]


@pytest.mark.parametrize("body, field", [
    ("not json", "body"), ([1, 2], "body"), ({}, "text"), ({"text": ""}, "text"), ({"text": 5}, "text"),
    ({"text": "x" * 5000}, "text"), ('{"text": ' + "[" * 100_000 + "]" * 100_000 + "}", "body"),
    ('{"text": "x", "n": Infinity}', "body"),
])
def test_bad_note_bodies_are_400(client: Client, tokens: dict[str, str], incident_id: str, body: Any,
                                 field: str) -> None:
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    response = client.http.post(f"/incidents/{incident_id}/notes", body=raw, headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {tokens['responder']}"})
    assert response.status_code == 400 and response.json_body["field"] == field


def test_unknown_incident_is_404_and_big_body_is_413(client: Client, tokens: dict[str, str],
                                                     incident_id: str) -> None:
    for method, path in (("GET", "/incidents/inc-nope"), ("POST", "/incidents/inc-nope/ack")):
        response = call(client, method, path, tokens["admin"])
        assert response.status_code == 404 and response.json_body["error"] == "not_found"
    big = {"text": "x" * (300 * 1024)}
    response = call(client, "POST", f"/incidents/{incident_id}/notes", tokens["responder"], big)
    assert response.status_code == 413 and response.json_body["field"] == "body"


def test_list_filters_and_paginates(client: Client, deps: Deps, tokens: dict[str, str], clock: Any) -> None:
    ids = []
    for n in range(5):
        clock.advance(minutes=1)
        event = sns_event("sns-cloudwatch-alarm-metric.json", message_id=new_id(),
                          AlarmArn=f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:a{n}")
        ids.append(on_event(event, "sns", deps)["outcomes"][0]["incident_id"])
    deps.pipeline.acknowledge(ids[0], "x")
    seen, cursor = [], None
    while True:
        page = call(client, "GET", "/incidents?limit=2" + (f"&cursor={cursor}" if cursor else ""),
                    tokens["viewer"]).json_body
        seen += [i["id"] for i in page["incidents"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))  # newest first, each once
    only_open = call(client, "GET", "/incidents?status=open&severity=2", tokens["viewer"]).json_body
    assert {i["id"] for i in only_open["incidents"]} == set(ids[1:])
    since = (clock.now).isoformat().replace("+00:00", "Z")
    assert [i["id"] for i in call(client, "GET", f"/incidents?since={since}", tokens["viewer"]).json_body[
        "incidents"]] == [ids[-1]]


def test_incident_detail_has_timeline_and_pages(client: Client, tokens: dict[str, str], incident_id: str) -> None:
    detail = call(client, "GET", f"/incidents/{incident_id}", tokens["viewer"]).json_body
    assert detail["id"] == incident_id and detail["timeline"][0]["what"].startswith("opened: SEV1")
    assert detail["pages"][0]["role"] == "founder-primary"


def test_created_token_works_once_shown_and_revoke_stops_it(client: Client, tokens: dict[str, str]) -> None:
    created = call(client, "POST", "/tokens", tokens["admin"], {"user": "dana", "role": "responder"}).json_body
    assert created["token"].startswith("rsp_") and created["role"] == "responder"
    assert call(client, "GET", "/incidents", created["token"]).status_code == 200
    revoked = call(client, "DELETE", f"/tokens/{created['id']}", tokens["admin"]).json_body
    assert revoked["revoked_at"] and "hash" not in revoked and "salt" not in revoked
    assert revoked["created_by"] == revoked["revoked_by"] == "admin-person"
    assert call(client, "GET", "/incidents", created["token"]).status_code == 401
    bad = call(client, "POST", "/tokens", tokens["admin"], {"user": "x", "role": "root"})
    assert bad.status_code == 400 and bad.json_body["field"] == "role"


def test_tokens_are_stored_only_as_salted_hashes(deps: Deps) -> None:
    token_id, token = deps.tokens.create("giles", Role.ADMIN)
    record, _ = deps.store.get_doc(f"token:{token_id}")
    assert token.split("_", 2)[2] not in json.dumps(record)
    assert {"salt", "hash"} <= set(record) and len(record["salt"]) == 32


def test_ack_tells_whoever_was_paged_on_the_channel_they_were_paged_on(deps: Deps, console: RecordingChannel) -> None:
    # issue 10: not only PagerDuty hears of an ack (that side is tested in test_pagerduty_sync.py)
    outcome = on_event(load_event("eventbridge-cloudtrail-s3-putobjectlegalhold.json"), "eventbridge", deps)
    deps.pipeline.acknowledge(outcome["outcomes"][0]["incident_id"], "giles")
    assert [(p.kind.value, p.person) for p in console.sent] == [("trigger", "giles"), ("acknowledge", "giles")]
    assert "acknowledged by giles — you can stand down" in console.sent[1].text
