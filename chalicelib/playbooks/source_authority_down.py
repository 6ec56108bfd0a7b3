"""source-authority-down: runbook §5.1 (see ``plan``)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from pydantic import Field

from chalicelib.config.severity import Strict
from chalicelib.decisions.words import any_phrase_in
from chalicelib.errors import ChannelError
from chalicelib.models import DutyKind
from chalicelib.playbooks.context import PlaybookContext
from chalicelib.playbooks.registry import playbook
from chalicelib.playbooks.steps import AddDuty, ApiCall, Note, Step


class Authority(Strict):
    words: list[str]
    status_url: str
    log_group: str


def _authorities() -> dict[str, Authority]:
    return {
        "npdb": Authority(words=["npdb"], status_url="https://www.npdb.hrsa.gov/status",
                          log_group="/platform/prod/adapters/npdb"),
        "dea": Authority(words=["dea"], status_url="https://www.deadiversion.usdoj.gov/status",
                         log_group="/platform/prod/adapters/dea"),
        "nursys": Authority(words=["nursys"], status_url="https://www.nursys.com/status",
                            log_group="/platform/prod/adapters/nursys"),
        "state-board": Authority(words=["state board", "source authority"], status_url="https://status.example.org/boards",
                                 log_group="/platform/prod/adapters/state-board"),
    }


class Options(Strict):
    authorities: dict[str, Authority] = Field(default_factory=_authorities)
    reverify_queue_url: str = "https://sqs.us-east-1.amazonaws.com/123456789012/reverify-retry"
    error_lookback_minutes: int = Field(30, ge=1)
    probe_timeout_seconds: float = Field(3.0, gt=0, le=10)


@playbook("source-authority-down",
          permissions=("sqs:SendMessage", "logs:FilterLogEvents"),
          options=Options)
def plan(ctx: PlaybookContext) -> list[Step]:
    """Tell a vendor outage from ours: queue re-verification, or attach the adapter's errors.

    Trigger: source-authority adapter alarms (NPDB, DEA, Nursys, state boards).
    Does: probes the authority's status endpoint; if the vendor is down, sends the
    re-verify scheduler a hold-and-retry message for that authority on its SQS retry queue;
    if the vendor is up, attaches the adapter's recent errors (CloudWatch Logs) so the
    responder starts from our side; either way, a post-mortem is due within 24 hours.
    Never: calls the authority's verification API, drops or edits verification requests,
    or notifies customers itself.
    """
    options: Options = ctx.opts(Options)
    name, authority = _which(ctx, options)
    if authority is None:
        return [Note(text="source-authority-down: no configured authority matches this incident; check by hand"),
                _postmortem(ctx)]
    status = ctx.later(f"{name}'s status", lambda: _probe(ctx, authority.status_url, options.probe_timeout_seconds),
                       reads=(f"http:GET {authority.status_url}",))

    def our_side(answer: dict[str, Any]) -> str:
        events = answer.get("events", [])
        return (f"{name} is up: our side. {len(events)} adapter errors in the last "
                f"{options.error_lookback_minutes} min in {authority.log_group}"
                + (f"; first: {_first_line(events[0].get('message', ''))}" if events else ""))

    return [
        Note(text=ctx.later(f"{name}'s status", lambda seen: f"{name} status endpoint: {seen}", status)),
        ApiCall(service="sqs", operation="send_message", target=f"reverify:{name}",
                params={"QueueUrl": options.reverify_queue_url,
                        "MessageBody": json.dumps({"action": "hold_and_retry", "authority": name,
                                                   "incident": ctx.incident.id, "reason": "vendor unavailable"})},
                why=f"{name} is down on the vendor side: queue re-verification",
                only_if=ctx.later(f"{name} is down", lambda seen: seen != "up", status)),
        Note(text=ctx.reading(f"{name}'s adapter errors", "logs", "filter_log_events", {
            "logGroupName": authority.log_group, "filterPattern": "?ERROR ?Exception",
            "startTime": int((ctx.now - timedelta(minutes=options.error_lookback_minutes)).timestamp() * 1000),
            "limit": 20}, then=our_side),
             only_if=ctx.later(f"{name} is up", lambda seen: seen == "up", status)),
        _postmortem(ctx),
    ]


def _which(ctx: PlaybookContext, options: Options) -> tuple[str, Authority | None]:
    haystack = [ctx.incident.title, *(ctx.signal.namespaces if ctx.signal else ()),
                *(v for _, v in (ctx.signal.dimensions if ctx.signal else ()))]
    for name, authority in options.authorities.items():
        if any_phrase_in(haystack, authority.words):
            return name, authority
    return "", None


def _probe(ctx: PlaybookContext, url: str, timeout: float) -> str:
    if ctx.http is None:
        return "unknown (no HTTP transport)"
    try:
        response = ctx.http.get(url, timeout)
    except ChannelError as exc:
        return f"down ({exc})"
    return "up" if 200 <= response.status < 300 else f"down (HTTP {response.status})"


def _first_line(message: str) -> str:
    # Adapter errors can echo request data; keep the exception line only, shortened.
    return message.strip().splitlines()[0][:160] if message.strip() else ""


def _postmortem(ctx: PlaybookContext) -> AddDuty:
    return AddDuty(kind=DutyKind.POSTMORTEM, due_at=ctx.now + timedelta(hours=24),
                   reason="runbook §5.1: post-mortem within 24 h")
