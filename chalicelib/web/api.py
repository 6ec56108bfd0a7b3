"""The incident HTTP API, free of Chalice: each view takes the caller and the request's parts
and returns an ``ApiResponse``. ``app.py`` only routes.

Access: the custom authorizer identifies the bearer token's person and role (or marks the
caller unknown); each view states the role it needs. No or unknown token → 401, a role
too low → 403, both as JSON. Every error body is ``{"message", "error", "field"?}`` with a
one-line reason; every change records who made it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chalicelib.decisions.incidents import MAX_NOTE_CHARS
from chalicelib.errors import ConflictError, IncidentNotFound, InvalidRequest
from chalicelib.models import DutyKind, Incident, IncidentStatus
from chalicelib.sources import safejson
from chalicelib.store import with_full_timeline
from chalicelib.web.tokens import Principal, Role
from chalicelib.wiring import Deps

MAX_BODY = 256 * 1024
MAX_NOTE = MAX_NOTE_CHARS
PAGE_LIMIT_MAX = 100
DUTY_KINDS = frozenset(kind.value for kind in DutyKind)  # what the route accepts: openapi.json lists the same


@dataclass
class ApiResponse:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


def error(status: int, message: str, field_name: str | None = None) -> ApiResponse:
    kind = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict",
            413: "too_large", 503: "unavailable"}.get(status, "error")
    body: dict[str, Any] = {"message": message, "error": kind}
    if field_name:
        body["field"] = field_name
    return ApiResponse(status, body)


def require(principal: Principal | None, role: Role) -> ApiResponse | None:
    if principal is None:
        return error(401, "a valid bearer token is required", "Authorization")
    if principal.role < role:
        return error(403, f"role {principal.role.name.lower()} may not do this; needs {role.name.lower()}")
    return None


def incident_json(incident: Incident) -> dict[str, Any]:
    out: dict[str, Any] = incident.model_dump(mode="json", exclude={"version", "next_action_at", "timeline_stored",
                                                                    "key_released"})
    out["timeline_count"] = incident.timeline_count
    out["time_to_acknowledge_seconds"] = incident.time_to_acknowledge
    return out


# --- reading ------------------------------------------------------------------------------


def list_incidents(deps: Deps, principal: Principal | None, query: Mapping[str, str]) -> ApiResponse:
    if denied := require(principal, Role.VIEWER):
        return denied
    try:
        status = _enum(query, "status", IncidentStatus)
        severity = _int(query, "severity", 1, 4)
        since = _time(query, "since")
        limit = _int(query, "limit", 1, PAGE_LIMIT_MAX) or 50
        after = _cursor(query.get("cursor"))
    except InvalidRequest as exc:
        return error(400, str(exc), exc.field)
    unknown = sorted(set(query) - {"status", "severity", "since", "limit", "cursor"})
    if unknown:
        return error(400, f"{unknown[0]}: unknown filter", unknown[0])
    rows = sorted(deps.store.list(), key=lambda i: (i.opened_at, i.id), reverse=True)  # newest first
    rows = [i for i in rows if (status is None or i.status is status)
            and (severity is None or i.severity.value == severity) and (since is None or i.opened_at >= since)]
    if after is not None:
        rows = [i for i in rows if (i.opened_at, i.id) < after]
    page, more = rows[:limit], len(rows) > limit
    cursor = _make_cursor(page[-1]) if more and page else None
    return ApiResponse(200, {"incidents": [_summary(i) for i in page], "next_cursor": cursor})


def get_incident(deps: Deps, principal: Principal | None, incident_id: str) -> ApiResponse:
    if denied := require(principal, Role.VIEWER):
        return denied
    incident = deps.store.get(incident_id)
    if incident is None:
        return error(404, f"no incident {incident_id}", "id")
    return ApiResponse(200, incident_json(with_full_timeline(deps.store, incident)))


# --- changing -------------------------------------------------------------------------------


def acknowledge(deps: Deps, principal: Principal | None, incident_id: str, raw_body: bytes) -> ApiResponse:
    return _responder_action(principal, raw_body, incident_id,
                             lambda user: deps.pipeline.acknowledge(incident_id, user))


def resolve(deps: Deps, principal: Principal | None, incident_id: str, raw_body: bytes) -> ApiResponse:
    if denied := require(principal, Role.RESPONDER) or _size(raw_body):
        return denied
    assert principal is not None
    try:
        body = _json_object(raw_body, required=False)
        note = _text(body, "note", required=False)
    except InvalidRequest as exc:
        return error(400, str(exc), exc.field)
    return _act(lambda: deps.pipeline.resolve(incident_id, principal.user, note=note), incident_id)


def add_note(deps: Deps, principal: Principal | None, incident_id: str, raw_body: bytes) -> ApiResponse:
    if denied := require(principal, Role.RESPONDER) or _size(raw_body):
        return denied
    assert principal is not None
    try:
        text = _text(_json_object(raw_body, required=True), "text", required=True)
    except InvalidRequest as exc:
        return error(400, str(exc), exc.field)
    response = _act(lambda: deps.pipeline.add_note(incident_id, principal.user, text or ""), incident_id)
    return ApiResponse(201, response.body) if response.status == 200 else response


def postmortem(deps: Deps, principal: Principal | None, incident_id: str) -> ApiResponse:
    if denied := require(principal, Role.VIEWER):
        return denied
    from chalicelib.reports.postmortem import draft

    incident = deps.store.get(incident_id)
    if incident is None:
        return error(404, f"no incident {incident_id}", "id")
    return ApiResponse(200, draft(with_full_timeline(deps.store, incident), deps.config, deps.clock()),
                       {"Content-Type": "text/markdown; charset=utf-8"})


def mark_phi_exposure(deps: Deps, principal: Principal | None, incident_id: str, raw_body: bytes) -> ApiResponse:
    return _responder_action(principal, raw_body, incident_id,
                             lambda user: deps.pipeline.mark_phi_exposure(incident_id, user))


def complete_duty(deps: Deps, principal: Principal | None, incident_id: str, kind: str) -> ApiResponse:
    if denied := require(principal, Role.RESPONDER):
        return denied
    assert principal is not None
    if kind not in DUTY_KINDS:
        return error(400, f"kind: must be one of {', '.join(sorted(DUTY_KINDS))}", "kind")
    return _act(lambda: deps.pipeline.complete_duty(incident_id, kind, principal.user), incident_id)


# --- on-call operations: page on purpose, escalate, reassign, snooze, severity (chalicelib.operations) ---


def page(deps: Deps, principal: Principal | None, raw_body: bytes) -> ApiResponse:
    """A person pages on purpose: 201 with a new incident, 200 when its key's incident is open."""
    from chalicelib.operations import Operations

    def run(user: str, body: dict[str, Any]) -> ApiResponse:
        reason, incident = Operations(deps.pipeline).page(
            severity=body.get("severity"), title=body.get("title"), role=body.get("role"),
            person=body.get("person"), key=body.get("key"), by=user)
        return ApiResponse(201 if reason == "OPENED" else 200,
                           {"reason": reason, "incident": incident_json(incident) if incident else None})
    return _operation(principal, raw_body, None, {"severity", "title", "role", "person", "key"}, run)


def escalate(deps: Deps, principal: Principal | None, incident_id: str, raw_body: bytes) -> ApiResponse:
    return _incident_operation(deps, principal, raw_body, incident_id, set(),
                               lambda ops, user, body: ops.escalate(incident_id, user), required=False)


def reassign(deps: Deps, principal: Principal | None, incident_id: str, raw_body: bytes) -> ApiResponse:
    return _incident_operation(deps, principal, raw_body, incident_id, {"to"},
                               lambda ops, user, body: ops.reassign(incident_id, body.get("to"), user))


def snooze(deps: Deps, principal: Principal | None, incident_id: str, raw_body: bytes) -> ApiResponse:
    return _incident_operation(deps, principal, raw_body, incident_id, {"until"},
                               lambda ops, user, body: ops.snooze(incident_id, body.get("until"), user))


def set_severity(deps: Deps, principal: Principal | None, incident_id: str, raw_body: bytes) -> ApiResponse:
    return _incident_operation(deps, principal, raw_body, incident_id, {"severity"},
                               lambda ops, user, body: ops.set_severity(incident_id, body.get("severity"), user))


def _incident_operation(deps: Deps, principal: Principal | None, raw_body: bytes, incident_id: str,
                        fields: set[str], act: Callable[[Any, str, dict[str, Any]], tuple[str, Incident]],
                        required: bool = True) -> ApiResponse:
    """An action on one incident: ``{"reason", "incident"}``; 404, 409 (refused) as for the others."""
    from chalicelib.operations import Operations

    def run(user: str, body: dict[str, Any]) -> ApiResponse:
        reason, incident = act(Operations(deps.pipeline), user, body)
        return ApiResponse(200, {"reason": str(reason), "incident": incident_json(incident)})
    return _operation(principal, raw_body, incident_id, fields, run, required)


def _operation(principal: Principal | None, raw_body: bytes, incident_id: str | None, fields: set[str],
               run: Callable[[str, dict[str, Any]], ApiResponse], required: bool = True) -> ApiResponse:
    """Responder role, a JSON object with only ``fields``, then ``run(user, body)`` with errors mapped."""
    from chalicelib.operations import Refused

    if denied := require(principal, Role.RESPONDER) or _size(raw_body):
        return denied
    assert principal is not None
    try:
        body = _json_object(raw_body, required=required)
        if unknown := sorted(set(body) - fields):
            raise InvalidRequest(unknown[0], "unknown field")
        return run(principal.user, body)
    except InvalidRequest as exc:
        return error(400, str(exc), exc.field)
    except IncidentNotFound:
        return error(404, f"no incident {incident_id}", "id")
    except Refused as exc:
        return error(409, str(exc), exc.field)
    except ConflictError as exc:
        return error(409, str(exc), "status")


# --- on-call overrides (chalicelib.overrides) ----------------------------------------------------


def add_override(deps: Deps, principal: Principal | None, raw_body: bytes) -> ApiResponse:
    """``{"role", "person", "from", "to"}``: 201 with the stored override (its ``id`` removes it)."""
    from chalicelib.overrides import OverrideService

    def run(user: str, body: dict[str, Any]) -> ApiResponse:
        added = OverrideService(deps.store, deps.config, deps.clock).add(
            role=body.get("role"), person=body.get("person"), start=body.get("from"), end=body.get("to"), by=user)
        return ApiResponse(201, added.model_dump(mode="json"))
    return _operation(principal, raw_body, None, {"role", "person", "from", "to"}, run)


def list_overrides(deps: Deps, principal: Principal | None) -> ApiResponse:
    from chalicelib.overrides import OverrideService

    if denied := require(principal, Role.VIEWER):
        return denied
    listed = OverrideService(deps.store, deps.config, deps.clock).listing()
    return ApiResponse(200, {"overrides": [o.model_dump(mode="json") for o in listed]})


def remove_override(deps: Deps, principal: Principal | None, override_id: str) -> ApiResponse:
    from chalicelib.overrides import OverrideService, UnknownOverride

    if denied := require(principal, Role.RESPONDER):
        return denied
    assert principal is not None
    try:
        removed = OverrideService(deps.store, deps.config, deps.clock).remove(override_id, principal.user)
    except UnknownOverride as exc:
        return error(404, str(exc), exc.field)
    return ApiResponse(200, removed.model_dump(mode="json"))


# --- silences (chalicelib.silences) -------------------------------------------------------------


def add_silence(deps: Deps, principal: Principal | None, raw_body: bytes) -> ApiResponse:
    """``{"matchers", "starts_at", "ends_at", "reason", "include_sev1"?}``: 201 with the stored silence."""
    from chalicelib.decisions.silences import unmapped_service_warning
    from chalicelib.silences import SilenceService

    def run(user: str, body: dict[str, Any]) -> ApiResponse:
        added = SilenceService(deps.store, deps.clock).add(
            matchers=body.get("matchers"), starts_at=body.get("starts_at"), ends_at=body.get("ends_at"),
            reason=body.get("reason"), by=user, include_sev1=body.get("include_sev1", False))
        # a service the map does not know is accepted, said back (decisions/silences.py)
        warning = unmapped_service_warning(added.matchers, deps.config.services)
        return ApiResponse(201, added.model_dump(mode="json") | ({"warnings": [warning]} if warning else {}))
    return _operation(principal, raw_body, None, {"matchers", "starts_at", "ends_at", "reason", "include_sev1"}, run)


def list_silences(deps: Deps, principal: Principal | None) -> ApiResponse:
    from chalicelib.silences import SilenceService

    if denied := require(principal, Role.VIEWER):
        return denied
    listed = SilenceService(deps.store, deps.clock).listing()
    return ApiResponse(200, {"silences": [s.model_dump(mode="json") for s in listed]})


def end_silence(deps: Deps, principal: Principal | None, silence_id: str) -> ApiResponse:
    """End a silence now; the open incidents it held back are paged by the next sweep."""
    from chalicelib.silences import SilenceService, UnknownSilence

    if denied := require(principal, Role.RESPONDER):
        return denied
    assert principal is not None
    try:
        ended, released = SilenceService(deps.store, deps.clock, deps.pipeline.incidents).end(silence_id,
                                                                                             principal.user)
    except UnknownSilence as exc:
        return error(404, str(exc), exc.field)
    return ApiResponse(200, {**ended.model_dump(mode="json"), "released_incidents": released})


# --- heartbeats (chalicelib.heartbeats) ---------------------------------------------------------


def heartbeat(deps: Deps, name: str, headers: Mapping[str, str], query: Mapping[str, str],
              raw_body: bytes) -> ApiResponse:
    """A job reports in. No authorizer on this route: a cron job's ``curl`` may hold a bearer token
    (responder) or only the heartbeat's signed URL (``?sig=``); the body, if any, is ignored."""
    from chalicelib.heartbeats import Heartbeats, UnknownHeartbeat, signature_ok
    from chalicelib.web.tokens import bearer

    if denied := _size(raw_body):
        return denied
    if unknown := sorted(set(query) - {"sig"}):
        return error(400, f"{unknown[0]}: unknown parameter", unknown[0])
    authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
    if authorization is not None:
        principal = deps.tokens.verify(bearer(authorization))
        if denied := require(principal, Role.RESPONDER):
            return denied
        assert principal is not None
        by = principal.user
    elif signature_ok(deps.links, name, query.get("sig")):
        by = "signed-url"
    else:
        return error(401, "a valid bearer token or the heartbeat's signed URL (?sig=) is required", "sig")
    try:
        return ApiResponse(200, Heartbeats(deps.pipeline).beat(name, by, deps.clock()))
    except UnknownHeartbeat as exc:
        return error(404, str(exc), exc.field)


def list_heartbeats(deps: Deps, principal: Principal | None) -> ApiResponse:
    from chalicelib.heartbeats import Heartbeats

    if denied := require(principal, Role.VIEWER):
        return denied
    return ApiResponse(200, {"heartbeats": Heartbeats(deps.pipeline).list(deps.clock())})


def create_token(deps: Deps, principal: Principal | None, raw_body: bytes) -> ApiResponse:
    if denied := require(principal, Role.ADMIN) or _size(raw_body):
        return denied
    try:
        body = _json_object(raw_body, required=True)
        user = _text(body, "user", required=True) or ""
        role = Role.parse(_text(body, "role", required=True) or "")
        assert principal is not None
        token_id, token = deps.tokens.create(user, role, created_by=principal.user)
    except InvalidRequest as exc:
        return error(400, str(exc), exc.field)
    return ApiResponse(201, {"id": token_id, "token": token, "user": user, "role": role.name.lower()})


def revoke_token(deps: Deps, principal: Principal | None, token_id: str) -> ApiResponse:
    if denied := require(principal, Role.ADMIN):
        return denied
    assert principal is not None
    try:
        deps.tokens.revoke(token_id, by=principal.user)
    except InvalidRequest as exc:
        return error(404, str(exc), "id")
    return ApiResponse(200, deps.tokens.describe(token_id))


# --- helpers ----------------------------------------------------------------------------------


def _responder_action(principal: Principal | None, raw_body: bytes, incident_id: str,
                      run: Callable[[str], Incident]) -> ApiResponse:
    """A bodiless responder change: role and size checks, then ``run(user)`` with errors mapped."""
    if denied := require(principal, Role.RESPONDER) or _size(raw_body):
        return denied
    assert principal is not None
    return _act(lambda: run(principal.user), incident_id)


def _act(run: Any, incident_id: str) -> ApiResponse:
    try:
        return ApiResponse(200, incident_json(run()))
    except IncidentNotFound:
        return error(404, f"no incident {incident_id}", "id")
    except ConflictError as exc:
        return error(409, str(exc), "status")
    except InvalidRequest as exc:  # a limit the service enforces (notes per incident)
        return error(400, str(exc), exc.field)


def _summary(incident: Incident) -> dict[str, Any]:
    return incident.model_dump(mode="json", include={
        "id", "key", "kind", "title", "severity", "status", "owner", "playbook", "opened_at", "last_seen",
        "count", "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by"})


def _size(raw_body: bytes) -> ApiResponse | None:
    return error(413, f"body is larger than {MAX_BODY} bytes", "body") if len(raw_body) > MAX_BODY else None


def _json_object(raw_body: bytes, required: bool) -> dict[str, Any]:
    if not raw_body.strip():
        if required:
            raise InvalidRequest("body", "a JSON object is required")
        return {}
    try:
        value = safejson.loads(raw_body)
    except safejson.JsonRejected as exc:
        raise InvalidRequest("body", str(exc)) from None
    except ValueError:
        raise InvalidRequest("body", "not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidRequest("body", "must be a JSON object")
    return value


def _text(body: Mapping[str, Any], name: str, required: bool) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidRequest(name, "is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(name, "must be a non-empty string")
    if len(value) > MAX_NOTE:
        raise InvalidRequest(name, f"must be at most {MAX_NOTE} characters")
    return value.strip()


def _enum(query: Mapping[str, str], name: str, kind: type[IncidentStatus]) -> IncidentStatus | None:
    if name not in query:
        return None
    try:
        return kind(query[name])
    except ValueError:
        raise InvalidRequest(name, f"must be one of {', '.join(k.value for k in kind)}") from None


def _int(query: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    if name not in query:
        return None
    try:
        value = int(query[name])
    except ValueError:
        raise InvalidRequest(name, f"must be a whole number from {low} to {high}") from None
    if not low <= value <= high:
        raise InvalidRequest(name, f"must be a whole number from {low} to {high}")
    return value


def _time(query: Mapping[str, str], name: str) -> datetime | None:
    if name not in query:
        return None
    try:
        value = datetime.fromisoformat(query[name].replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(name, "must be an ISO 8601 time with a UTC offset") from None
    if value.tzinfo is None:
        raise InvalidRequest(name, "must be an ISO 8601 time with a UTC offset")
    return value


def _make_cursor(incident: Incident) -> str:
    raw = json.dumps([incident.opened_at.isoformat(), incident.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor(value: str | None) -> tuple[datetime, str] | None:
    """The position a cursor names; anything but ``[aware ISO time, id]`` is refused (a forged
    naive time could not even be compared with the incidents' times)."""
    if not value:
        return None
    try:
        decoded = safejson.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), max_depth=1)
        if not (isinstance(decoded, list) and len(decoded) == 2 and all(isinstance(v, str) for v in decoded)):
            raise ValueError("not a cursor")
        opened, incident_id = decoded
        at = datetime.fromisoformat(opened)
        if at.tzinfo is None:
            raise ValueError("not a cursor")
        at.astimezone(UTC)  # an offset that overflows the calendar
    except (ValueError, TypeError, OverflowError):
        raise InvalidRequest("cursor", "is not a cursor this API returned") from None
    return at, incident_id
