"""Logs Lambda users can query: every line of a real handler invocation carries the Lambda
context in AWS Lambda Powertools' field names, and still no payload text or exception message."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib import observability
from chalicelib.wiring import Deps
from tests.conftest import SENTRY_SECRET, load_event, new_id, sns_event

POWERTOOLS_FIELDS = {"level", "location", "message", "timestamp", "service", "cold_start", "function_name",
                     "function_memory_size", "function_arn", "function_request_id"}
PLANTED = ("jane.patient@example.org", "Jane Q. Patient", "123-45-6789")


def test_sns_handler_lines_carry_the_lambda_context(deps: Deps, client: Client) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(observability.JsonFormatter())
    logging.getLogger("responder").addHandler(handler)
    try:
        for _ in range(2):
            client.lambda_.invoke("on_alarm_sns", sns_event("sns-cloudwatch-alarm-metric.json", message_id=new_id()))
    finally:
        logging.getLogger("responder").removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    handled = [line for line in lines if line["message"] == "event handled"]
    assert len(handled) == 2
    for line in handled:
        assert POWERTOOLS_FIELDS <= set(line)
        assert line["function_name"] == "on_alarm_sns" and line["function_memory_size"] == 1024  # .chalice/config.json
        assert line["service"] == "alarm-responder" and line["level"] == "INFO"
        assert line["location"].startswith("on_event:") and isinstance(line["cold_start"], bool)
        assert line["outcome"]["kind"] == "alarm"
    assert handled[0]["function_request_id"] != handled[1]["function_request_id"]  # one per invocation
    assert handled[1]["cold_start"] is False


def test_webhook_route_lines_carry_the_api_functions_context(deps: Deps, client: Client,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(observability.JsonFormatter())
    logging.getLogger("responder").addHandler(handler)
    try:
        body = json.dumps(load_event("sentry-issue-created.json")).encode()
        signature = hmac.new(SENTRY_SECRET.encode(), body, hashlib.sha256).hexdigest()
        response = client.http.post("/webhooks/sentry", body=body, headers={
            "Content-Type": "application/json", "Sentry-Hook-Resource": "issue", "Request-ID": "req-logs-1",
            "Sentry-Hook-Signature": signature})
    finally:
        logging.getLogger("responder").removeHandler(handler)
    assert response.status_code == 200
    [line] = [json.loads(x) for x in stream.getvalue().splitlines() if "sentry webhook handled" in x]
    assert POWERTOOLS_FIELDS <= set(line)
    assert line["function_name"] == "api_handler" and line["function_request_id"]
    assert line["xray_trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"


def test_a_failing_route_logs_the_exception_type_only(deps: Deps, client: Client,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib import handlers
    def crash(deps: Any = None) -> dict[str, Any]:
        raise ValueError(f"patient {PLANTED[1]} <{PLANTED[0]}> ssn {PLANTED[2]}")

    monkeypatch.setattr(handlers, "health", crash)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(observability.JsonFormatter())
    app_module.app.log.addHandler(handler)
    try:
        response = client.http.get("/health")
    finally:
        app_module.app.log.removeHandler(handler)
    assert response.status_code == 500
    assert response.json_body == {"message": "an internal error occurred; it has been logged", "error": "internal"}
    text = stream.getvalue()
    [line] = [json.loads(x) for x in text.splitlines()]
    assert line["exception_name"] == "ValueError" and line["level"] == "ERROR" and line["function_request_id"]
    assert not any(planted in text for planted in PLANTED) and "Traceback" not in text


def test_chalices_own_log_writes_our_json_lines() -> None:
    formatters = [h.formatter for h in app_module.app.log.handlers]
    assert any(isinstance(f, observability.JsonFormatter) for f in formatters)
    assert not any(f and f._fmt == app_module.app.FORMAT_STRING for f in formatters)  # Chalice's own handler is gone
    assert app_module.app.log.propagate is False  # nothing reaches a root handler that prints tracebacks


def test_cold_start_is_true_for_the_first_invocation_only() -> None:
    class Context:
        function_name, memory_limit_in_mb = "on_alarm_sns", "512"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:on_alarm_sns"
        aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"

    invocation = observability.LambdaInvocation()
    invocation.bind(Context())
    first = invocation.current()
    invocation.bind(Context())
    assert first["cold_start"] is True and invocation.current()["cold_start"] is False
    assert first["function_memory_size"] == 512 and first["function_arn"].endswith(":on_alarm_sns")


def test_outside_an_invocation_lambda_environment_still_names_the_function(monkeypatch: pytest.MonkeyPatch) -> None:
    """The token authorizer (no Chalice middleware runs for it) still logs its function name."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "alarm-responder-prod-token_authorizer")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
    fields = observability.LambdaInvocation().current()
    assert fields == {"cold_start": True, "function_name": "alarm-responder-prod-token_authorizer",
                      "function_memory_size": 512}


def test_timestamp_is_powertools_format() -> None:
    record = logging.LogRecord("responder", logging.INFO, __file__, 1, "m", None, None)
    record.created, record.msecs = 1796000000.123, 123.0
    line = json.loads(observability.JsonFormatter().format(record))
    assert line["timestamp"] == "2026-11-30 00:53:20,123+0000"


def test_token_authorizer_invocations_bind_their_own_context(deps: Deps) -> None:
    from chalice.local import LambdaContext

    context = LambdaContext("token_authorizer", 512)
    event = {"type": "TOKEN", "authorizationToken": "Bearer rsp_unknown", "methodArn": "arn:aws:execute-api:x"}
    policy = app_module.token_authorizer(event, context)
    assert policy["principalId"] == "anonymous"
    fields = observability.invocation.current()
    assert fields["function_name"] == "token_authorizer"
    assert fields["function_request_id"] == context.aws_request_id


def test_each_invocation_lines_carry_its_own_trace_id_and_request_id(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-invocation fields are encoded once per invocation: a warm container's next
    invocation (new request id, new X-Ray trace header) must not reuse the last one's."""
    class Context:
        function_name, memory_limit_in_mb = "on_alarm_sns", 512
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:on_alarm_sns"
        aws_request_id = "first-request"

    monkeypatch.setattr(observability, "invocation", observability.LambdaInvocation())
    formatter = observability.JsonFormatter()
    record = logging.LogRecord("responder", logging.INFO, __file__, 7, "event handled", None, None)
    record.outcome = {"reason": "NEW_INCIDENT", "pages": 1}
    lines = []
    for request_id, trace in (("first-request", "1-aaaa"), ("second-request", "1-bbbb")):
        monkeypatch.setenv("_X_AMZN_TRACE_ID", f"Root={trace};Parent=53995c3f42cd8ad8;Sampled=1")
        Context.aws_request_id = request_id
        observability.bind_lambda_context(Context())
        lines.append(json.loads(formatter.format(record)))
    assert [(x["function_request_id"], x["xray_trace_id"], x["cold_start"]) for x in lines] == [
        ("first-request", "1-aaaa", True), ("second-request", "1-bbbb", False)]
    assert set(lines[0]) == POWERTOOLS_FIELDS | {"xray_trace_id", "logger", "outcome"}
    assert lines[0]["outcome"] == {"reason": "NEW_INCIDENT", "pages": 1} and lines[0]["location"].endswith(":7")


def test_an_invocation_that_writes_no_line_reads_nothing_of_its_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 17 goal 1: binding is on every event's path; the context is read at the first line only."""
    reads: list[str] = []

    class Context:
        def __getattr__(self, name: str) -> str:
            reads.append(name)
            return "on_alarm_sns" if name == "function_name" else "7"

    invocation = observability.LambdaInvocation()
    monkeypatch.setattr(observability, "_encode_fixed", lambda fields: reads.append("encoded") or "")
    for _ in range(3):
        invocation.bind(Context())
    assert reads == []
    invocation.encoded()
    invocation.encoded()
    assert reads.count("encoded") == 1 and "function_name" in reads
    assert invocation.current()["cold_start"] is False  # the third invocation's
