"""The pages behind one-click ack links: GET confirms (changes nothing), the form POST acks.

Mail scanners and chat previews fetch links; only the button's POST acts. Expired,
reused, forged or mangled links get a clear page and change nothing.
"""

from __future__ import annotations

import html

from chalicelib.api import ApiResponse
from chalicelib.links import AckClaim, LinkProblem
from chalicelib.models import Incident, IncidentStatus
from chalicelib.wiring import Deps

_PROBLEMS = {
    LinkProblem.EXPIRED: (410, "This link has expired", "Ack links work for a limited time. Open the incident "
                                                        "in PagerDuty or the responder to acknowledge it."),
    LinkProblem.USED: (409, "This link was already used", "Each ack link works once."),
    LinkProblem.FORGED: (403, "This link is not valid", "It was not issued by the responder, or it was altered."),
    LinkProblem.MALFORMED: (400, "This link is not valid", "It is incomplete; copy the whole link from the page."),
}


def show(deps: Deps, token: str) -> ApiResponse:
    found = _open_incident(deps, token, not_open_status=200)
    if isinstance(found, ApiResponse):
        return found
    claim, incident = found
    body = (f"<p>{html.escape(claim.person)}, you were paged for this incident.</p>"
            f'<form method="post"><button type="submit" id="ack">Acknowledge</button></form>')
    return _page(200, "Acknowledge this incident?", body, incident, raw=True)


def submit(deps: Deps, token: str) -> ApiResponse:
    found = _open_incident(deps, token, not_open_status=409)
    if isinstance(found, ApiResponse):
        return found
    claim, _ = found
    if not deps.links or not deps.links.use(deps.store, claim, deps.clock()):
        return _page(*_PROBLEMS[LinkProblem.USED])
    acked = deps.pipeline.acknowledge(claim.incident_id, claim.person, source="ack-link")
    return _page(200, "Acknowledged", f"Acknowledged by {claim.person}. No more pages will go out for it.", acked)


def _open_incident(deps: Deps, token: str, not_open_status: int) -> tuple[AckClaim, Incident] | ApiResponse:
    """The link's claim and its still-open incident, or the page that explains why not."""
    claim = _claim(deps, token)
    if isinstance(claim, ApiResponse):
        return claim
    incident = deps.store.get(claim.incident_id)
    if incident is None:
        return _page(404, "Incident not found", "It may have been removed.")
    if incident.status is not IncidentStatus.OPEN:
        return _page(not_open_status, f"Already {incident.status.value}", _state(incident), incident)
    return claim, incident


def _claim(deps: Deps, token: str) -> AckClaim | ApiResponse:
    if deps.links is None:
        return _page(503, "Ack links are not configured", "Set RESPONDER_PUBLIC_URL and the link secret.")
    claim = deps.links.check(token, deps.clock())
    if isinstance(claim, LinkProblem):
        return _page(*_PROBLEMS[claim])
    return claim


def _state(incident: Incident) -> str:
    if incident.status is IncidentStatus.ACKNOWLEDGED:
        return f"Acknowledged by {incident.acknowledged_by} at {incident.acknowledged_at:%H:%M UTC}."
    return f"Resolved by {incident.resolved_by} at {incident.resolved_at:%H:%M UTC}." if incident.resolved_at else ""


def _page(status: int, heading: str, text: str, incident: Incident | None = None, raw: bool = False) -> ApiResponse:
    about = ""
    if incident is not None:
        about = (f'<p class="incident">SEV{incident.severity.value} · {html.escape(incident.title)}<br>'
                 f"<small>{html.escape(incident.id)} · {incident.status.value}</small></p>")
    body = text if raw else f"<p>{html.escape(text)}</p>"
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{html.escape(heading)}</title>
<style>
body {{ font: 18px/1.4 system-ui, sans-serif; margin: 0; padding: 24px; background: #f5f5f5; color: #111; }}
main {{ max-width: 28rem; margin: auto; background: #fff; border-radius: 12px; padding: 24px; }}
h1 {{ font-size: 1.3rem; margin-top: 0; }}
.incident {{ background: #fff3cd; padding: 12px; border-radius: 8px; }}
button {{ width: 100%; font-size: 1.2rem; padding: 16px; border: 0; border-radius: 8px;
          background: #0b5; color: #fff; }}
</style></head>
<body><main><h1>{html.escape(heading)}</h1>{about}{body}</main></body></html>
"""
    return ApiResponse(status, document, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"})
