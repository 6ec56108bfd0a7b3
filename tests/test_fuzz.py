"""Property-based fuzzing of every inbound format: nothing crashes, nothing is lost.

- Any JSON, and mangled variants of every real sample, become signals; what is not
  recognised is an ``unknown`` signal with a reason.
- Through the whole pipeline, every delivery ends with a recorded outcome.
- Over HTTP (webhooks and the API), garbage gets a 4xx with a reason, never a 5xx.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import app as app_module
from chalicelib.handlers import on_event
from chalicelib.models import SignalKind
from chalicelib.sources import to_signals
from chalicelib.store.sqlite import SqliteStore
from chalicelib.tokens import Role
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
