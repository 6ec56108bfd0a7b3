"""The responder's own logs and error reports, with PHI and secrets kept out.

- Logs are one JSON object per line, holding the message and whitelisted structured
  fields (outcomes: ids, reasons, classification). Payload text is never logged, and of an
  exception only its type. Each line carries the Lambda context under the field names AWS
  Lambda Powertools' Logger uses (``function_name``, ``function_request_id``, ``cold_start``,
  ``xray_trace_id`` …), so CloudWatch Logs Insights queries written for Powertools work. They
  are written here rather than by Powertools' Logger: it would add ~46 ms of imports to the
  first event and still need its exception field (the message, which can quote input) removed.
- Error reporting (sentry-sdk) starts only when ``SENTRY_DSN`` is set, and must start
  before ``app.py`` declares its handlers, because the Chalice integration wraps
  handlers declared after ``init``. It runs with explicit integrations (no auto-enabling:
  it costs cold start and pulls in boto3), no user data, headers, bodies or local
  variables, exception messages replaced, a short shutdown timeout (a black-holed DSN must
  not hold a handler for seconds), and a recursive scrubber: values under secret or
  PHI-naming keys (``patient_name``, ``dob``, ``address``, ``phone``…; ``phi.is_phi_key``'s
  words) blanked, and e-mails, phones, SSNs, MRNs, dates and IPs masked in any string.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from typing import Any

from chalicelib import phi

_FIELDS = ("outcome",)
SERVICE = "alarm-responder"
_SCRUB_KEYS = ["email", "user_email", "ip_address", "client_secret", "webhook_token", "routing_key",
               "signature", "sentry-hook-signature", "x-pagerduty-signature", "body", "raw", "message",
               "phone", "ssn", "dob", "name", "user"]


class LambdaInvocation:
    """The Lambda context of the invocation being handled, for every log line it writes.

    ``bind`` runs at the start of each invocation (app.py's middleware); outside one (the
    CLI, tests) only what the environment says is known. ``bind`` only keeps the context: its
    fields are read, and with the service and X-Ray trace id JSON-encoded, once, at the
    invocation's first log line, so an invocation that writes none (a storm's repeat below
    INFO) pays nothing for them."""

    def __init__(self) -> None:
        self.cold_start = True
        self.fields: dict[str, Any] = {}
        self._context: Any = None
        self._bound = False
        self._bound_cold = True
        self._encoded: str | None = None

    def bind(self, context: Any) -> None:
        self._context, self._bound, self._bound_cold = context, True, self.cold_start
        self.cold_start = False
        self.fields, self._encoded = {}, None

    def current(self) -> dict[str, Any]:
        if self._bound:
            if not self.fields:
                context = self._context
                self.fields = {
                    "cold_start": self._bound_cold,
                    "function_name": str(getattr(context, "function_name", "") or ""),
                    "function_memory_size": _int(getattr(context, "memory_limit_in_mb", 0)),
                    "function_arn": str(getattr(context, "invoked_function_arn", "") or ""),
                    "function_request_id": str(getattr(context, "aws_request_id", "") or ""),
                }
            return self.fields
        name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")  # a Lambda entry point that has no middleware
        if not name:
            return {}
        return {"cold_start": self.cold_start, "function_name": name,
                "function_memory_size": _int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"))}

    def encoded(self) -> str:
        """``"service": …, <context fields>, "xray_trace_id": …`` as JSON members, without braces."""
        if not self._bound:
            return _encode_fixed(self.current())  # unbound: the environment may change, read it each time
        if self._encoded is None:  # the runtime sets the trace id before the handler runs
            self._encoded = _encode_fixed(self.current())
        return self._encoded


# One encoder, built once: json.dumps with any option builds a new one per call.
_encode = json.JSONEncoder(default=str).encode


def _encode_fixed(fields: dict[str, Any]) -> str:
    fixed = {"service": os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE), **fields}
    trace_id = _xray_trace_id()
    if trace_id:
        fixed["xray_trace_id"] = trace_id
    return _encode(fixed)[1:-1]


invocation = LambdaInvocation()


def bind_lambda_context(context: Any) -> None:
    invocation.bind(context)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _xray_trace_id() -> str | None:
    header = os.environ.get("_X_AMZN_TRACE_ID", "")  # "Root=1-…;Parent=…;Sampled=1", set per invocation
    root = header.split(";")[0]
    return root.removeprefix("Root=") if root.startswith("Root=") else None


class JsonFormatter(logging.Formatter):
    """One JSON object per line in Powertools' field names; an exception as its type only.

    Every event handled writes one line, so this is on the hot path: the per-invocation fields
    come pre-encoded (``LambdaInvocation.encoded``), the second of the timestamp is formatted
    once per second, and the rest is one flat dict through one pre-built encoder."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._second_text = ""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "level": record.levelname,
            "location": f"{record.funcName}:{record.lineno}",
            "message": record.getMessage(),
            "timestamp": self.formatTime(record),
            "logger": record.name,
        }
        extra = record.__dict__
        for field in _FIELDS:
            if field in extra:
                out[field] = extra[field]
        if record.exc_info and record.exc_info[0] is not None:
            out["exception_name"] = record.exc_info[0].__name__  # the type only: messages can quote input
        return f"{{{invocation.encoded()}, {_encode(out)[1:]}"

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        # Powertools' format: "2026-11-30 01:23:45,678+0000" (UTC).
        second = int(record.created)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._second_text},{int(record.msecs):03d}+0000"


def setup_logging(level: str | None = None, *extra: logging.Logger) -> None:
    """JSON lines for the responder's logger and ``extra`` ones (Chalice's app log, whose
    default handler would print a traceback, exception message included)."""
    # Per-record lookups (thread, process, multiprocessing names) no line of ours writes.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    for logger in (logging.getLogger("responder"), *extra):
        if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
            for old in list(logger.handlers):
                logger.removeHandler(old)
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(JsonFormatter())
            logger.addHandler(handler)
            logger.propagate = False
        logger.setLevel(level or os.environ.get("RESPONDER_LOG_LEVEL", "INFO"))


def init_error_reporting(environ: dict[str, str] | None = None, transport: Any = None) -> bool:
    """Start sentry-sdk if SENTRY_DSN is set (``transport`` lets tests capture what would be sent)."""
    env = os.environ if environ is None else environ
    dsn = env.get("SENTRY_DSN")
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.chalice import ChaliceIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=env.get("RESPONDER_STAGE", "local"),
        # No user identity, cookies, headers, bodies, query strings or frame variables: a webhook
        # or an exception can quote a patient. (data_collection supersedes send_default_pii.)
        data_collection={
            "user_info": False, "http_bodies": [], "stack_frame_variables": False, "database_query_data": False,
            "queues": False, "cookies": {"mode": "off"}, "url_query_params": {"mode": "off"},
            "http_headers": {"request": {"mode": "off"}},
        },
        include_local_variables=False,
        max_breadcrumbs=20,
        shutdown_timeout=0.5,
        auto_enabling_integrations=False,
        integrations=[ChaliceIntegration()],
        before_send=scrub_event,
        **({"transport": transport} if transport is not None else {}),
    )
    return True


_PHI_PATTERNS = re.compile(
    r"(?<![\w.+-])[\w.+-]++@[\w-]++\.[\w.-]++"  # e-mail addresses (linear time: phi.IDENTIFIERS)
    r"|\b\d{3}-\d{2}-\d{4}\b"               # SSNs
    r"|\b\d{4}-\d{2}-\d{2}\b"               # dates (of birth, among others)
    r"|\b\d{1,2}/\d{1,2}/\d{2,4}\b"
    r"|\b(?:\d{1,3}\.){3}\d{1,3}\b")         # IPv4 addresses
_DENY = {key.lower() for key in _SCRUB_KEYS} | {"password", "secret", "token", "api_key", "authorization",
                                                 "cookie", "session", "patient", "request", "username"}


# Top-level event fields the SDK itself fills (times, ids, versions): never scrubbed.
_TRUSTED = {"timestamp", "start_timestamp", "event_id", "sdk", "platform", "level", "release", "environment",
            "modules", "server_name"}


def scrub_event(event: Any, hint: Any) -> Any:
    """before_send: the recursive scrubber. Drops request data and exception messages (they can
    quote a payload), blanks values under sensitive keys, and masks PHI-shaped strings anywhere."""
    event.pop("request", None)
    event.pop("user", None)
    for exc in (event.get("exception") or {}).get("values") or []:
        exc["value"] = "[scrubbed]"
    return {k: (v if k in _TRUSTED else _scrub(v, k)) for k, v in event.items()}


def _sensitive(key: str) -> bool:
    # PHI words anywhere in the key (patient_name, dateOfBirth, home_address), not the whole-
    # container names: the SDK reads its own ``contexts`` after this hook.
    return key.lower() in _DENY or any(word in phi.PHI_WORDS for word in phi.words(key))


def _scrub(value: Any, key: str = "") -> Any:
    if _sensitive(key):
        return "[scrubbed]"
    if isinstance(value, dict):
        return {k: _scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    if isinstance(value, str):
        return phi.mask(_PHI_PATTERNS.sub("[scrubbed]", value))
    return value
