"""Entry points behind ``app.py``'s decorators, free of Chalice so the CLI can call them too.

Each takes what its trigger delivers (an event dict, or a webhook's headers and raw
body), runs the pipeline and returns a JSON-able answer. Transient failures (store
throttling, …) propagate so Lambda retries the delivery; everything else about the
input is turned into a signal and recorded.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from chalicelib import sources
from chalicelib.errors import DeliveryInProgress, InvalidRequest, SignatureError
from chalicelib.sources import payloads, safejson, sentry, sns
from chalicelib.sources.unknown import unknown_signal
from chalicelib.wiring import Deps, get_deps

log = logging.getLogger("responder")

# Lambda's limit for a synchronous request (API Gateway's own is higher): a signed body up to it is
# read whole, so a Sentry event alert with long breadcrumbs is classified like any other.
MAX_WEBHOOK_BYTES = 6 * 1024 * 1024
# Beyond this a body is not kept whole with its delivery record: its head, size and digest are.
KEEP_BODY_BYTES = 64 * 1024


def on_event(event: dict[str, Any], source_hint: str, deps: Deps | None = None) -> dict[str, Any]:
    """SNS and EventBridge deliveries: every signal in the event through the pipeline."""
    deps = deps or get_deps()
    glance = sns.repeat_glance(event) if source_hint == "sns" else None
    if glance is not None:  # the hot path: a repeat of an alarm whose incident only counts repeats
        repeated = deps.pipeline.repeat(glance.alarm, glance.delivery_id)
        if repeated is not None:
            log.info("event handled", extra={"outcome": repeated})
            return {"outcomes": [repeated]}
    outcomes = []
    for signal in sources.to_signals(event, deps.clock(), source_hint):
        hot = glance.alarm if glance is not None and glance.delivery_id == signal.delivery_id else None
        summary = deps.pipeline.respond(signal, raw=event, alarm=hot).summary()
        # Structured and PHI-free: ids, reasons and classification only.
        log.info("event handled", extra={"outcome": summary})
        outcomes.append(summary)
    return {"outcomes": outcomes}


class WebhookResponse:
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status, self.body = status, body


def _refused(lowered: Mapping[str, str], raw_body: bytes, secret: Callable[[], str] | None, secret_name: str,
             verify: Callable[[bytes, Mapping[str, str], str], None]) -> WebhookResponse | None:
    """The checks every signed webhook passes first: size, a configured secret, the signature."""
    if len(raw_body) > MAX_WEBHOOK_BYTES:
        return _error(413, InvalidRequest("body", f"larger than {MAX_WEBHOOK_BYTES} bytes"))
    if secret is None:
        # Misconfiguration, not bad input: a 503 makes the sender retry once it is fixed.
        return WebhookResponse(503, {"message": f"{secret_name}: not configured", "error": "unavailable"})
    try:
        verify(raw_body, lowered, secret())
    except SignatureError as exc:
        return _error(401, exc)
    return None


def on_sentry_webhook(headers: Mapping[str, str], raw_body: bytes, deps: Deps | None = None) -> WebhookResponse:
    """POST /webhooks/sentry: verify, dedupe on the signed body's digest, convert, run the pipeline.

    Request-ID is not signed, so a replayed body under a new one is still a duplicate; a replay
    too old for the dedupe window is recognised by the body's own times (``Reason.STALE``)."""
    deps = deps or get_deps()
    lowered = {k.lower(): v for k, v in headers.items()}
    refused = _refused(lowered, raw_body, deps.sentry_secret, "SENTRY_CLIENT_SECRET", sentry.verify_signature)
    if refused is not None:
        return refused
    body, problem = _decode(raw_body)
    received = deps.clock()
    if problem is not None or not isinstance(body, dict):
        problem = problem or "not a JSON object"
        signal = unknown_signal(raw_body, source="sentry", received=received,
                                reason=f"signed Sentry body: {problem}", delivery_id=sentry.delivery_id_for(raw_body))
        outcome = deps.pipeline.respond(signal, raw=_kept_body(raw_body))
        return WebhookResponse(400, {"message": f"body: {problem} (recorded as an unknown signal)",
                                     "error": f"body: {problem}", "field": "body",
                                     "recorded": outcome.summary()})
    signal = sentry.to_signal(body, resource=lowered.get("sentry-hook-resource"),
                              request_id=lowered.get("request-id"), raw=raw_body, received=received)
    if len(raw_body) > KEEP_BODY_BYTES:
        signal = signal.model_copy(update={"details": (*signal.details, ("body_bytes", str(len(raw_body))),
                                                       ("body_sha256", hashlib.sha256(raw_body).hexdigest()))})
    try:
        outcome = deps.pipeline.respond(signal, raw=_kept_body(raw_body, body))
    except DeliveryInProgress:
        # Sentry retries 503s (3 times, 5 minutes apart); by then the first worker has finished.
        return WebhookResponse(503, {"message": "body: this delivery is being processed; retry later",
                                     "error": "unavailable", "field": "body"})
    log.info("sentry webhook handled", extra={"outcome": outcome.summary()})
    return WebhookResponse(200, outcome.summary())


def on_pagerduty_webhook(headers: Mapping[str, str], raw_body: bytes, deps: Deps | None = None) -> WebhookResponse:
    """POST /webhooks/pagerduty: verify, dedupe on X-Webhook-Id, acknowledge / resolve ours."""
    from chalicelib.notify import pagerduty_sync
    deps = deps or get_deps()
    lowered = {k.lower(): v for k, v in headers.items()}
    refused = _refused(lowered, raw_body, deps.pagerduty_secret, "PAGERDUTY_WEBHOOK_SECRET",
                       pagerduty_sync.verify_signature)
    if refused is not None:
        return refused
    body, problem = _decode(raw_body)
    if problem is not None:
        return _error(400, InvalidRequest("body", problem))
    if not isinstance(body, dict) or not isinstance(body.get("event"), dict):
        return _error(400, InvalidRequest("event", "a PagerDuty webhook v3 body has an event object"))
    outcome = pagerduty_sync.apply_event(deps, body, pagerduty_sync.delivery_id_for(raw_body))
    log.info("pagerduty webhook handled", extra={"outcome": outcome})
    return WebhookResponse(503 if outcome["reason"] == "IN_PROGRESS" else 200, outcome)


def on_api_gateway_request(event: dict[str, Any], deps: Deps | None = None) -> WebhookResponse:
    """Replay an API Gateway proxy request through the matching webhook route (used by the CLI)."""
    path = str(event.get("path") or event.get("rawPath") or "")
    headers = {str(k): str(v) for k, v in (event.get("headers") or {}).items()}
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else str(body).encode("utf-8")
    if path.rstrip("/").endswith("/webhooks/sentry"):
        return on_sentry_webhook(headers, raw, deps)
    if path.rstrip("/").endswith("/webhooks/pagerduty"):
        return on_pagerduty_webhook(headers, raw, deps)
    return _error(404, InvalidRequest("path", f"no webhook route for {path!r}"))


def sweep(deps: Deps | None = None) -> dict[str, Any]:
    """The scheduled escalation sweep (every minute): deployed, it hands the due incidents to
    the sweep queue; without a queue it advances them itself (``Escalator.sweep``). Then
    heartbeats: its own beat, missed ones paged; then shift-change notices (``chalicelib.shifts``)."""
    from chalicelib.heartbeats import Heartbeats
    from chalicelib.shifts import ShiftNotices

    deps = deps or get_deps()
    report = deps.pipeline.sweep()
    if unwell := Heartbeats(deps.pipeline).sweep(deps.clock()):
        report["heartbeats"] = unwell
    if notices := ShiftNotices(deps.pipeline).sweep(deps.clock()):
        report["shift_notices"] = notices
    log.info("sweep done", extra={"outcome": report})
    return report


def check_secret_rotation(deps: Deps | None = None) -> dict[str, Any]:
    """The daily check (runbook §6): one Sev3 signal per secret not rotated for 90 days, keyed by
    its ARN, so tomorrow's run joins the incident still open. Reads names and dates, never values."""
    from chalicelib.sources import secrets_rotation

    deps = deps or get_deps()
    secrets = secrets_rotation.list_secrets(deps.pipeline.executor.aws)
    outcomes = [deps.pipeline.respond(signal).summary()
                for signal in secrets_rotation.overdue_signals(secrets, deps.clock())]
    report = {"secrets": len(secrets), "overdue": len(outcomes), "outcomes": outcomes}
    log.info("secret rotation check done", extra={"outcome": {"secrets": len(secrets), "overdue": len(outcomes)}})
    return report


def on_sweep_messages(event: dict[str, Any], deps: Deps | None = None,
                      time_left: Callable[[], int] | None = None) -> dict[str, Any]:
    """The sweep queue's consumer: advance the batch's incidents; answer which messages failed.

    A message that names no incident is answered as failed (after its receives it waits in the
    dead-letter queue, where the alarm sees it); two messages for one incident (the next
    minute's sweep sent it again) advance it once. ``time_left`` is the Lambda's remaining
    milliseconds: with less than ``CONSUMER_MARGIN_MS`` no further incident is started."""
    from chalicelib.notify import delivery, sweep_queue

    deps = deps or get_deps()
    messages: dict[str, list[str]] = {}  # incident id → its message ids in this batch
    unreadable: list[str] = []
    for record in event.get("Records") or []:
        message_id = str(record.get("messageId", ""))
        incident_id = sweep_queue.incident_of(record.get("body"))
        if incident_id is None:
            unreadable.append(message_id)
        else:
            messages.setdefault(incident_id, []).append(message_id)
    stop = (lambda: time_left() < sweep_queue.CONSUMER_MARGIN_MS) if time_left is not None else None
    escalator = deps.pipeline.escalator
    done = escalator.process(list(messages), deps.clock(), also=deps.pipeline.executor.verify, stop=stop)
    if done.error_ids:
        delivery.count_failures(len(done.error_ids), escalator.metrics)
    returned = unreadable + [m for incident_id in done.error_ids + done.deferred_ids for m in messages[incident_id]]
    log.info("sweep batch done", extra={"outcome": done.summary() | {
        "unreadable": len(unreadable), "not_due_reasons": sorted({r.value for r in done.not_due.values()})}})
    return sweep_queue.batch_response(returned)


def identify(token: str | None, deps: Deps | None = None) -> dict[str, str]:
    """The custom authorizer's half: who holds this bearer token (strings only, for API Gateway)."""
    from chalicelib.web.tokens import bearer

    deps = deps or get_deps()
    principal = deps.tokens.verify(bearer(token))
    if principal is None:
        return {"user": "anonymous", "role": "none", "token_id": ""}
    return {"user": principal.user, "role": principal.role.name.lower(), "token_id": principal.token_id}


def principal_from(context: Mapping[str, Any]) -> Any:
    """The view's half: the principal the authorizer put in the request context, or None."""
    from chalicelib.web.tokens import Principal, Role

    role = str(context.get("role") or "none")
    if role == "none" or role.upper() not in Role.__members__:
        return None
    return Principal(user=str(context.get("user")), role=Role[role.upper()], token_id=str(context.get("token_id")))


def health(deps: Deps | None = None) -> dict[str, Any]:
    deps = deps or get_deps()
    return {"status": "ok"}  # no token on this route: it says the service is up, nothing about it


def _decode(raw_body: bytes) -> tuple[Any, str | None]:
    """A signed webhook body as JSON, or why it is not (too deep, non-finite, not JSON, not UTF-8)."""
    if not raw_body.strip():
        return None, "empty"
    try:
        return safejson.loads(raw_body), None
    except safejson.JsonRejected as exc:
        return None, str(exc)
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        return None, "not valid JSON"


def _kept_body(raw_body: bytes, parsed: Any = None) -> Any:
    """What the delivery record keeps of a body, before ``payloads.kept`` scrubs and clips it.

    A parsed body goes as its structure, so PHI-bearing keys are dropped however large it is (a
    clipped text head could not be parsed, and names in it would survive the text masks). A body
    that is not JSON cannot be scrubbed by key: beyond its size and digest it is kept only while
    small, masked as text."""
    if parsed is not None:
        return payloads.ParsedBody(parsed, raw_body)
    if len(raw_body) <= KEEP_BODY_BYTES:
        return raw_body
    return {"truncated": True, "size_bytes": len(raw_body), "sha256": hashlib.sha256(raw_body).hexdigest()}


def _error(status: int, exc: InvalidRequest) -> WebhookResponse:
    return WebhookResponse(status, {"message": str(exc), "error": str(exc), "field": exc.field})
