"""CodeBuild build state changes (``aws.codebuild``): runbook §1 (deploy) and §2 (rollback).

A FAILED or TIMED_OUT build of the deploy project is Sev3: production still runs the last
good revision. A failing *rollback* build is Sev2: production is already unhealthy and the
way back is broken. Which builds are rollbacks: the build's ``DEPLOY_MODE`` environment
variable says ``rollback`` (our deploy pipeline sets it; the runbook's rollback is a deploy
of the last known-good revision through the same project), or, failing that, a source
version or initiator naming a rollback. One incident per project and mode, so the next
failing build joins it and a SUCCEEDED build of the same mode resolves it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.models import Signal, Transition
from chalicelib.sources.eventbridge import EventBridgeEnvelope, converter

MODE_VARIABLE = "DEPLOY_MODE"
_FAILED = {"FAILED", "TIMED_OUT", "FAULT"}


def is_rollback(info: dict[str, Any]) -> bool:
    env = (info.get("environment") or {}).get("environment-variables") or []
    for var in env:
        if isinstance(var, dict) and var.get("name") == MODE_VARIABLE:
            return str(var.get("value") or "").lower() == "rollback"
    hints = f"{info.get('source-version') or ''} {info.get('initiator') or ''}".lower()
    return "rollback" in hints


def to_signal(event: EventBridgeEnvelope, delivery_id: str, occurred: datetime) -> Signal:
    detail = event.detail
    found = detail.get("additional-information")
    info: dict[str, Any] = found if isinstance(found, dict) else {}
    status = str(detail.get("build-status") or "UNKNOWN")
    project = str(detail.get("project-name") or "unknown-project")
    rollback = is_rollback(info)
    mode = "rollback" if rollback else "deploy"
    failed_phase = next((p for p in info.get("phases") or []
                         if isinstance(p, dict) and p.get("phase-status") == "FAILED"), {})
    logs = (info.get("logs") or {}).get("deep-link")
    return Signal(
        kind="codebuild", source="eventbridge", delivery_id=delivery_id,
        incident_key=f"codebuild:{project}:{mode}", occurred_at=occurred,
        transition=Transition.TRIGGER if status in _FAILED else
        Transition.RESOLVE if status == "SUCCEEDED" else Transition.NONE,
        title=f"{mode} build of {project} {status}"
              + (f" in {failed_phase.get('phase-type')}" if failed_phase else ""),
        resource=str(detail.get("build-id") or project), account=event.account, region=event.region,
        links=(str(logs),) if isinstance(logs, str) and logs.startswith("https://") else (),
        facts=(("project_name", project), ("build_status", status), ("rollback_build", rollback)),
        details=(("initiator", str(info.get("initiator") or "")),
                 ("failed_phase_context", str(failed_phase.get("phase-context") or "")[:300])),
    )


convert = converter(to_signal)
