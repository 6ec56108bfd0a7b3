"""Sentry integration-platform webhooks: signature check and conversion to ``Signal``.

Sentry signs the exact bytes it sends (``hex(HMAC-SHA256(client_secret, raw body))``),
so the check runs on the raw body, never on re-serialised JSON. Issue, event and error
payloads carry end-user data (e-mails, IPs, request URLs, exception messages); the
converter reads only ids, levels, environments, project slugs, rule names and Sentry's
own links. Titles and culprits are never copied, because they can quote user input.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from chalicelib.errors import SignatureError
from chalicelib.models import Signal, SignalKind, Transition
from chalicelib.sources.common import digest, parse_time
from chalicelib.sources.unknown import unknown_signal

SIGNATURE_HEADERS = ("sentry-hook-signature", "sentry-app-signature")
_ISSUE_URL_ID = re.compile(r"/issues/(\d+)/?")

_ISSUE_TRANSITIONS = {
    "created": Transition.TRIGGER,
    "unresolved": Transition.TRIGGER,
    "resolved": Transition.RESOLVE,
    "ignored": Transition.RESOLVE,  # archived by a human: nobody needs paging for it any more
}
_METRIC_TRANSITIONS = {
    "critical": Transition.TRIGGER,
    "warning": Transition.TRIGGER,
    "open": Transition.TRIGGER,
    "resolved": Transition.RESOLVE,
}


def verify_signature(raw_body: bytes, headers: Mapping[str, str], secret: str) -> None:
    """Raise ``SignatureError`` unless a Sentry signature header matches the raw body."""
    lowered = {k.lower(): v for k, v in headers.items()}
    given = next((lowered[h] for h in SIGNATURE_HEADERS if lowered.get(h)), None)
    if not given:
        raise SignatureError("Sentry-Hook-Signature", "missing")
    expected = hmac.new(secret.encode("utf-8"), raw_body, hashlib.sha256).hexdigest()
    # bytes, not str: compare_digest refuses non-ASCII strings, and a header can hold anything
    if not hmac.compare_digest(expected.encode(), given.strip().lower().encode("utf-8", "replace")):
        raise SignatureError("Sentry-Hook-Signature", "does not match the body")


def infer_resource(body: Mapping[str, Any]) -> str | None:
    """Which webhook resource a body is, for bodies that arrive without their headers."""
    data = body.get("data")
    if isinstance(data, dict):
        for key, resource in (("issue", "issue"), ("metric_alert", "metric_alert"),
                              ("event", "event_alert"), ("error", "error"),
                              ("installation", "installation")):
            if key in data:
                return resource
    if "triggering_rules" in body and "project_slug" in body:
        return "legacy_plugin"
    return None


def looks_like_sentry(body: Any) -> bool:
    return isinstance(body, dict) and (
        ("action" in body and "data" in body and ("installation" in body or "actor" in body))
        or infer_resource(body) == "legacy_plugin"
    )


def to_signal(
    body: Mapping[str, Any], *, resource: str | None, request_id: str | None, raw: bytes,
    received: datetime,
) -> Signal:
    resource = resource or infer_resource(body)
    delivery_id = f"sentry:{request_id}" if request_id else f"sentry:sha256:{digest(raw)}"
    action = str(body.get("action") or "")
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    convert = _CONVERTERS.get(resource or "")
    if convert is None or not isinstance(data, dict):
        return unknown_signal(
            dict(body), source="sentry", received=received, delivery_id=delivery_id,
            reason=f"Sentry resource {resource!r} is not handled", shape=f"sentry/{resource}",
        )
    return convert(body, data, action, delivery_id, received)


def _issue(body: Mapping[str, Any], data: dict[str, Any], action: str, delivery_id: str,
           received: datetime) -> Signal:
    issue = data.get("issue") or {}
    project = (issue.get("project") or {}).get("slug") or "unknown-project"
    issue_id = str(issue.get("id") or "unknown")
    short_id = str(issue.get("shortId") or issue_id)
    return _sentry_signal(
        kind=SignalKind.SENTRY_ISSUE, delivery_id=delivery_id, resource="issue", action=action,
        key=f"sentry:issue:{issue_id}",
        transition=_ISSUE_TRANSITIONS.get(action, Transition.NONE),
        occurred_at=parse_time(issue.get("lastSeen"), received),
        title=f"Sentry issue {short_id} in {project} {action}",
        project=project, level=issue.get("level"), environment=None,
        link=issue.get("web_url") or issue.get("permalink"),
    )


_Converter = Callable[[Mapping[str, Any], dict[str, Any], str, str, datetime], Signal]


def _event_like(kind: SignalKind, field: str, resource: str) -> _Converter:
    """Converter for payloads that carry one Sentry event (``event_alert``, ``error``)."""

    def convert(body: Mapping[str, Any], data: dict[str, Any], action: str, delivery_id: str,
                received: datetime) -> Signal:
        event = data.get(field) or {}
        issue_id = str(event.get("issue_id") or _issue_id_from(event.get("issue_url")) or "unknown")
        tags = _tags(event.get("tags"))
        rule = data.get("triggered_rule")
        label = f"alert '{rule}'" if rule else "error"
        return _sentry_signal(
            kind=kind, delivery_id=delivery_id, resource=resource, action=action,
            key=f"sentry:issue:{issue_id}", transition=Transition.TRIGGER,
            occurred_at=parse_time(event.get("timestamp") or event.get("datetime"), received),
            title=f"Sentry {label} on issue {issue_id}",
            project=str(event.get("project") or "unknown-project"),
            level=event.get("level") or tags.get("level"),
            environment=event.get("environment") or tags.get("environment"),
            link=event.get("web_url"),
        )
    return convert


def _metric_alert(body: Mapping[str, Any], data: dict[str, Any], action: str, delivery_id: str,
                  received: datetime) -> Signal:
    alert = data.get("metric_alert") or {}
    rule = alert.get("alert_rule") or {}
    org = str(alert.get("organization_id") or rule.get("organization_id") or "org")
    identifier = str(alert.get("identifier") or alert.get("id") or "unknown")
    projects = alert.get("projects") or rule.get("projects") or []
    return _sentry_signal(
        kind=SignalKind.SENTRY_METRIC_ALERT, delivery_id=delivery_id, resource="metric_alert",
        action=action, key=f"sentry:metric:{org}:{identifier}",
        transition=_METRIC_TRANSITIONS.get(action, Transition.NONE),
        occurred_at=parse_time(alert.get("date_detected") or alert.get("date_created"), received),
        title=f"Sentry metric alert '{rule.get('name') or identifier}' {action}",
        project=",".join(map(str, projects)) or "unknown-project",
        level=action, environment=rule.get("environment"), link=data.get("web_url"),
    )


def _installation(body: Mapping[str, Any], data: dict[str, Any], action: str, delivery_id: str,
                  received: datetime) -> Signal:
    installation = data.get("installation") or {}
    uuid = str(installation.get("uuid") or (body.get("installation") or {}).get("uuid") or "unknown")
    return _sentry_signal(
        kind=SignalKind.SENTRY_INSTALLATION, delivery_id=delivery_id, resource="installation",
        action=action, key=f"sentry:installation:{uuid}", transition=Transition.NONE,
        occurred_at=received, title=f"Sentry integration installation {action}",
        project="", level=None, environment=None, link=None,
    )


def _legacy_plugin(body: Mapping[str, Any], data: dict[str, Any], action: str, delivery_id: str,
                   received: datetime) -> Signal:
    raw_event = body.get("event")
    event: dict[str, Any] = raw_event if isinstance(raw_event, dict) else {}
    tags = _tags(event.get("tags"))
    issue_id = str(body.get("id") or "unknown")
    return _sentry_signal(
        kind=SignalKind.SENTRY_ISSUE, delivery_id=delivery_id, resource="legacy_plugin",
        action="triggered", key=f"sentry:issue:{issue_id}", transition=Transition.TRIGGER,
        occurred_at=received, title=f"Sentry issue {issue_id} in {body.get('project_slug')}",
        project=str(body.get("project_slug") or "unknown-project"),
        level=body.get("level"), environment=event.get("environment") or tags.get("environment"),
        link=body.get("url"),
    )


def _sentry_signal(*, kind: SignalKind, delivery_id: str, resource: str, action: str, key: str,
                   transition: Transition, occurred_at: datetime, title: str, project: str,
                   level: Any, environment: Any, link: Any) -> Signal:
    links = (str(link),) if isinstance(link, str) and link.startswith("https://") else ()
    return Signal(
        kind=kind, source="sentry", delivery_id=delivery_id, incident_key=key,
        transition=transition, occurred_at=occurred_at, title=title, resource=project,
        links=links, sentry_resource=resource, sentry_action=action or None,
        sentry_level=str(level).lower() if level else None,
        sentry_environment=str(environment) if environment else None,
        details=(("project", project),),
    )


def _tags(raw: Any) -> dict[str, str]:
    if isinstance(raw, list):
        return {str(t[0]): str(t[1]) for t in raw if isinstance(t, list | tuple) and len(t) == 2}
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    return {}


def _issue_id_from(url: Any) -> str | None:
    match = _ISSUE_URL_ID.search(url) if isinstance(url, str) else None
    return match.group(1) if match else None


_CONVERTERS: dict[str, _Converter] = {
    "issue": _issue,
    "event_alert": _event_like(SignalKind.SENTRY_EVENT_ALERT, "event", "event_alert"),
    "error": _event_like(SignalKind.SENTRY_ERROR, "error", "error"),
    "metric_alert": _metric_alert,
    "installation": _installation,
    "legacy_plugin": _legacy_plugin,
}
