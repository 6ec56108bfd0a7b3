"""The responder's own logs and error reports, with PHI and secrets kept out.

- Logs are one JSON object per line, holding the message and whitelisted structured
  fields (outcomes: ids, reasons, classification). Payload text is never logged.
- Error reporting (sentry-sdk) starts only when ``SENTRY_DSN`` is set, and must start
  before ``app.py`` declares its handlers, because the Chalice integration wraps
  handlers declared after ``init``. It runs with explicit integrations (no auto-enabling:
  it costs cold start and pulls in boto3), no PII, no local variables, a short
  shutdown timeout (a black-holed DSN must not hold a handler for seconds), and a
  recursive scrubber.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

_FIELDS = ("outcome",)
_SCRUB_KEYS = ["email", "user_email", "ip_address", "client_secret", "webhook_token", "routing_key",
               "signature", "sentry-hook-signature", "x-pagerduty-signature", "body", "raw", "message",
               "phone", "ssn", "dob", "name", "user"]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"level": record.levelname, "logger": record.name, "message": record.getMessage()}
        for field in _FIELDS:
            if hasattr(record, field):
                out[field] = getattr(record, field)
        if record.exc_info and record.exc_info[0] is not None:
            out["error"] = record.exc_info[0].__name__  # the type only: messages can quote input
        return json.dumps(out, default=str)


def setup_logging(level: str | None = None) -> None:
    logger = logging.getLogger("responder")
    if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level or os.environ.get("RESPONDER_LOG_LEVEL", "INFO"))


def init_error_reporting(environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    dsn = env.get("SENTRY_DSN")
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.chalice import ChaliceIntegration
    from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber

    sentry_sdk.init(
        dsn=dsn,
        environment=env.get("RESPONDER_STAGE", "local"),
        send_default_pii=False,
        include_local_variables=False,
        max_breadcrumbs=20,
        shutdown_timeout=0.5,
        auto_enabling_integrations=False,
        integrations=[ChaliceIntegration()],
        event_scrubber=EventScrubber(recursive=True, denylist=DEFAULT_DENYLIST + _SCRUB_KEYS),
        before_send=_drop_request_data,
    )
    return True


def _drop_request_data(event: Any, hint: Any) -> Any:
    # Request bodies and exception messages can quote a webhook payload; keep types and stacks.
    event.pop("request", None)
    for exc in (event.get("exception") or {}).get("values") or []:
        exc["value"] = "[scrubbed]"
    return event
