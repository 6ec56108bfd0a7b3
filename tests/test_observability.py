"""The responder's own error reports, logs and canary: no PHI, no slow handlers, a heartbeat."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sentry_sdk

from chalicelib import observability
from chalicelib.canary import run_canary
from chalicelib.handlers import on_event
from chalicelib.store.sqlite import SqliteStore
from tests.conftest import T0, FakeClock, RecordingChannel, load_event, make_deps

PLANTED = {"email": "jane.patient@example.org", "name": "Jane Q. Patient", "ssn": "123-45-6789",
           "dob": "1961-07-04", "ip": "198.51.100.77"}


class CapturingTransport(sentry_sdk.transport.Transport):
    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.envelopes: list[Any] = []

    def capture_envelope(self, envelope: Any) -> None:
        self.envelopes.append(envelope)

    def payloads(self) -> str:
        return "\n".join(item.payload.get_bytes().decode("utf-8", "replace")
                         for envelope in self.envelopes for item in envelope.items)


@pytest.fixture
def sentry() -> Iterator[CapturingTransport]:
    transport = CapturingTransport()
    assert observability.init_error_reporting({"SENTRY_DSN": "https://key@o0.ingest.example.invalid/1"}, transport)
    yield transport
    sentry_sdk.get_client().close(timeout=0)
    sentry_sdk.init()  # back to a disabled client for the other tests


def test_error_reports_carry_no_phi(sentry: CapturingTransport) -> None:
    def verify_patient(email: str, ssn: str, dob: str) -> None:
        patient = {"name": PLANTED["name"], "email": email, "ssn": ssn, "dob": dob, "ip_address": PLANTED["ip"]}
        raise ValueError(f"patient {patient} failed verification")

    sentry_sdk.set_user({"email": PLANTED["email"], "ip_address": PLANTED["ip"]})
    sentry_sdk.set_extra("payload", {"user": {"email": PLANTED["email"], "ssn": PLANTED["ssn"]}})
    logging.getLogger("responder").warning("about to verify %s", "a patient")
    try:
        verify_patient(PLANTED["email"], PLANTED["ssn"], PLANTED["dob"])
    except ValueError:
        sentry_sdk.capture_exception()
    sentry_sdk.flush(timeout=1)
    sent = sentry.payloads()
    assert "ValueError" in sent and "verify_patient" in sent  # the report is useful ...
    event = json.loads(next(line for line in sent.splitlines() if '"exception"' in line))
    assert event["timestamp"] and "[scrubbed]" not in str(event["timestamp"])
    for value in PLANTED.values():
        assert value not in sent  # ... and carries none of the planted data


def test_error_reporting_cannot_slow_handlers() -> None:
    transport = CapturingTransport()
    observability.init_error_reporting({"SENTRY_DSN": "https://key@o0.ingest.example.invalid/1"}, transport)
    try:
        options = sentry_sdk.get_client().options
        assert options["shutdown_timeout"] <= 0.5  # a black-holed DSN holds a failing handler 0.5 s at most
        assert options["data_collection"]["user_info"] is False and options["include_local_variables"] is False
        assert options["data_collection"]["stack_frame_variables"] is False
        assert options["auto_enabling_integrations"] is False
        names = {type(i).__name__ for i in sentry_sdk.get_client().integrations.values()}
        assert "ChaliceIntegration" in names and "Boto3Integration" not in names
    finally:
        sentry_sdk.get_client().close(timeout=0)
        sentry_sdk.init()


def test_no_dsn_means_no_sentry_and_no_import_cost() -> None:
    assert observability.init_error_reporting({}) is False


def test_logs_carry_outcomes_never_payload_text(tmp_path: Path) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(observability.JsonFormatter())
    logger = logging.getLogger("responder")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        deps = make_deps(SqliteStore(tmp_path / "s.db"), FakeClock(), RecordingChannel())
        event = load_event("sentry-error-created.json")
        event["data"]["error"]["user"] = {"email": PLANTED["email"], "ip_address": PLANTED["ip"]}
        event["data"]["error"]["title"] = f"{PLANTED['name']} {PLANTED['ssn']} {PLANTED['dob']}"
        on_event(event, "sentry", deps)
        try:
            raise KeyError(PLANTED["email"])
        except KeyError:
            logger.exception("a failure quoting input")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    text = stream.getvalue()
    assert text and all(json.loads(line) for line in text.splitlines())
    for value in PLANTED.values():
        assert value not in text


def test_canary_walks_classify_store_pager_and_emits_the_metric(tmp_path: Path, capsys: Any) -> None:
    channel = RecordingChannel()
    deps = make_deps(SqliteStore(tmp_path / "s.db"), FakeClock(), channel)
    report = run_canary(deps, T0)
    assert report["canary"] == "ok" and report["channel"] == "console"
    assert [p.text.startswith("[CANARY]") for p in channel.sent] == [True]
    assert deps.store.get_delivery(f"canary:{T0.isoformat()}")["status"] == "done"
    assert deps.store.list() == []  # canaries never become incidents
    emf = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    metrics = emf["_aws"]["CloudWatchMetrics"][0]
    assert metrics["Namespace"] == "AlarmResponder" and emf["CanaryCompleted"] in ([1.0], 1.0)
    assert ["service"] in metrics["Dimensions"]


def test_canary_failure_raises_so_the_metric_goes_missing(tmp_path: Path) -> None:
    deps = make_deps(SqliteStore(tmp_path / "s.db"), FakeClock(), RecordingChannel(fail=True))
    with pytest.raises(Exception, match="recording channel set to fail"):
        run_canary(deps, T0)


def test_merge_template_alarms_out_of_band_when_canaries_stop() -> None:
    from tests.conftest import ROOT

    template = json.loads((ROOT / ".chalice" / "merge-template.json").read_text())
    alarm = template["Resources"]["CanaryStoppedAlarm"]["Properties"]
    assert (alarm["MetricName"], alarm["Namespace"], alarm["TreatMissingData"]) == (
        "CanaryCompleted", "AlarmResponder", "breaching")
    assert alarm["AlarmActions"] == [{"Ref": "OutOfBandTopic"}]


def test_scrubber_masks_phones_mrns_and_values_under_patient_keys() -> None:
    event = {"timestamp": "2025-03-14T14:42:40Z", "level": "error",
             "extra": {"patient_name": "Jane Q. Patient", "dateOfBirth": "July 4th", "home_address": "1 Main St",
                       "note": "call (617) 555-0142 or +16175550142 about MRN 00482913", "filename": "app.py"},
             "tags": {"patientId": "p-77", "runtime": "CPython 3.11"},
             "exception": {"values": [{"type": "ValueError", "value": "patient Jane", "stacktrace": {
                 "frames": [{"function": "verify", "filename": "chalicelib/x.py", "lineno": 7}]}}]}}
    scrubbed = json.dumps(observability.scrub_event(event, None))
    for planted in ("Jane", "July 4th", "1 Main St", "555-0142", "6175550142", "00482913", "p-77"):
        assert planted not in scrubbed, planted
    for kept in ("CPython 3.11", "chalicelib/x.py", "verify", "ValueError", "app.py"):
        assert kept in scrubbed, kept  # still a useful report


def test_health_without_a_token_says_only_that_the_service_is_up(tmp_path: Path) -> None:
    from chalice.test import Client

    import app as app_module
    from chalicelib.wiring import override_deps

    override_deps(make_deps(SqliteStore(tmp_path / "s.db"), FakeClock(), RecordingChannel()))
    try:
        with Client(app_module.app, stage_name="dev") as client:
            response = client.http.get("/health")
    finally:
        override_deps(None)
    assert response.status_code == 200 and response.json_body == {"status": "ok"}  # no stage, no store
