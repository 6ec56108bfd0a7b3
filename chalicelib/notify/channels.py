"""Page channels: console, PagerDuty Events API v2, SNS (SMS / e-mail) and Slack.

Each takes its transport or boto3 client in ``__init__`` (tests pass fakes). Errors are
raised as ``ChannelError`` with a reason that never contains the routing key, webhook
URL or response body, since those are credentials or echo our own text.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TextIO

from chalicelib.errors import ChannelError, from_client_error
from chalicelib.models import PageKind, Severity
from chalicelib.notify import escape
from chalicelib.notify.paging import PageRequest

PAGERDUTY_SEVERITY = {Severity.SEV1: "critical", Severity.SEV2: "error",
                      Severity.SEV3: "warning", Severity.SEV4: "info"}
_PD_ACTIONS = {PageKind.TRIGGER: "trigger", PageKind.ESCALATION: "trigger", PageKind.ACKNOWLEDGE: "acknowledge",
               PageKind.RESOLVE: "resolve"}


class HttpResponse(Protocol):
    status: int
    headers: Mapping[str, str]
    body: bytes


class Transport(Protocol):
    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> HttpResponse: ...

    def get(self, url: str, timeout: float) -> HttpResponse: ...


class _Response:
    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


class UrllibTransport:
    """The real transport: stdlib only, so no HTTP library is loaded on cold start."""

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> HttpResponse:
        return self._send(url, body, headers, timeout, "POST")

    def get(self, url: str, timeout: float) -> HttpResponse:
        return self._send(url, None, {}, timeout, "GET")

    def _send(self, url: str, body: bytes | None, headers: Mapping[str, str], timeout: float,
              method: str) -> HttpResponse:
        import urllib.error
        import urllib.request

        if not url.startswith("https://"):
            raise ChannelError("refusing a non-https endpoint")
        request = urllib.request.Request(url, data=body, headers=dict(headers), method=method)  # noqa: S310 - https checked above
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - https checked above
                return _Response(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as exc:
            return _Response(exc.code, dict(exc.headers or {}), exc.read() or b"")
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise ChannelError(f"connection failed: {type(exc).__name__}", retryable=True) from None


class ConsoleChannel:
    """The local default: prints the page (to stderr, keeping stdout for JSON output)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def send(self, page: PageRequest) -> None:
        print(escape.plain(f"PAGE {page.kind.value} → {page.person} ({page.role}): {page.text}"),
              file=self.stream or sys.stderr, flush=True)


class PagerDutyChannel:
    def __init__(self, routing_key: Callable[[], str], endpoint: str, transport: Transport,
                 timeout: float = 3.0) -> None:
        self._routing_key, self.endpoint, self.transport, self.timeout = routing_key, endpoint, transport, timeout

    def event(self, page: PageRequest, dedup_key: str | None = None, action: str | None = None) -> dict[str, Any]:
        """The Events API v2 body; ``dedup_key`` defaults to the page's first (pd_alerts.py: one
        alert per person paged), else the incident id (pages queued before per-person keys)."""
        key = dedup_key or (page.dedup_keys[0] if page.dedup_keys else page.incident_id)
        body: dict[str, Any] = {"routing_key": self._routing_key(), "dedup_key": key,
                                "event_action": action or _PD_ACTIONS[page.kind]}
        if body["event_action"] == "trigger":
            body["payload"] = {"summary": escape.plain(page.text)[:1024], "source": page.source[:255],
                               "severity": PAGERDUTY_SEVERITY[page.severity],
                               "custom_details": {"incident": page.incident_id, "role": page.role}}
            body["links"] = ([{"href": page.ack_url, "text": "Acknowledge"}] if page.ack_url else []) + [
                {"href": link} for link in page.links]
            body["client"] = "alarm-responder"
        return body

    def send(self, page: PageRequest) -> None:
        """A trigger opens the alert of its first key, then resolves the person's older alerts, the
        other keys it carries (pd_alerts.py: at most one open alert per person); an acknowledge
        or resolve goes to every key it carries. A retry repeats them all, which PagerDuty takes
        as a no-op (a trigger on an open alert folds into it)."""
        keys = page.dedup_keys or (page.incident_id,)
        if _PD_ACTIONS[page.kind] == "trigger":
            self._post(self.event(page, keys[0]))
            for older in keys[1:]:
                self._post(self.event(page, older, "resolve"))
            return
        for key in keys:
            self._post(self.event(page, key))

    def _post(self, body: dict[str, Any]) -> None:
        response = self.transport.post(self.endpoint, json.dumps(body).encode(),
                                       {"Content-Type": "application/json"}, self.timeout)
        if response.status == 202 or 200 <= response.status < 300:
            return
        retryable = response.status == 429 or response.status >= 500
        raise ChannelError(f"PagerDuty answered {response.status}", retryable=retryable,
                           retry_after=_retry_after(response.headers))


class SlackChannel:
    def __init__(self, webhook_url: Callable[[], str], transport: Transport, timeout: float = 3.0) -> None:
        self._webhook_url, self.transport, self.timeout = webhook_url, transport, timeout

    def send(self, page: PageRequest) -> None:
        """The page as a Block Kit message: its text, and Acknowledge / Resolve / Take buttons
        where it asks for action (``slack_blocks``; pressed, they reach ``POST /webhooks/slack``)."""
        from chalicelib.notify import slack_blocks

        response = self.transport.post(self._webhook_url(), json.dumps(slack_blocks.page_message(page)).encode(),
                                       {"Content-Type": "application/json"}, self.timeout)
        if not 200 <= response.status < 300:
            raise ChannelError(f"Slack answered {response.status}",
                               retryable=response.status == 429 or response.status >= 500,
                               retry_after=_retry_after(response.headers))


class SnsChannel:
    def __init__(self, topic_arn: Callable[[], str], client: Callable[[], Any]) -> None:
        self._topic_arn, self._client = topic_arn, client

    def send(self, page: PageRequest) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client().publish(TopicArn=self._topic_arn(), Message=escape.plain(page.text),
                                   Subject=f"SEV{page.severity.value} {page.kind.value}"[:100])
        except (ClientError, BotoCoreError) as exc:
            raise from_client_error(exc, "sns", "publish", context="SNS publish failed", into=_channel_error) from None


def _channel_error(message: str, retryable: bool) -> ChannelError:
    return ChannelError(message, retryable=retryable)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds form); None if absent or a date."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None
