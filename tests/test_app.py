"""Functional tests through ``chalice.test.Client``: real payloads in, incidents and pages out."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.models import IncidentStatus, PageKind
from chalicelib.store import full_timeline
from chalicelib.wiring import Deps
from tests.conftest import SENTRY_SECRET, RecordingChannel, load_event, new_id, sns_event


def sign(body: bytes, secret: str = SENTRY_SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sentry_post(client: Client, body: bytes, *, resource: str = "issue", request_id: str | None = None,
                signature: str | None = None) -> Any:
    headers = {"Content-Type": "application/json", "Sentry-Hook-Resource": resource,
               "Request-ID": request_id or new_id(), "Sentry-Hook-Timestamp": "1741945600"}
    if signature != "":
        headers["Sentry-Hook-Signature"] = signature or sign(body)
    return client.http.post("/webhooks/sentry", headers=headers, body=body)


def compact(name: str) -> bytes:
    # Sentry sends compact JSON; we sign what we send, like Sentry does.
    return json.dumps(load_event(name), separators=(",", ":")).encode()


def test_alarm_pages_then_ok_resolves_then_alarm_again_opens_new_incident(
        client: Client, deps: Deps, console: RecordingChannel, clock: Any) -> None:
    client.lambda_.invoke("on_alarm_sns", sns_event("sns-cloudwatch-alarm-metric.json", message_id=new_id()))
    [first] = deps.store.list()
    assert first.status is IncidentStatus.OPEN and len(console.sent) == 1
    assert console.sent[0].kind is PageKind.TRIGGER and console.sent[0].role == "engineering-oncall"

    clock.advance(minutes=15)  # longer than the flapping window (10 min): the recovery resolves at once
    client.lambda_.invoke("on_alarm_sns", sns_event("sns-cloudwatch-alarm-ok.json", message_id=new_id()))
    resolved = deps.store.get(first.id)
    assert resolved.status is IncidentStatus.RESOLVED
    assert [p.kind for p in console.sent] == [PageKind.TRIGGER, PageKind.RESOLVE]
    assert console.sent[1].person == console.sent[0].person
    assert [p.kind for p in resolved.pages] == [PageKind.TRIGGER, PageKind.RESOLVE]

    clock.advance(minutes=5)
    client.lambda_.invoke("on_alarm_sns", sns_event("sns-cloudwatch-alarm-metric.json", message_id=new_id()))
    incidents = deps.store.list()
    assert len(incidents) == 2 and incidents[1].id != first.id and incidents[1].is_open
    assert [p.kind for p in console.sent] == [PageKind.TRIGGER, PageKind.RESOLVE, PageKind.TRIGGER]


def test_redelivered_sns_message_is_a_no_op(client: Client, deps: Deps, console: RecordingChannel) -> None:
    event = sns_event("sns-cloudwatch-alarm-metric.json", message_id=new_id())
    client.lambda_.invoke("on_alarm_sns", event)
    result = client.lambda_.invoke("on_alarm_sns", event).payload
    assert result["outcomes"][0]["reason"] == "DUPLICATE"
    [incident] = deps.store.list()
    assert incident.count == 1 and len(console.sent) == 1


def test_new_event_for_open_incident_counts_and_pages_no_one(
        client: Client, deps: Deps, console: RecordingChannel, clock: Any) -> None:
    client.lambda_.invoke("on_alarm_sns", sns_event("sns-cloudwatch-alarm-metric.json", message_id=new_id()))
    clock.advance(minutes=1)
    # the same transition also arrives through EventBridge: another delivery, same alarm
    result = client.lambda_.invoke("on_alarm_sns", sns_event("sns-cloudwatch-alarm-metric.json", message_id=new_id()))
    assert result.payload["outcomes"][0]["reason"] == "ALREADY_OPEN"
    [incident] = deps.store.list()
    assert incident.count == 2 and incident.last_seen == clock.now and len(console.sent) == 1
    # counted, not itemised: the full timeline has one line for the repeats
    assert not any(e.what.startswith("repeat") for e in incident.timeline)
    assert [e.what for e in full_timeline(deps.store, incident) if e.what.startswith("repeat")] == [
        f"repeat #2: counted (first seen {incident.opened_at:%Y-%m-%d %H:%M:%S}, "
        f"last seen {clock.now:%Y-%m-%d %H:%M:%S}; each delivery has its record)"]


def test_eventbridge_rules_reach_the_pipeline(client: Client, deps: Deps, console: RecordingChannel) -> None:
    client.lambda_.invoke("on_cloudtrail_s3", load_event("eventbridge-cloudtrail-s3-putobjectretention.json"))
    client.lambda_.invoke("on_ecs_deployment", load_event("ecs-deployment-failed.json"))
    client.lambda_.invoke("on_alarm_state_change", load_event("eventbridge-cloudwatch-alarm-state-change-single-metric.json"))
    by_kind = {i.kind.value: i for i in deps.store.list()}
    assert by_kind["cloudtrail"].severity == 1 and by_kind["cloudtrail"].playbook == "object-lock-alarm"
    assert by_kind["cloudtrail"].owner == "founder-primary"
    assert by_kind["ecs_deployment"].playbook == "deploy-rollback"
    assert {p.role for p in console.sent} == {"founder-primary", "engineering-oncall", "engineering-daytime"}
    client.lambda_.invoke("on_ecs_deployment", load_event("ecs-deployment-completed.json"))
    assert deps.store.get(by_kind["ecs_deployment"].id).status is IncidentStatus.RESOLVED


def test_unknown_input_is_kept_and_tracked(client: Client, deps: Deps, console: RecordingChannel) -> None:
    garbage = {"Records": [{"EventSource": "aws:sns", "Sns": {
        "MessageId": new_id(), "Type": "Notification", "Subject": None, "Message": "disk 97% full on db-2",
        "MessageAttributes": {}}}]}
    outcome = client.lambda_.invoke("on_alarm_sns", garbage).payload["outcomes"][0]
    assert outcome["kind"] == "unknown" and outcome["reason"] == "OPENED"
    kept = deps.store.get_delivery(outcome["delivery_id"])
    assert kept is not None and "disk 97% full on db-2" in kept["outcome"]["raw"]
    # the page says that something unknown arrived, not what it said
    assert "disk" not in console.sent[0].text and "unrecognised sns input" in console.sent[0].text


def test_sev4_is_recorded_without_a_page(client: Client, deps: Deps, console: RecordingChannel) -> None:
    client.lambda_.invoke("on_cloudtrail_s3", load_event("eventbridge-cloudtrail-s3-deleteobject-delete-marker.json"))
    [incident] = deps.store.list()
    assert incident.severity == 4 and incident.owner == "backlog" and console.sent == []


def test_signed_sentry_webhook_opens_incident(client: Client, deps: Deps, console: RecordingChannel) -> None:
    response = sentry_post(client, compact("sentry-metric-alert-critical.json"), resource="metric_alert")
    assert response.status_code == 200 and response.json_body["reason"] == "OPENED"
    [incident] = deps.store.list()
    assert incident.severity == 2 and incident.key == "sentry:metric:1002003:57"


def test_sentry_test_vector_verifies_on_raw_bytes(deps: Deps) -> None:
    from chalicelib.sources.sentry import verify_signature

    vector = load_event("sentry-signature-test-vector.json")
    verify_signature(vector["rawBody"].encode(), vector["headers"], vector["clientSecret"])


@pytest.mark.parametrize("case", ["missing", "wrong-secret", "tampered", "garbage"])
def test_forged_sentry_webhook_is_401_and_stores_nothing(client: Client, deps: Deps, case: str) -> None:
    body = compact("sentry-issue-created.json")
    signature = {"missing": "", "wrong-secret": sign(body, "not-the-secret"),
                 "tampered": sign(body), "garbage": "zz"}[case]
    if case == "tampered":
        body = body.replace(b'"level":"error"', b'"level":"fatal"')
    response = sentry_post(client, body, signature=signature)
    assert response.status_code == 401
    assert response.json_body["field"] == "Sentry-Hook-Signature"
    assert deps.store.list() == []


def test_sentry_redelivery_with_same_request_id_is_a_no_op(client: Client, deps: Deps,
                                                             console: RecordingChannel) -> None:
    body = compact("sentry-issue-created.json")
    first = sentry_post(client, body, request_id="6f1e7b7c0d5a4f0c9a3e2b1d0c9f8e7a")
    again = sentry_post(client, body, request_id="6f1e7b7c0d5a4f0c9a3e2b1d0c9f8e7a")
    assert first.json_body["reason"] == "OPENED" and again.json_body["reason"] == "DUPLICATE"
    assert len(deps.store.list()) == 1 and len(console.sent) == 1


def test_sentry_issue_resolved_resolves(client: Client, deps: Deps) -> None:
    created = load_event("sentry-issue-created.json")
    resolved = load_event("sentry-issue-resolved.json")
    resolved["data"]["issue"]["id"] = created["data"]["issue"]["id"]
    sentry_post(client, json.dumps(created).encode())
    response = sentry_post(client, json.dumps(resolved).encode())
    assert response.json_body["reason"] == "RESOLVED"


def test_signed_non_json_body_is_400_and_still_recorded(client: Client, deps: Deps) -> None:
    response = sentry_post(client, b"\x00not json")
    assert response.status_code == 400 and response.json_body["error"].startswith("body:")
    assert response.json_body["recorded"]["kind"] == "unknown"
    assert len(deps.store.list()) == 1


def test_webhook_over_lambdas_limit_is_413(client: Client, deps: Deps) -> None:
    body = b"{" + b" " * (6 * 1024 * 1024) + b"}"
    response = sentry_post(client, body)
    assert response.status_code == 413 and response.json_body["field"] == "body"


def test_missing_secret_is_503(client: Client, deps: Deps) -> None:
    deps.sentry_secret = None
    assert sentry_post(client, compact("sentry-issue-created.json")).status_code == 503


def test_sentry_payload_full_of_user_data_yields_a_clean_page(
        client: Client, deps: Deps, console: RecordingChannel) -> None:
    event = load_event("sentry-error-created.json")
    planted = {"email": "jane.patient@example.org", "name": "Jane Q. Patient", "ssn": "123-45-6789",
               "dob": "1961-07-04", "ip": "198.51.100.77"}
    error = event["data"]["error"]
    error["user"] = {"email": planted["email"], "ip_address": planted["ip"], "username": planted["name"],
                     "data": {"ssn": planted["ssn"], "dob": planted["dob"]}}
    error["title"] = f"ValueError: bad DOB {planted['dob']} for {planted['name']}"
    error["message"] = f"patient {planted['email']} ssn {planted['ssn']}"
    error["culprit"] = f"verify({planted['name']})"
    error["request"]["data"] = {"patient": planted}
    error["tags"].append(["user.email", planted["email"]])
    error["level"] = "fatal"
    response = sentry_post(client, json.dumps(event).encode(), resource="error")
    assert response.status_code == 200
    [incident] = deps.store.list()
    assert len(console.sent) == 1
    stored = incident.model_dump_json() + json.dumps(response.json_body)
    for value in planted.values():
        assert value not in console.sent[0].text
        assert value not in stored


def test_health(client: Client) -> None:
    response = client.http.get("/health")
    assert response.status_code == 200 and response.json_body["status"] == "ok"


def test_non_ascii_signature_is_a_401_not_a_crash(client: Client, deps: Deps) -> None:
    # found by the fuzz tests: hmac.compare_digest raises TypeError on non-ASCII str
    response = sentry_post(client, compact("sentry-issue-created.json"), signature="é" * 64)
    assert response.status_code == 401 and deps.store.list() == []
