"""GuardDuty findings (``aws.guardduty``, ``GuardDuty Finding``): runbook §4 (PHI exposure), §6.

The rules decide on two facts computed here, because they cannot compare numbers:
``severity_band`` (GuardDuty's own bands: high ≥ 7, medium 4–6.9, low < 4) and
``exposure_class``, true for the finding types that mean someone else may hold our data or
credentials: credential exfiltration, S3 data exfiltration, a compromised instance role. A
high finding of that class is Sev1 and gets a duty "PHI exposure suspected — a human decides"
(``comms.opening_duties``); whether PHI was exposed is never set from here. One incident per
finding id: GuardDuty updates a finding (count, updatedAt) rather than making a new one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib import phi
from chalicelib.models import Signal, Transition
from chalicelib.sources.eventbridge import EventBridgeEnvelope, converter

# Finding-type prefixes (ThreatPurpose:ResourceType/ThreatFamily) that mean possible exposure.
EXPOSURE_TYPES = (
    "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration",  # .OutsideAWS, .InsideAWS
    "CredentialAccess:",
    "Exfiltration:S3/",
    "Exfiltration:IAMUser/",
    "UnauthorizedAccess:EC2/MetadataDNSRebind",
    "UnauthorizedAccess:IAMUser/AnomalousBehavior",
)


def severity_band(score: float) -> str:
    """GuardDuty's documented bands: 7.0–8.9 high (9+ critical, folded in), 4.0–6.9 medium."""
    if score >= 7:
        return "high"
    return "medium" if score >= 4 else "low"


def is_exposure_type(finding_type: str) -> bool:
    return finding_type.startswith(EXPOSURE_TYPES)


def facts_of(detail: dict[str, Any]) -> dict[str, str | bool | float]:
    finding_type = str(detail.get("type") or "UNKNOWN")
    score = detail.get("severity")
    score = float(score) if isinstance(score, int | float) and not isinstance(score, bool) else 0.0
    return {"finding_type": finding_type, "finding_severity": score,
            "severity_band": severity_band(score), "exposure_class": is_exposure_type(finding_type)}


def to_signal(event: EventBridgeEnvelope, delivery_id: str, occurred: datetime) -> Signal:
    detail = event.detail
    facts = facts_of(detail)
    found = detail.get("resource")
    resource: dict[str, Any] = found if isinstance(found, dict) else {}
    finding_id = str(detail.get("id") or delivery_id)
    return Signal(
        kind="guardduty", source="eventbridge", delivery_id=delivery_id,
        incident_key=f"guardduty:{finding_id}", transition=Transition.TRIGGER, occurred_at=occurred,
        title=f"GuardDuty {facts['severity_band']} ({facts['finding_severity']:g}): {facts['finding_type']}",
        resource=_resource_name(resource), account=str(detail.get("accountId") or event.account or "") or None,
        region=str(detail.get("region") or event.region or "") or None,
        facts=tuple(facts.items()),
        details=(("finding_arn", str(detail.get("arn") or "")), ("finding_title", str(detail.get("title") or "")),
                 ("resource_type", str(resource.get("resourceType") or "")),
                 ("count", str((detail.get("service") or {}).get("count") or 1))),
    )


convert = converter(to_signal)


def _resource_name(resource: dict[str, Any]) -> str:
    keys = resource.get("accessKeyDetails") or {}
    buckets = [b.get("name") for b in resource.get("s3BucketDetails") or [] if isinstance(b, dict)]
    instance = (resource.get("instanceDetails") or {}).get("instanceId")
    names = [n for n in (*buckets, keys.get("userName"), instance) if n]
    # people name IAM users and role sessions after their e-mail: the resource is paged and stored
    return phi.mask(", ".join(map(str, names))) or str(resource.get("resourceType") or "")
