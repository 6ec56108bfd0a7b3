"""Input at the edges: any depth, any size, and no PHI kept at rest.

- Structures nested 100,000 deep (an SNS ``Message``, an EventBridge ``detail``, a Lambda
  alarm action) become ``unknown`` signals with a reason, never ``RecursionError``.
- An unknown payload bigger than a DynamoDB item (a 200,000-quote SNS message) completes
  its delivery; the raw kept is clipped, with the original's size and sha256.
- What a delivery record keeps of an unrecognised input has its PHI-bearing keys dropped
  and identifiers in free text masked (a Sentry ``comment`` webhook with an e-mail and a name).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib import phi
from chalicelib.decisions.incidents import Reason
from chalicelib.handlers import on_event
from chalicelib.models import SignalKind
from chalicelib.sources import decode, payloads, to_signals
from chalicelib.sources.common import parse_time
from chalicelib.store.dynamodb import DynamoStore
from chalicelib.store.sqlite import SqliteStore
from chalicelib.wiring import Deps, override_deps
from tests.conftest import SENTRY_SECRET, T0, FakeClock, RecordingChannel, inbound_event_files, load_event, make_deps

DEEP = 100_000


def nested(levels: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


def sns_envelope(message: str, message_id: str = "m-edge") -> dict[str, Any]:
    return {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0", "Sns": {
        "Type": "Notification", "MessageId": message_id, "TopicArn": "arn:aws:sns:us-east-1:123456789012:alerts",
        "Subject": None, "Message": message, "Timestamp": "2025-03-14T14:42:40.000Z", "MessageAttributes": {}}}]}


# --- depth ------------------------------------------------------------------------------


def _with(name: str, key: str, value: Any) -> dict[str, Any]:
    event = copy.deepcopy(load_event(name))
    event[key] = value
    return event


DEEP_INPUTS: dict[str, Callable[[], Any]] = {
    "sns message nested in its JSON text": lambda: sns_envelope("[" * DEEP + "]" * DEEP),
    "eventbridge alarm detail": lambda: _with(
        "eventbridge-cloudwatch-alarm-state-change-single-metric.json", "detail", nested(DEEP)),
    "eventbridge unknown detail-type": lambda: {"id": "e-deep", "detail-type": "X", "source": "x",
                                                "detail": nested(DEEP)},
    "lambda alarm action": lambda: _with("cloudwatch-alarm-lambda-action-composite.json", "alarmData", nested(DEEP)),
    "sns http body": lambda: _with("sns-http-notification-cloudwatch-alarm.json", "MessageAttributes", nested(DEEP)),
    "sentry-like body": lambda: {"action": "created", "actor": {}, "data": nested(DEEP)},
    "pagerduty-like body": lambda: {"event": {"event_type": "incident.triggered", "data": nested(DEEP)}},
    "bare structure": lambda: nested(DEEP),
    "deep list": lambda: [nested(DEEP)],
}


@pytest.mark.parametrize("name", sorted(DEEP_INPUTS))
def test_input_nested_100000_deep_becomes_an_unknown_signal_with_a_reason(name: str) -> None:
    [signal] = to_signals(DEEP_INPUTS[name](), T0, "fuzz")
    assert signal.kind is SignalKind.UNKNOWN
    assert signal.unknown_reason and "deeper than 64 levels" in signal.unknown_reason


def test_a_deep_sns_message_keeps_its_message_id_and_a_deep_event_its_id() -> None:
    [sns] = to_signals(sns_envelope("{" * DEEP, message_id="m-42"), T0, "sns")
    [event] = to_signals(DEEP_INPUTS["eventbridge unknown detail-type"](), T0, "eventbridge")
    assert sns.delivery_id == "sns:m-42" and event.delivery_id == "eventbridge:e-deep"


@pytest.fixture
def sqlite_deps(tmp_path: Path, clock: FakeClock, console: RecordingChannel) -> Iterator[Deps]:
    built = make_deps(SqliteStore(tmp_path / "s.db"), clock, console)
    override_deps(built)
    yield built
    override_deps(None)


@pytest.mark.parametrize("name", ["eventbridge alarm detail", "sns message nested in its JSON text",
                                  "lambda alarm action"])
def test_a_deep_delivery_is_completed_and_a_redelivery_is_a_duplicate(sqlite_deps: Deps, name: str) -> None:
    event = DEEP_INPUTS[name]()
    [first] = on_event(event, "fuzz", sqlite_deps)["outcomes"]
    record = sqlite_deps.store.get_delivery(first["delivery_id"])
    assert record is not None and record["status"] == "done" and first["kind"] == "unknown"
    assert record["outcome"]["raw_bytes"] > 2 * DEEP and len(record["outcome"]["raw"]) < 10_000
    [again] = on_event(event, "fuzz", sqlite_deps)["outcomes"]
    assert again["reason"] == Reason.DUPLICATE.value


@pytest.mark.parametrize("value", [1e20, -1e20, float("inf"), float("nan"), 10**30])
def test_an_impossible_epoch_is_not_a_time(value: float) -> None:
    assert parse_time(value, T0) == T0


def test_decode_refuses_deep_and_non_finite_json_as_text() -> None:
    assert decode(b"[" * DEEP + b"]" * DEEP) == "[" * DEEP + "]" * DEEP
    assert decode('{"lastSeen": Infinity}') == '{"lastSeen": Infinity}'
    assert decode(b'{"a": [1]}') == {"a": [1]}


# --- size -------------------------------------------------------------------------------


@pytest.fixture
def dynamo_deps(dynamo_store: DynamoStore, clock: FakeClock, console: RecordingChannel) -> Iterator[Deps]:
    built = make_deps(dynamo_store, clock, console)
    override_deps(built)
    yield built
    override_deps(None)


def test_a_200000_quote_sns_message_completes_on_dynamodb_with_size_and_digest(dynamo_deps: Deps) -> None:
    event = sns_envelope('"' * 200_000, message_id="m-quotes")
    [outcome] = on_event(event, "sns", dynamo_deps)["outcomes"]
    assert outcome["kind"] == "unknown" and outcome["reason"] == "OPENED"
    record = dynamo_deps.store.get_delivery("sns:m-quotes")
    assert record is not None and record["status"] == "done"
    kept = record["outcome"]
    original = payloads.encode(event).encode()
    assert kept["raw_truncated"] is True and kept["raw_bytes"] == len(original) > 400_000
    assert kept["raw_sha256"] == hashlib.sha256(original).hexdigest()
    assert len(json.dumps(kept["raw"])) <= payloads.KEEP_BYTES and kept["raw"].startswith('{"Records": [')
    [again] = on_event(event, "sns", dynamo_deps)["outcomes"]
    assert again["reason"] == "DUPLICATE"


@pytest.mark.parametrize("message", ["x" * 300_000, '"\\' * 100_000, "a@" * 150_000],
                         ids=["one long word", "quote-backslash pairs", "at signs"])
def test_pathological_messages_take_one_pass_not_minutes(sqlite_deps: Deps, message: str) -> None:
    # Backtracking regexes (the e-mail mask, the JSON depth check) took minutes on these; linear
    # now. The bound is loose for a shared CI runner: the old code needed far more than 20 s.
    started = time.perf_counter()
    [outcome] = on_event(sns_envelope(message, message_id="m-slow"), "sns", sqlite_deps)["outcomes"]
    assert time.perf_counter() - started < 20
    assert sqlite_deps.store.get_delivery(outcome["delivery_id"])["status"] == "done"


def test_clip_keeps_the_longest_prefix_that_fits() -> None:
    assert payloads.clip("abc", 100) == "abc"
    clipped = payloads.clip("\x00" * 1000, 600)  # each encodes as \u0000: six bytes
    assert len(json.dumps(clipped)) <= 600 < len(json.dumps(clipped + "\x00"))


# --- PHI at rest ------------------------------------------------------------------------

COMMENT_WEBHOOK = {
    "action": "created",
    "installation": {"uuid": "7a485448-a9e2-4c85-8a3c-4f44175783c9"},
    "data": {"comment_id": "3238", "issue_id": "1170820242", "project_slug": "patient-portal",
             "timestamp": "2025-03-14T14:40:00Z",
             "comment": "Patient Jane Q. Doe (jane.doe@example.org, +1 617-555-0142, MRN 00482913) saw this"},
    "actor": {"type": "user", "id": "789", "name": "Giles Example", "email": "giles@example.com"},
}


def test_a_sentry_comment_keeps_no_name_email_phone_or_mrn_at_rest(sqlite_deps: Deps) -> None:
    body = json.dumps(COMMENT_WEBHOOK).encode()
    signature = hmac.new(SENTRY_SECRET.encode(), body, hashlib.sha256).hexdigest()
    with Client(app_module.app, stage_name="dev") as client:
        response = client.http.post("/webhooks/sentry", body=body, headers={
            "Content-Type": "application/json", "Sentry-Hook-Resource": "comment", "Request-ID": "req-comment",
            "Sentry-Hook-Signature": signature})
    assert response.status_code == 200 and response.json_body["kind"] == "unknown"
    record = sqlite_deps.store.get_delivery(response.json_body["delivery_id"])
    assert record is not None
    stored = json.dumps(record)
    for planted in ("Giles Example", "giles@example.com", "jane.doe@example.org", "617-555-0142", "00482913"):
        assert planted not in stored, planted
    kept = json.loads(record["outcome"]["raw"])
    assert kept["data"]["project_slug"] == "patient-portal" and kept["action"] == "created"  # still useful
    assert record["outcome"]["raw_sha256"] == hashlib.sha256(body).hexdigest()


def test_known_phi_keys_are_dropped_at_any_depth_and_inside_json_strings() -> None:
    event = {"user": {"id": 1}, "request": {"url": "x"}, "contexts": {}, "breadcrumbs": [], "extra": {},
             "level": "error",
             "tags": [["user.email", "a@b.org"], ["client_ip", "10.1.2.3"], ["level", "error"],
                      {"key": "patient_name", "value": "Jane"}, {"key": "browser", "value": "Firefox"}],
             "deep": {"patientName": "Jane", "dateOfBirth": "1961-07-04", "home_address": "1 Main St",
                      "sourceIPAddress": "10.1.2.3", "phone_number": "555", "description": "kept"},
             "Message": json.dumps({"patient": {"mrn": "1"}, "AlarmDescription": "kept too"})}
    kept = json.loads(payloads.kept(event)["raw"])
    assert kept == {"level": "error", "tags": [["level", "error"], {"key": "browser", "value": "Firefox"}],
                    "deep": {"description": "kept"}, "Message": json.dumps({"AlarmDescription": "kept too"},
                                                                           sort_keys=True)}


@pytest.mark.parametrize("key, phi_bearing", [
    ("email", True), ("user_email", True), ("e-mail", True), ("ip_address", True), ("sourceIPAddress", True),
    ("patient_name", True), ("firstName", True), ("dob", True), ("DateOfBirth", True), ("address", True),
    ("mrn", True), ("phone", True), ("user", True), ("breadcrumbs", True), ("zip_code", True),
    ("medicalRecordNumber", True), ("social_security_number", True), ("tel", True), ("birthday", True),
    ("diagnosis", True),
    ("description", False), ("recipient_count", False), ("level", False), ("filename", False),
])
def test_phi_keys_are_matched_by_word_not_substring(key: str, phi_bearing: bool) -> None:
    assert phi.is_phi_key(key) is phi_bearing


def test_masked_identifiers_in_free_text() -> None:
    text = "mail a.b@c.org, call (617) 555-0142 or +16175550142, SSN 123-45-6789, MRN: A0048291, ip 10.0.0.1"
    assert phi.mask(text) == ("mail [scrubbed], call [scrubbed] or [scrubbed], SSN [scrubbed], [scrubbed], "
                              "ip [scrubbed]")
    untouched = "disk 97% full on db-2 at 2025-03-14T14:42:40Z, account 123456789012, 1741963360.5"
    assert phi.mask(untouched) == untouched


@pytest.mark.parametrize("name", inbound_event_files())
def test_encode_is_json_dumps_sorted_for_every_sample(name: str) -> None:
    sample = load_event(name)
    assert payloads.encode(sample) == json.dumps(sample, sort_keys=True, default=str)


def test_depth_check_stops_at_the_limit() -> None:
    assert not payloads.deeper_than(nested(64)) and payloads.deeper_than(nested(65))
    assert payloads.encode(nested(3), max_depth=2) == '{"a": {"a": "[nested too deep]"}}'
