"""Property-based fuzzing of every inbound format: nothing crashes, nothing is lost.

- Any JSON, and mangled variants of every real sample, become signals; what is not
  recognised is an ``unknown`` signal with a reason.
- Through the whole pipeline, every delivery ends with a recorded outcome.
- Over HTTP (webhooks and the API), garbage gets a 4xx with a reason, never a 5xx.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from chalice.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import app as app_module
from chalicelib.handlers import on_event
from chalicelib.models import SignalKind
from chalicelib.sources import registry, to_signals
from chalicelib.store.sqlite import SqliteStore
from chalicelib.web.tokens import Role
from chalicelib.wiring import Deps, override_deps
from tests.conftest import SENTRY_SECRET, T0, FakeClock, RecordingChannel, inbound_event_files, load_event, make_deps

# Locally every run explores new inputs; in CI the examples are fixed (derandomized), so a red run
# means a change broke something, not that the fuzzer got lucky. FUZZ_EXAMPLES=2000 for a long hunt.
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "120")), derandomize=bool(os.environ.get("CI")),
                deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=40))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=5)), max_leaves=25)
SAMPLES = {name: load_event(name) for name in inbound_event_files()}


def mangle(value: Any, data: st.DataObject, depth: int = 0) -> Any:
    """Replace, drop or retype random parts of a real payload (keeps most of its shape)."""
    if isinstance(value, dict) and value:
        out = dict(value)
        for key in data.draw(st.lists(st.sampled_from(sorted(out)), max_size=3, unique=True)):
            choice = data.draw(st.integers(0, 3))
            if choice == 0:
                del out[key]
            elif choice == 1:
                out[key] = data.draw(json_values)
            else:
                out[key] = mangle(out[key], data, depth + 1)
        return out
    if isinstance(value, list) and value:
        return [mangle(v, data, depth + 1) for v in value]
    if isinstance(value, str) and value.startswith("{") and depth < 6:
        try:
            return json.dumps(mangle(json.loads(value), data, depth + 1))  # JSON inside JSON (Sns.Message)
        except ValueError:
            return value
    return value


@FUZZ
@given(payload=json_values)
def test_any_json_becomes_signals_with_reasons(payload: Any) -> None:
    signals = to_signals(payload, T0, "fuzz")
    assert signals
    for signal in signals:
        assert signal.delivery_id and signal.incident_key
        if signal.kind is SignalKind.UNKNOWN:
            assert signal.unknown_reason and "\n" not in signal.unknown_reason


@FUZZ
@given(name=st.sampled_from(sorted(SAMPLES)), data=st.data())
def test_mangled_real_payloads_never_crash_the_converters(name: str, data: st.DataObject) -> None:
    payload = mangle(copy.deepcopy(SAMPLES[name]), data)
    for signal in to_signals(payload, T0, "fuzz"):
        assert signal.kind is not SignalKind.UNKNOWN or signal.unknown_reason


@pytest.fixture
def fuzz_deps(tmp_path: Path) -> Iterator[Deps]:
    built = make_deps(SqliteStore(tmp_path / "fuzz.db"), FakeClock(), RecordingChannel())
    override_deps(built)
    yield built
    override_deps(None)


@FUZZ
@given(name=st.sampled_from(sorted(SAMPLES)), data=st.data())
def test_every_delivery_ends_with_a_recorded_outcome(fuzz_deps: Deps, name: str, data: st.DataObject) -> None:
    payload = mangle(copy.deepcopy(SAMPLES[name]), data)
    result = on_event(payload, "fuzz", fuzz_deps)
    for outcome in result["outcomes"]:
        record = fuzz_deps.store.get_delivery(outcome["delivery_id"])
        assert record is not None and record["status"] == "done", outcome


@FUZZ
@given(body=st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode())),
       resource=st.sampled_from(["issue", "error", "event_alert", "metric_alert", "installation", "comment", "x"]))
def test_signed_sentry_garbage_is_200_or_400_never_5xx(fuzz_deps: Deps, body: bytes, resource: str) -> None:
    signature = hmac.new(SENTRY_SECRET.encode(), body, hashlib.sha256).hexdigest()
    with Client(app_module.app, stage_name="dev") as client:
        response = client.http.post("/webhooks/sentry", body=body, headers={
            "Content-Type": "application/json", "Sentry-Hook-Signature": signature, "Sentry-Hook-Resource": resource})
    assert response.status_code in (200, 400), response.body
    if response.status_code == 400:
        assert response.json_body["field"] == "body" and response.json_body["recorded"]["kind"] == "unknown"


@FUZZ
@given(body=st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode())),
       signature=st.one_of(st.none(), st.text(max_size=80)))
def test_unsigned_webhook_garbage_is_401(fuzz_deps: Deps, body: bytes, signature: str | None) -> None:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Sentry-Hook-Signature"] = signature
        headers["X-PagerDuty-Signature"] = signature
    with Client(app_module.app, stage_name="dev") as client:
        sentry = client.http.post("/webhooks/sentry", body=body, headers=headers)
        pagerduty = client.http.post("/webhooks/pagerduty", body=body, headers=headers)
    assert sentry.status_code == 401 and sentry.json_body["field"] == "Sentry-Hook-Signature"
    assert pagerduty.status_code in (401, 503)
    assert fuzz_deps.store.list() == []


@FUZZ
@given(route=st.sampled_from(["notes", "resolve", "ack"]),
       body=st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode())))
def test_api_bodies_get_4xx_with_a_reason_never_5xx(fuzz_deps: Deps, route: str, body: bytes) -> None:
    token = fuzz_deps.tokens.create("fuzzer", Role.ADMIN)[1]
    outcome = on_event(load_event("eventbridge-cloudtrail-s3-putobjectlegalhold.json"), "eventbridge", fuzz_deps)
    incident_id = outcome["outcomes"][0]["incident_id"] or fuzz_deps.store.list()[0].id
    with Client(app_module.app, stage_name="dev") as client:
        response = client.http.post(f"/incidents/{incident_id}/{route}", body=body, headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    assert response.status_code < 500, response.body
    if response.status_code >= 400:
        assert response.json_body["message"] and "\n" not in response.json_body["message"]


@FUZZ
@given(data=st.data(), name=st.sampled_from(["pagerduty-webhook-incident-acknowledged.json",
                                             "pagerduty-webhook-incident-resolved.json",
                                             "pagerduty-webhook-incident-triggered.json"]))
def test_signed_pagerduty_garbage_is_2xx_or_4xx_never_5xx(tmp_path_factory: pytest.TempPathFactory,
                                                         data: st.DataObject, name: str) -> None:
    folder = tmp_path_factory.mktemp("pd")
    deps = make_deps(SqliteStore(folder / "s.db"), FakeClock(), RecordingChannel(),
                     env={"PAGERDUTY_WEBHOOK_SECRET": "pd-secret"})
    override_deps(deps)
    try:
        body = json.dumps(mangle(copy.deepcopy(load_event(name)), data)).encode()
        signature = "v1=" + hmac.new(b"pd-secret", body, hashlib.sha256).hexdigest()
        with Client(app_module.app, stage_name="dev") as client:
            response = client.http.post("/webhooks/pagerduty", body=body, headers={
                "Content-Type": "application/json", "X-PagerDuty-Signature": signature, "X-Webhook-Id": "w"})
        assert response.status_code in (200, 400), response.body
        if response.status_code == 400:
            assert response.json_body["field"] in ("event", "body")  # body: not JSON we accept (non-finite, too deep)
    finally:
        override_deps(None)


# --- every Lambda entry point, in the envelope its trigger guarantees -------------------------
#
# The trigger fixes the envelope (SNS always sends Records[].Sns with these keys, EventBridge
# the nine envelope fields; Chalice itself reads them); everything inside is fuzzed: text,
# any JSON, mangled real payloads, structures nested past every limit, huge messages.

SNS_SAMPLES = [s for s in SAMPLES.values() if isinstance(s, dict) and "Records" in s]
RULES = {  # function name → (source, detail-type) of its rule (every rule the sources declare)
    rule.name: (rule.pattern["source"][0], detail_type)
    for rule in registry.eventbridge_rules() for detail_type in rule.pattern["detail-type"][:1]
}


def rule_samples(detail_type: str) -> list[dict[str, Any]]:
    return [s for s in SAMPLES.values() if isinstance(s, dict) and s.get("detail-type") == detail_type]


def deep_text(levels: int) -> str:
    return "[" * levels + "]" * levels


def deep_dict(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"a": value}
    return value


DEPTHS = st.sampled_from([63, 65, 1500])  # 1500: past Python's recursion limit
messages = st.one_of(
    st.text(max_size=200),
    json_values.map(json.dumps),
    st.builds(lambda n: json.dumps({"AlarmName": "x", "NewStateValue": "ALARM", "deep": deep_dict(n)}), DEPTHS),
    DEPTHS.map(deep_text),
    st.sampled_from(['"' * 200_000, "x" * 300_000, '"\\' * 100_000, '{"lastSeen": Infinity}', '{"t": 1e999}']),
)


def sns_event(data: st.DataObject) -> dict[str, Any]:
    draw = data.draw
    records = []
    for _ in range(draw(st.integers(1, 3))):
        if SNS_SAMPLES and draw(st.booleans()):
            sns = copy.deepcopy(draw(st.sampled_from(SNS_SAMPLES))["Records"][0]["Sns"])
            sns = mangle(sns, data)
        else:
            sns = {"Type": draw(st.sampled_from(["Notification", "SubscriptionConfirmation", "x"])),
                   "TopicArn": "arn:aws:sns:us-east-1:123456789012:alerts",
                   "Timestamp": draw(st.one_of(st.just("2025-03-14T14:42:40.000Z"), st.text(max_size=30)))}
        sns.update({"MessageId": draw(st.one_of(st.uuids().map(str), st.just("same-id"))),
                    "Message": draw(messages), "Subject": sns.get("Subject"),
                    "MessageAttributes": sns.get("MessageAttributes", {})})
        records.append({"EventSource": "aws:sns", "EventVersion": "1.0", "Sns": sns})
    return {"Records": records}


def rule_event(data: st.DataObject, source: str, detail_type: str) -> dict[str, Any]:
    draw = data.draw
    samples = rule_samples(detail_type)
    choice = draw(st.integers(0, 3))
    if choice == 0 and samples:
        event = mangle(copy.deepcopy(draw(st.sampled_from(samples))), data)
        detail = event.get("detail")
    elif choice == 1:
        detail = draw(json_values)
    elif choice == 2:
        detail = deep_dict(draw(DEPTHS))
    else:
        detail = draw(st.dictionaries(st.text(max_size=12), json_values, max_size=6))
    return {"version": "0", "id": draw(st.one_of(st.uuids().map(str), st.text(max_size=20))),
            "detail-type": draw(st.one_of(st.just(detail_type), st.text(max_size=30))),
            "source": draw(st.one_of(st.just(source), st.text(max_size=20))), "account": "123456789012",
            "time": draw(st.one_of(st.just("2025-03-14T14:42:40Z"), st.text(max_size=30))), "region": "us-east-1",
            "resources": draw(st.lists(st.text(max_size=60), max_size=2)), "detail": detail}


def assert_traced(deps: Deps, result: Any) -> list[dict[str, Any]]:
    """Each signal of the delivery ended as a completed delivery record (its trace)."""
    outcomes = result["outcomes"]
    assert outcomes, "a delivery left no signal"
    for outcome in outcomes:
        record = deps.store.get_delivery(outcome["delivery_id"])
        assert record is not None and record["status"] == "done", outcome
        if outcome["kind"] == "unknown":
            assert outcome["unknown_reason"] and "\n" not in outcome["unknown_reason"]
    return list(outcomes)


def invoke_twice(deps: Deps, function: str, event: dict[str, Any]) -> None:
    with Client(app_module.app, stage_name="dev") as client:
        first = client.lambda_.invoke(function, event).payload
        assert_traced(deps, first)
        again = assert_traced(deps, client.lambda_.invoke(function, event).payload)
    assert {o["reason"] for o in again} == {"DUPLICATE"}  # a redelivery is a duplicate outcome


@FUZZ
@given(data=st.data())
def test_sns_entry_point_records_every_message(fuzz_deps: Deps, data: st.DataObject) -> None:
    invoke_twice(fuzz_deps, "on_alarm_sns", sns_event(data))


@FUZZ
@given(data=st.data(), function=st.sampled_from(sorted(RULES)))
def test_each_eventbridge_rule_records_every_event(fuzz_deps: Deps, data: st.DataObject, function: str) -> None:
    invoke_twice(fuzz_deps, function, rule_event(data, *RULES[function]))


def scheduled_event(draw: st.DrawFn) -> dict[str, Any]:
    return {"version": "0", "id": draw(st.uuids()).hex, "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": "2025-03-14T14:42:00Z", "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:123456789012:rule/x"], "detail": draw(json_values)}


@FUZZ
@given(data=st.data())
def test_schedules_run_over_whatever_the_fuzzed_deliveries_left(fuzz_deps: Deps, data: st.DataObject) -> None:
    clock = fuzz_deps.clock
    assert isinstance(clock, FakeClock)
    for _ in range(data.draw(st.integers(1, 3))):
        name = data.draw(st.sampled_from(sorted(SAMPLES)))
        on_event(mangle(copy.deepcopy(SAMPLES[name]), data), "fuzz", fuzz_deps)
    with Client(app_module.app, stage_name="dev") as client:
        for _ in range(data.draw(st.integers(1, 3))):
            clock.advance(minutes=data.draw(st.integers(1, 90)), seconds=data.draw(st.integers(0, 59)))
            report = client.lambda_.invoke("escalation_sweep", scheduled_event(data.draw)).payload
            assert {"incidents", "sent", "failed"} <= set(report)
            assert client.lambda_.invoke("canary", scheduled_event(data.draw)).payload["canary"] == "ok"


@FUZZ
@given(token=st.one_of(st.none(), st.text(max_size=120), st.text(max_size=60).map(lambda t: f"Bearer {t}")))
def test_the_authorizer_identifies_any_token_or_nobody(fuzz_deps: Deps, token: str | None) -> None:
    event = {"type": "TOKEN", "authorizationToken": token,
             "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abcdef/dev/GET/incidents"}
    with Client(app_module.app, stage_name="dev") as client:
        policy = client.lambda_.invoke("token_authorizer", event).payload
    assert policy["principalId"] == "anonymous" and policy["context"]["role"] == "none"


# --- every HTTP route ------------------------------------------------------------------------

segments = st.one_of(st.text(min_size=1, max_size=40), st.sampled_from(["inc-0", "..", "%", "a/b", "\u202e"]))


def assert_http_trace(response: Any) -> None:
    """No 5xx; a 4xx says why, as JSON, naming the field when a request part is at fault."""
    assert response.status_code < 500, (response.status_code, response.body[:300])
    if response.status_code >= 400 and response.headers.get("Content-Type", "").startswith("application/json"):
        body = json.loads(response.body)
        assert body["message"] and "\n" not in body["message"] and body["error"]
        if response.status_code in (400, 404, 413):
            assert body.get("field"), body


@FUZZ
@given(data=st.data())
def test_every_api_route_answers_garbage_with_a_4xx_naming_the_field(fuzz_deps: Deps, data: st.DataObject) -> None:
    token = fuzz_deps.tokens.create("fuzzer", Role.ADMIN)[1]
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    outcome = on_event(load_event("eventbridge-cloudtrail-s3-putobjectlegalhold.json"), "eventbridge", fuzz_deps)
    real_id = str(outcome["outcomes"][0]["incident_id"] or fuzz_deps.store.list()[0].id)
    incident_id = quote(data.draw(st.one_of(st.just(real_id), segments)), safe="")
    # Bodies nested past the recursion limit have their own test below (a known W5 bug).
    body = data.draw(st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode()),
                               st.integers(1, 63).map(lambda n: deep_text(n).encode())))
    query = data.draw(st.dictionaries(st.sampled_from(["status", "severity", "since", "limit", "cursor", "x"]),
                                      st.text(max_size=40), max_size=3))
    requests = [
        ("GET", "/incidents?" + urlencode(query)), ("GET", f"/incidents/{incident_id}"),
        ("GET", f"/incidents/{incident_id}/postmortem"), ("POST", f"/incidents/{incident_id}/phi-exposure"),
        ("POST", f"/incidents/{incident_id}/duties/{quote(data.draw(segments), safe='')}/done"),
        ("POST", "/tokens"), ("DELETE", f"/tokens/{quote(data.draw(segments), safe='')}"),
        ("POST", f"/incidents/{incident_id}/notes"), ("GET", "/health"),
    ]
    method, path = data.draw(st.sampled_from(requests))
    with Client(app_module.app, stage_name="dev") as client:
        response = client.http.request(method, path, headers=auth, body=body if method == "POST" else b"")
    assert_http_trace(response)


@pytest.mark.parametrize(("route", "status"), [("notes", 400), ("resolve", 400), ("ack", 200), ("phi-exposure", 200)])
def test_an_api_body_nested_100000_deep_is_a_400_naming_the_body(fuzz_deps: Deps, route: str, status: int) -> None:
    """Routes that read a body refuse it naming ``body``; ack and phi-exposure take none and ignore it."""
    token = fuzz_deps.tokens.create("fuzzer", Role.ADMIN)[1]
    outcome = on_event(load_event("eventbridge-cloudtrail-s3-putobjectlegalhold.json"), "eventbridge", fuzz_deps)
    incident_id = outcome["outcomes"][0]["incident_id"]
    with Client(app_module.app, stage_name="dev") as client:
        response = client.http.post(f"/incidents/{incident_id}/{route}", body=deep_text(100_000).encode(),
                                    headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    assert response.status_code == status
    if status == 400:
        assert response.json_body["field"] == "body"


def test_a_forged_cursor_with_a_naive_time_is_a_400_naming_the_cursor(fuzz_deps: Deps) -> None:
    token = fuzz_deps.tokens.create("fuzzer", Role.ADMIN)[1]
    on_event(load_event("eventbridge-cloudtrail-s3-putobjectlegalhold.json"), "eventbridge", fuzz_deps)
    cursor = base64.urlsafe_b64encode(json.dumps(["2025-03-14T14:00:00", "inc-x"]).encode()).decode()
    with Client(app_module.app, stage_name="dev") as client:
        response = client.http.get(f"/incidents?cursor={cursor}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400 and response.json_body["field"] == "cursor"


@FUZZ
@given(token=segments, method=st.sampled_from(["GET", "POST"]))
def test_ack_links_answer_any_token_with_a_page_never_a_5xx(fuzz_deps: Deps, token: str, method: str) -> None:
    with Client(app_module.app, stage_name="dev") as client:
        form = {"Content-Type": "application/x-www-form-urlencoded"} if method == "POST" else {}
        response = client.http.request(method, f"/ack/{quote(token, safe='')}", body=b"", headers=form)
    assert response.status_code < 500 or response.status_code == 503  # 503: links not configured here
    assert b"<h1>" in response.body
    assert fuzz_deps.store.list() == []


SENTRY_SAMPLES = {name: sample for name, sample in SAMPLES.items() if name.startswith("sentry-")}
SENTRY_RESOURCES = {"sentry-issue": "issue", "sentry-error": "error", "sentry-event-alert": "event_alert",
                    "sentry-metric-alert": "metric_alert", "sentry-installation": "installation"}


def sentry_resource(name: str) -> str:
    return next((r for prefix, r in SENTRY_RESOURCES.items() if name.startswith(prefix)), "issue")


ODD_SENTRY_SHAPES = [  # the shapes issue 11 names, each on a real body
    ("sentry-issue-created.json", ("data", "issue"), "a string"),
    ("sentry-issue-created.json", ("data", "issue", "project"), "a string"),
    ("sentry-event-alert.json", ("data", "event"), ["a", "list"]),
    ("sentry-error-created.json", ("data", "error"), "a string"),
]


def with_value(body: Any, path: tuple[str, ...], value: Any) -> Any:
    body = copy.deepcopy(body)
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


def post_signed_sentry(body: bytes, resource: str, request_id: str) -> Any:
    signature = hmac.new(SENTRY_SECRET.encode(), body, hashlib.sha256).hexdigest()
    with Client(app_module.app, stage_name="dev") as client:
        return client.http.post("/webhooks/sentry", body=body, headers={
            "Content-Type": "application/json", "Sentry-Hook-Signature": signature,
            "Sentry-Hook-Resource": resource, "Request-ID": request_id})


@pytest.mark.parametrize("name, path, value", ODD_SENTRY_SHAPES)
def test_odd_signed_sentry_shapes_become_signals(fuzz_deps: Deps, name: str, path: tuple[str, ...],
                                                 value: Any) -> None:
    body = json.dumps(with_value(SENTRY_SAMPLES[name], path, value)).encode()
    response = post_signed_sentry(body, sentry_resource(name), f"odd-{'.'.join(path)}")
    assert response.status_code == 200, response.body
    assert fuzz_deps.store.get_delivery(response.json_body["delivery_id"])["status"] == "done"


@FUZZ
@given(name=st.sampled_from(sorted(SENTRY_SAMPLES)), data=st.data())
def test_signed_mangled_sentry_payloads_leave_a_trace(fuzz_deps: Deps, name: str, data: st.DataObject) -> None:
    body = json.dumps(mangle(copy.deepcopy(SENTRY_SAMPLES[name]), data)).encode()
    response = post_signed_sentry(body, sentry_resource(name), data.draw(st.uuids()).hex)
    assert_http_trace(response)
    if response.status_code == 200:
        assert fuzz_deps.store.get_delivery(response.json_body["delivery_id"])["status"] == "done"
    else:
        assert response.json_body["field"] == "body" and response.json_body["recorded"]


def test_a_signed_sentry_issue_last_seen_1e20_is_a_signal(fuzz_deps: Deps) -> None:
    body = json.dumps(with_value(SENTRY_SAMPLES["sentry-issue-created.json"], ("data", "issue", "lastSeen"),
                                 1e20)).encode()
    response = post_signed_sentry(body, "issue", "last-seen-1e20")
    assert response.status_code == 200 and response.json_body["kind"] == "sentry_issue"


def test_a_signed_sentry_body_nested_100000_deep_is_a_recorded_400(fuzz_deps: Deps) -> None:
    response = post_signed_sentry(deep_text(100_000).encode(), "issue", "deep-body")
    assert response.status_code == 400 and response.json_body["field"] == "body"
    recorded = response.json_body["recorded"]  # recorded as an unknown signal, under its delivery id
    assert recorded["kind"] == "unknown" and fuzz_deps.store.get_delivery(recorded["delivery_id"])["status"] == "done"
