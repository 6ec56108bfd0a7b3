"""Two-way PagerDuty sync: webhooks v3 in (acknowledge / resolve ours), nothing echoed back.

``X-PagerDuty-Signature`` holds one ``v1=<hex>`` entry per active secret (two during a
rotation); the request is genuine if any entry equals HMAC-SHA256 of the raw body.
Delivery is at least once; the signature covers the body only, so the delivery id is the
body's digest (``X-Webhook-Id`` is not signed: a replayed body under a new one is a
duplicate), and the body's own ``occurred_at`` orders events: one that happened before
the incident last opened or resolved is recorded as stale and changes nothing.
PagerDuty disables a subscription after three dropped (4xx) webhooks, so a genuine
webhook we cannot match still gets a 2xx, with the reason.

PagerDuty's ``incident_key`` is one of our dedup keys: ``<incident id>/<person>/<n>`` (one
alert per person paged, pd_alerts.py), or the bare incident id (pages sent before). A
change that came from PagerDuty is applied with ``source="pagerduty"`` and that key: the
other alerts we opened are acknowledged or resolved too, that one is not echoed.

Only the person's current alert resolves our incident. We resolve a person's older alert
ourselves when a new loop opens the next one, and PagerDuty reports that back: such a
``incident.resolved`` changes nothing (``NOT_CURRENT_ALERT``). An older alert a human
resolved in PagerDuty before we did is recorded on the timeline and closed, and the
incident stays as it is (``EARLIER_ALERT``): it is not even taken as an acknowledgement,
since the person's current alert is still ringing and answering that one acknowledges.
An acknowledgement of any of our alerts acknowledges the incident.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.decisions import pd_alerts
from chalicelib.decisions.incidents import is_stale, noted_stale
from chalicelib.errors import ConflictError, SignatureError
from chalicelib.models import Incident
from chalicelib.signatures import verify_hmac
from chalicelib.sources.common import digest
from chalicelib.sources.sentry import signed_time
from chalicelib.store import Claim
from chalicelib.wiring import Deps


def verify_signature(raw_body: bytes, headers: Mapping[str, str], secret: str) -> None:
    lowered = {k.lower(): v for k, v in headers.items()}
    header = lowered.get("x-pagerduty-signature", "")
    given = [entry for entry in header.split(",") if entry.strip().startswith("v1=")]
    if not given:
        raise SignatureError("X-PagerDuty-Signature", "missing")
    if not verify_hmac(secret, raw_body, given, prefix="v1="):
        raise SignatureError("X-PagerDuty-Signature", "no v1 signature matches the body")


def find_incident(deps: Deps, incident_key: str | None) -> Incident | None:
    """Our incident for PagerDuty's incident_key: our id, else the open incident with that key."""
    if not incident_key:
        return None
    incident = deps.store.get(pd_alerts.incident_id_of(incident_key))
    if incident is not None:
        return incident
    for key in (incident_key, "alarm:" + incident_key.removeprefix("cloudwatch:")):
        incident = deps.store.get_open(key)
        if incident is not None:
            return incident
    return None


def delivery_id_for(raw_body: bytes) -> str:
    return f"pagerduty:sha256:{digest(raw_body)}"


def apply_event(deps: Deps, body: dict[str, Any], delivery: str) -> dict[str, Any]:
    event = _object(body.get("event"))
    event_type = str(event.get("event_type") or "")[:100]
    now = deps.clock()
    claim = deps.store.claim_delivery(delivery, now, deps.settings.delivery_lease_seconds)
    if claim is Claim.DONE:
        return {"reason": "DUPLICATE", "event_type": event_type}
    if claim is Claim.IN_PROGRESS:
        return {"reason": "IN_PROGRESS", "event_type": event_type}
    try:
        outcome = _apply(deps, event_type, event, delivery)
    except BaseException:
        deps.store.release_delivery(delivery)
        raise
    deps.store.complete_delivery(delivery, outcome, now, deps.settings.delivery_keep_days)
    return outcome


def _apply(deps: Deps, event_type: str, event: dict[str, Any], delivery: str) -> dict[str, Any]:
    if event_type not in ("incident.acknowledged", "incident.resolved"):
        return {"reason": "IGNORED", "event_type": event_type}
    data, agent = _object(event.get("data")), _object(event.get("agent"))
    raw_key = data.get("incident_key")
    key = raw_key if isinstance(raw_key, str) else None  # a webhook can carry anything
    incident = find_incident(deps, key)
    if incident is None:
        return {"reason": "NO_MATCH", "event_type": event_type}
    occurred = signed_time(event.get("occurred_at"))
    if is_stale(occurred, incident):
        now = deps.clock()
        deps.pipeline.incidents.update(incident.id, lambda i: noted_stale(
            i, f"PagerDuty {event_type}", occurred, delivery, now))
        return {"reason": "STALE", "event_type": event_type, "incident_id": incident.id}
    by = f"pagerduty:{str(agent.get('summary') or agent.get('id') or 'unknown')[:100]}"
    try:
        if event_type == "incident.acknowledged":
            deps.pipeline.acknowledge(incident.id, by, source="pagerduty", pagerduty_key=key)
            return {"reason": "ACKNOWLEDGED", "event_type": event_type, "incident_id": incident.id}
        if not incident.is_open:
            return {"reason": "ALREADY_RESOLVED", "event_type": event_type, "incident_id": incident.id}
        pagerduty = pd_alerts.pagerduty_channels(deps.config)
        alert = pd_alerts.pagerduty_alert(incident, key or "", pagerduty)
        if alert is pd_alerts.AlertReason.CLOSED:
            return {"reason": "NOT_CURRENT_ALERT", "event_type": event_type, "incident_id": incident.id}
        if alert is pd_alerts.AlertReason.EARLIER:
            now = deps.clock()
            deps.pipeline.incidents.update(incident.id, lambda i: pd_alerts.earlier_alert_resolved(
                i, key or "", by, now, pagerduty))
            return {"reason": "EARLIER_ALERT", "event_type": event_type, "incident_id": incident.id}
        deps.pipeline.resolve(incident.id, by, source="pagerduty", pagerduty_key=key)
        return {"reason": "RESOLVED", "event_type": event_type, "incident_id": incident.id}
    except ConflictError:
        return {"reason": "ALREADY_RESOLVED", "event_type": event_type, "incident_id": incident.id}


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
