"""Sentry integration-platform webhooks: signature check and conversion to ``Signal``.

Sentry signs the exact bytes it sends (``hex(HMAC-SHA256(client_secret, raw body))``),
so the check runs on the raw body, never on re-serialised JSON. Issue, event and error
payloads carry end-user data (e-mails, IPs, request URLs, exception messages); the
converter reads only ids, levels, environments, project slugs, rule names and Sentry's
own links. Titles and culprits are never copied, because they can quote user input.

Sentry signs the body but not ``Request-ID``, so the body is what identifies a delivery
(its digest is the delivery id: the same signed body under a new Request-ID is a
duplicate), and the times inside it are what order deliveries: each signal carries the
sender's own time as ``signed_at`` (``lastSeen`` of an issue, the event's ``datetime``,
a metric alert's ``date_closed`` / ``date_detected`` / ``date_started``), so a replayed
old body is recognised as stale (``incidents.is_stale``).

Signed bodies can still be odd (a string where an object belongs, a time of ``1e20``): a
field of the wrong shape counts as absent, never as a crash.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from chalicelib.errors import SignatureError
from chalicelib.models import Signal, SignalKind, Transition
from chalicelib.signatures import verify_hmac
from chalicelib.sources.common import digest, parse_time
from chalicelib.sources.unknown import unknown_signal

# A date beyond this is not a time any sender means (``1e20`` seconds); it counts as absent.
_LATEST_TIME = datetime(9000, 1, 1, tzinfo=UTC)

SIGNATURE_HEADERS = ("sentry-hook-signature", "sentry-app-signature")
_ISSUE_URL_ID = re.compile(r"/issues/(\d+)/?")

_ISSUE_TRANSITIONS = {
    "created": Transition.TRIGGER,
    "unresolved": Transition.TRIGGER,
    "resolved": Transition.RESOLVE,
    "ignored": Transition.RESOLVE,  # archived by a human: nobody needs paging for it any more
    "archived": Transition.RESOLVE,  # the newer name Sentry's docs give the same action
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
    if not verify_hmac(secret, raw_body, given):
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
    delivery_id = delivery_id_for(raw)
    action = _text(body.get("action"))
    data = _object(body.get("data"))
    convert = _CONVERTERS.get(resource or "")
    if convert is None:
        return unknown_signal(
            dict(body), source="sentry", received=received, delivery_id=delivery_id,
            reason=f"Sentry resource {resource!r} is not handled", shape=f"sentry/{resource}",
        )
    return convert(body, data, action, delivery_id, received)


def delivery_id_for(raw: bytes) -> str:
    """A Sentry delivery is its signed body: Request-ID is not signed, so it cannot identify one."""
    return f"sentry:sha256:{digest(raw)}"


def _issue(body: Mapping[str, Any], data: dict[str, Any], action: str, delivery_id: str,
           received: datetime) -> Signal:
    issue = _object(data.get("issue"))
    project = _text(_object(issue.get("project")).get("slug")) or _text(issue.get("project")) or "unknown-project"
    issue_id = _text(issue.get("id")) or "unknown"
    short_id = _text(issue.get("shortId")) or issue_id
    return _sentry_signal(
        kind=SignalKind.SENTRY_ISSUE, delivery_id=delivery_id, resource="issue", action=action,
        key=f"sentry:issue:{issue_id}",
        transition=_ISSUE_TRANSITIONS.get(action, Transition.NONE),
        signed_at=signed_time(issue.get("lastSeen")), received=received,
        title=f"Sentry issue {short_id} in {project} {action}",
        project=project, level=issue.get("level"), environment=None,
        link=issue.get("web_url") or issue.get("permalink"),
    )


_Converter = Callable[[Mapping[str, Any], dict[str, Any], str, str, datetime], Signal]


def _event_like(kind: SignalKind, field: str, resource: str) -> _Converter:
    """Converter for payloads that carry one Sentry event (``event_alert``, ``error``)."""

    def convert(body: Mapping[str, Any], data: dict[str, Any], action: str, delivery_id: str,
                received: datetime) -> Signal:
        event = _object(data.get(field))
        issue_id = _text(event.get("issue_id")) or _issue_id_from(event.get("issue_url")) or "unknown"
        tags = _tags(event.get("tags"))
        rule = _text(data.get("triggered_rule"))
        label = f"alert '{rule}'" if rule else "error"
        return _sentry_signal(
            kind=kind, delivery_id=delivery_id, resource=resource, action=action,
            key=f"sentry:issue:{issue_id}", transition=Transition.TRIGGER,
            signed_at=signed_time(event.get("timestamp")) or signed_time(event.get("datetime")),
            received=received, title=f"Sentry {label} on issue {issue_id}",
            project=_text(event.get("project")) or "unknown-project",
            level=event.get("level") or tags.get("level"),
            environment=event.get("environment") or tags.get("environment"),
            link=event.get("web_url"),
        )
    return convert


def _metric_alert(body: Mapping[str, Any], data: dict[str, Any], action: str, delivery_id: str,
                  received: datetime) -> Signal:
    alert = _object(data.get("metric_alert"))
    rule = _object(alert.get("alert_rule"))
    org = _text(alert.get("organization_id")) or _text(rule.get("organization_id")) or "org"
    identifier = _text(alert.get("identifier")) or _text(alert.get("id")) or "unknown"
    projects = alert.get("projects") or rule.get("projects") or []
    projects = projects if isinstance(projects, list) else [projects]
    # The latest time the alert carries: opening (started, detected), then closing for a resolve.
    times = [t for t in (signed_time(alert.get(k)) for k in ("date_started", "date_detected", "date_closed")) if t]
    return _sentry_signal(
        kind=SignalKind.SENTRY_METRIC_ALERT, delivery_id=delivery_id, resource="metric_alert",
        action=action, key=f"sentry:metric:{org}:{identifier}",
        transition=_METRIC_TRANSITIONS.get(action, Transition.NONE),
        signed_at=max(times) if times else None, received=received,
        title=f"Sentry metric alert '{_text(rule.get('name')) or identifier}' {action}",
        project=",".join(_text(p) for p in projects if _text(p)) or "unknown-project",
        level=action, environment=rule.get("environment"), link=data.get("web_url"),
    )


def _installation(body: Mapping[str, Any], data: dict[str, Any], action: str, delivery_id: str,
                  received: datetime) -> Signal:
    installation = _object(data.get("installation"))
    uuid = _text(installation.get("uuid")) or _text(_object(body.get("installation")).get("uuid")) or "unknown"
    return _sentry_signal(
        kind=SignalKind.SENTRY_INSTALLATION, delivery_id=delivery_id, resource="installation",
        action=action, key=f"sentry:installation:{uuid}", transition=Transition.NONE,
        signed_at=None, received=received, title=f"Sentry integration installation {action}",
        project="", level=None, environment=None, link=None,
    )


def _legacy_plugin(body: Mapping[str, Any], data: dict[str, Any], action: str, delivery_id: str,
                   received: datetime) -> Signal:
    event = _object(body.get("event"))
    tags = _tags(event.get("tags"))
    issue_id = _text(body.get("id")) or "unknown"
    project = _text(body.get("project_slug")) or "unknown-project"
    return _sentry_signal(
        kind=SignalKind.SENTRY_ISSUE, delivery_id=delivery_id, resource="legacy_plugin",
        action="triggered", key=f"sentry:issue:{issue_id}", transition=Transition.TRIGGER,
        signed_at=None, received=received, title=f"Sentry issue {issue_id} in {project}",
        project=project,
        level=body.get("level"), environment=event.get("environment") or tags.get("environment"),
        link=body.get("url"),
    )


def _sentry_signal(*, kind: SignalKind, delivery_id: str, resource: str, action: str, key: str,
                   transition: Transition, signed_at: datetime | None, received: datetime, title: str,
                   project: str, level: Any, environment: Any, link: Any) -> Signal:
    links = (str(link),) if isinstance(link, str) and link.startswith("https://") else ()
    return Signal(
        kind=kind, source="sentry", delivery_id=delivery_id, incident_key=key,
        transition=transition, occurred_at=signed_at or received, signed_at=signed_at, title=title,
        resource=project, links=links, sentry_resource=resource, sentry_action=action or None,
        sentry_level=_text(level).lower() or None, sentry_environment=_text(environment) or None,
        details=(("project", project),),
    )


def signed_time(value: Any) -> datetime | None:
    """A time from the signed body (ISO string or epoch seconds), or None if absent or absurd."""
    if isinstance(value, bool) or not isinstance(value, int | float | str) or value == "":
        return None
    try:
        parsed = parse_time(value, _LATEST_TIME)
    except (ValueError, OverflowError, OSError):  # 1e20 seconds: past datetime's range
        return None
    return parsed if parsed < _LATEST_TIME else None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    """A scalar as text; anything nested (a list, an object) counts as absent."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


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
