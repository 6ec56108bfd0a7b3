"""The web console: server-rendered pages for people, behind a session cookie.

    /console/login      a form that takes an API token once (``sessions.py``) and sets the cookie
    /console            the incident list: filters, newest first, overdue duties flagged
    /console/incidents/ID   timeline, pages, playbook, duties, post-mortem draft, action buttons
    /console/oncall     who holds each role now, and who takes over next

Every action form posts to ``/console/incidents/ID/ACTION`` with the session's CSRF secret; the
view turns the form into the JSON body the API takes and calls the API's own view
(``web/api.py``), so the role checks, validation, 409s and the timeline entry are the API's,
word for word. Errors come back on the incident page as one line.

The console never shows an ack link or a page's text: a page's link is the paged person's
alone (and the stored text has it redacted anyway). Jinja2 renders with autoescaping on for
every template; pages carry the ack page's security headers (no script, no framing, no
caching, no referrer).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit
from zoneinfo import ZoneInfo

from chalicelib.decisions.flapping import resolve_at
from chalicelib.models import Incident, IncidentStatus
from chalicelib.web import api, sessions
from chalicelib.web.ackpage import SECURITY_HEADERS, OriginCheck, check_origin
from chalicelib.web.api import ApiResponse
from chalicelib.web.tokens import Role
from chalicelib.wiring import Deps

TEMPLATES = Path(__file__).parent / "templates"
MAX_FORM = 16 * 1024
LIST_LIMIT = 100
# What each form button does: the API view it calls and the JSON body it builds from the form.
ACTIONS: dict[str, tuple[str, Callable[[Mapping[str, str], ZoneInfo], dict[str, Any]]]] = {
    "ack": ("acknowledge", lambda form, zone: {}),
    "resolve": ("resolve", lambda form, zone: {"note": form["note"]} if form.get("note", "").strip() else {}),
    "note": ("add_note", lambda form, zone: {"text": form.get("text", "")}),
    "escalate": ("escalate", lambda form, zone: {}),
    "reassign": ("reassign", lambda form, zone: {"to": form.get("to", "")}),
    "snooze": ("snooze", lambda form, zone: {"until": _local_to_iso(form.get("until", ""), zone)}),
    "severity": ("set_severity", lambda form, zone: {"severity": _int_or_text(form.get("severity", ""))}),
}
DONE = {"ack": "Acknowledged", "resolve": "Resolved", "note": "Note added", "escalate": "Escalated",
        "reassign": "Reassigned", "snooze": "Snoozed", "severity": "Severity changed"}


@functools.cache
def _environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    # autoescape=True for every template (not select_autoescape's extension list): nothing renders raw.
    return Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True)


def render(code: int, template: str, base: str, **values: Any) -> ApiResponse:
    body = _environment().get_template(template).render(base=base, **values)
    return ApiResponse(code, body, {"Content-Type": "text/html; charset=utf-8", **SECURITY_HEADERS})


def redirect(location: str, *, cookie: str | None = None) -> ApiResponse:
    headers = {"Location": location, "Content-Type": "text/html; charset=utf-8", **SECURITY_HEADERS}
    if cookie is not None:
        headers["Set-Cookie"] = cookie
    return ApiResponse(303, "", headers)


# --- login -----------------------------------------------------------------------------------


def login_form(deps: Deps, site: str, headers: Mapping[str, str]) -> ApiResponse:
    base = _base(site)
    if sessions.SessionService(deps.store, deps.clock).find(headers):
        return redirect(f"{base}/console")
    return render(200, "login.html", base, user=None, problem=None)


def login(deps: Deps, site: str, headers: Mapping[str, str], raw_body: bytes) -> ApiResponse:
    base = _base(site)
    if check_origin(headers, site) is OriginCheck.CROSS_ORIGIN:
        return render(403, "login.html", base, user=None, problem="This form must be sent from the console's own page.")
    form = _form(raw_body)
    opened = sessions.SessionService(deps.store, deps.clock).open(form.get("token", "")) if form else None
    if opened is None:
        return render(401, "login.html", base, user=None,
                      problem="That token is not valid (unknown, revoked or mistyped).")
    value, _ = opened
    return redirect(f"{base}/console", cookie=sessions.set_cookie(value, f"{base}/console"))


def logout(deps: Deps, site: str, headers: Mapping[str, str], raw_body: bytes) -> ApiResponse:
    base = _base(site)
    service = sessions.SessionService(deps.store, deps.clock)
    session = service.find(headers)
    if session is not None and sessions.csrf_ok(session, _form(raw_body).get("csrf")):
        service.close(session)
    return redirect(f"{base}/console/login", cookie=sessions.clear_cookie(f"{base}/console"))


# --- pages -----------------------------------------------------------------------------------


def incident_list(deps: Deps, site: str, headers: Mapping[str, str], query: Mapping[str, str]) -> ApiResponse:
    base = _base(site)
    session = sessions.SessionService(deps.store, deps.clock).find(headers)
    if session is None:
        return redirect(f"{base}/console/login")
    now, zone = deps.clock(), deps.config.routing.zone
    status = query.get("status") or ""
    severity = query.get("severity") or ""
    problem = None
    if status and status not in {s.value for s in IncidentStatus} | {"unresolved"}:
        problem, status = "status: must be open, acknowledged, resolved or unresolved", ""
    if severity and severity not in {"1", "2", "3", "4"}:
        problem, severity = "severity: must be 1, 2, 3 or 4", ""
    rows = sorted(deps.store.list(), key=lambda i: (i.opened_at, i.id), reverse=True)
    rows = [i for i in rows if _status_matches(i, status) and (not severity or i.severity.value == int(severity))]
    shown = [_row(i, now, zone) for i in rows[:LIST_LIMIT]]
    return render(400 if problem else 200, "list.html", base, user=session.principal, csrf=session.csrf,
                  incidents=shown, more=max(0, len(rows) - LIST_LIMIT), status=status, severity=severity,
                  problem=problem, now=_when(now, zone))


def incident_page(deps: Deps, site: str, headers: Mapping[str, str], incident_id: str,
                  query: Mapping[str, str], *, problem: str | None = None, status: int = 200) -> ApiResponse:
    base = _base(site)
    session = sessions.SessionService(deps.store, deps.clock).find(headers)
    if session is None:
        return redirect(f"{base}/console/login")
    from chalicelib.reports.postmortem import draft
    from chalicelib.store import with_full_timeline

    incident = deps.store.get(incident_id)
    if incident is None:
        return render(404, "message.html", base, user=session.principal, csrf=session.csrf,
                      title="No such incident", text=f"There is no incident {incident_id}.")
    full = with_full_timeline(deps.store, incident)
    now, zone = deps.clock(), deps.config.routing.zone
    done = DONE.get(query.get("done", ""))
    routing = deps.config.routing
    return render(status, "incident.html", base, user=session.principal, csrf=session.csrf,
                  can_act=session.principal.role >= Role.RESPONDER and incident.is_open,
                  i=_row(incident, now, zone), incident=incident, timeline=[
                      {"at": _short(e.at, zone), "what": e.what, "by": e.by} for e in full.timeline],
                  omitted=full.timeline_omitted, pages=[
                      {"at": _short(p.at, zone), "step": p.step, "role": p.role, "person": p.person,
                       "channel": p.channel, "kind": p.kind.value, "status": p.status.value,
                       "error": p.error or ""} for p in incident.pages],
                  duties=[{"kind": d.kind.value, "due": _when(d.due_at, zone), "reason": d.reason,
                           "done": f"{_when(d.done_at, zone)} by {d.done_by}" if d.done_at else "",
                           "overdue": d.done_at is None and d.due_at <= now} for d in incident.duties],
                  watch=incident.watch, snoozed=_when(incident.snoozed_until, zone) if incident.snoozed_until
                  and incident.snoozed_until > now else "", recovering=_recovering(incident, deps, zone),
                  targets=sorted(routing.people) + sorted(routing.roles), done=done, problem=problem,
                  postmortem=draft(full, deps.config, now), zone=routing.timezone,
                  default_snooze=_local_input(now + timedelta(hours=1), zone))


def _recovering(incident: Incident, deps: Deps, zone: ZoneInfo) -> str:
    """An alarm whose quick recovery is held (decisions/flapping.py): when the sweep resolves it."""
    until = resolve_at(incident, deps.config.routing.flapping)
    if until is None or incident.flap is None or incident.flap.quiet_since is None:
        return ""
    return (f"recovered {_when(incident.flap.quiet_since, zone)}; resolves {_when(until, zone)} unless it fires "
            f"again (escalation waits)")


def act(deps: Deps, site: str, headers: Mapping[str, str], incident_id: str, action: str,
        raw_body: bytes) -> ApiResponse:
    base = _base(site)
    service = sessions.SessionService(deps.store, deps.clock)
    session = service.find(headers)
    if session is None:
        return redirect(f"{base}/console/login")
    form = _form(raw_body)
    if check_origin(headers, site) is OriginCheck.CROSS_ORIGIN or not sessions.csrf_ok(session, form.get("csrf")):
        return render(403, "message.html", base, user=session.principal, csrf=session.csrf,
                      title="Not sent from the console",
                      text="This form did not come from your console session; nothing changed. Reload and try again.")
    if action not in ACTIONS:
        return incident_page(deps, site, headers, incident_id, {}, status=404,
                             problem=f"action: unknown ({', '.join(ACTIONS)})")
    view_name, body_of = ACTIONS[action]
    try:
        body = body_of(form, deps.config.routing.zone)
    except ValueError as exc:
        return incident_page(deps, site, headers, incident_id, {}, status=400, problem=str(exc))
    result: ApiResponse = getattr(api, view_name)(deps, session.principal, incident_id, json.dumps(body).encode())
    if result.status >= 400:
        message = result.body.get("message", "refused") if isinstance(result.body, dict) else "refused"
        return incident_page(deps, site, headers, incident_id, {}, status=result.status, problem=message)
    return redirect(f"{base}/console/incidents/{quote(incident_id, safe='')}?done={action}")


def oncall_page(deps: Deps, site: str, headers: Mapping[str, str]) -> ApiResponse:
    base = _base(site)
    session = sessions.SessionService(deps.store, deps.clock).find(headers)
    if session is None:
        return redirect(f"{base}/console/login")
    from chalicelib import overrides
    from chalicelib.decisions.oncall import holders

    now = deps.clock()
    routing = overrides.with_stored(deps.config, overrides.stored(deps.store)).routing
    zone = routing.zone
    roles = []
    for name, role in routing.roles.items():
        current = holders(role, now, zone)
        change = _next_change(functools.partial(holders, role, zone=zone), current, now)
        roles.append({"name": name, "now": ", ".join(current) or "nobody",
                      "next": ", ".join(change[1]) or "nobody" if change else "",
                      "from": _when(change[0], zone) if change else "no change in the next 14 days"})
    return render(200, "oncall.html", base, user=session.principal, csrf=session.csrf, roles=roles,
                  now=_when(now, zone), zone=routing.timezone)


# --- helpers ---------------------------------------------------------------------------------


def _next_change(holders_at: Callable[[datetime], list[str]], current: list[str], now: datetime,
                 step: timedelta = timedelta(minutes=15), horizon: timedelta = timedelta(days=14)
                 ) -> tuple[datetime, list[str]] | None:
    """When the holders first differ from ``current`` (to the minute), and who they are then."""
    at = now.replace(second=0, microsecond=0)
    end = now + horizon
    while at < end:
        later = at + step
        if holders_at(later) != current:
            moment = at
            while holders_at(moment) == current:  # narrow the 15-minute step to the minute
                moment += timedelta(minutes=1)
            return moment, holders_at(moment)
        at = later
    return None


def _row(incident: Incident, now: datetime, zone: ZoneInfo) -> dict[str, Any]:
    overdue = [d.kind.value for d in incident.duties if d.done_at is None and d.due_at <= now]
    return {"id": incident.id, "title": incident.title, "severity": incident.severity.value,
            "status": incident.status.value, "owner": incident.owner, "kind": str(incident.kind),
            "opened": _when(incident.opened_at, zone), "count": incident.count,
            "acknowledged": f"{_when(incident.acknowledged_at, zone)} by {incident.acknowledged_by}"
            if incident.acknowledged_at else "",
            "resolved": f"{_when(incident.resolved_at, zone)} by {incident.resolved_by}"
            if incident.resolved_at else "",
            "overdue": overdue, "playbook": incident.playbook or "", "outcome": incident.playbook_outcome or ""}


def _status_matches(incident: Incident, wanted: str) -> bool:
    if not wanted:
        return True
    if wanted == "unresolved":
        return incident.is_open
    return incident.status.value == wanted


def _when(moment: datetime | None, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%a %d %b %H:%M %Z") if moment else ""


def _short(moment: datetime, zone: ZoneInfo) -> str:
    """For table cells on a phone: day and time, the zone named once at the top of the page."""
    return moment.astimezone(zone).strftime("%d %b %H:%M")


def _local_input(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def _local_to_iso(value: str, zone: ZoneInfo) -> str:
    """A ``datetime-local`` field (the team's wall clock, no zone) as an ISO instant."""
    try:
        wall = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError("until: a date and time is required") from None
    return (wall if wall.tzinfo else wall.replace(tzinfo=zone)).isoformat()


def _base(site: str) -> str:
    """The path the API is served under (``/api`` on an execute-api domain, empty on a custom one)."""
    return urlsplit(site).path.rstrip("/")


def _int_or_text(value: str) -> int | str:
    return int(value) if value.strip().isdigit() else value


def _form(raw_body: bytes) -> dict[str, str]:
    if len(raw_body) > MAX_FORM:
        return {}
    parsed = parse_qs(raw_body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=20)
    return {key: values[0] for key, values in parsed.items()}
