"""The pages behind one-click ack links: GET confirms (changes nothing), the form POST acks.

Mail scanners and chat previews fetch links; only the button's POST acts. Expired,
reused, forged or mangled links get a clear page and change nothing.

The link in the address bar is a credential, so every page is sent with headers that keep
it there: not cached (``no-store``), never sent on as a referrer, never framed by another
site, no script or outside resource at all. The POST must come from our own page: a
browser that names another origin (``Origin``, or ``Sec-Fetch-Site: cross-site``) is
refused and nothing changes.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from enum import StrEnum
from urllib.parse import urlsplit

from chalicelib.models import Incident, IncidentStatus
from chalicelib.notify.links import AckClaim, LinkProblem
from chalicelib.web.api import ApiResponse
from chalicelib.wiring import Deps

_PROBLEMS = {
    LinkProblem.EXPIRED: (410, "This link has expired", "Ack links work for a limited time. Acknowledge it in "
                                                        "the console (/console on this site) or PagerDuty."),
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


# Only the inline style sheet and a form posting back here: nothing to inject into, nothing to frame.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


class OriginCheck(StrEnum):
    SAME_ORIGIN = "SAME_ORIGIN"    # the browser says the form came from our page
    NOT_SAID = "NOT_SAID"          # no browser origin headers (a client that is not a browser)
    CROSS_ORIGIN = "CROSS_ORIGIN"  # another site's page posted it


def check_origin(headers: Mapping[str, str], public_url: str | None) -> OriginCheck:
    """Where a form POST came from, by what the browser says (pure).

    ``Origin: null`` is what a browser sends for our own form under ``Referrer-Policy:
    no-referrer``, and also what a sandboxed frame sends, so it is decided by
    ``Sec-Fetch-Site``, which browsers send alongside it and pages cannot set.
    """
    lowered = {k.lower(): v.strip() for k, v in headers.items()}
    origin, site = lowered.get("origin"), lowered.get("sec-fetch-site", "").lower()
    if site in ("cross-site", "same-site"):
        return OriginCheck.CROSS_ORIGIN
    if origin is None or (origin == "null" and not site):
        return OriginCheck.NOT_SAID
    if origin == "null":
        return OriginCheck.SAME_ORIGIN if site == "same-origin" else OriginCheck.CROSS_ORIGIN
    return OriginCheck.SAME_ORIGIN if public_url and _origin(origin) == _origin(public_url) else \
        OriginCheck.CROSS_ORIGIN


def _origin(url: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(url)
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme.lower())
    except ValueError:
        return None
    return (parts.scheme.lower(), (parts.hostname or "").lower(), port) if parts.hostname else None


def submit(deps: Deps, token: str, headers: Mapping[str, str] | None = None) -> ApiResponse:
    public_url = deps.links.base_url if deps.links else None  # the address our links (and page) are on
    if public_url and check_origin(headers or {}, public_url) is OriginCheck.CROSS_ORIGIN:
        return _page(403, "Not acknowledged", "This request did not come from the responder's own page, so "
                     "nothing was changed. Open the link from your page and press the button there.")
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
    return ApiResponse(status, document, {"Content-Type": "text/html; charset=utf-8", **SECURITY_HEADERS})
