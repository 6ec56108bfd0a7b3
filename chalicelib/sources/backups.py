"""Backups (runbook §7): failed backup jobs, and changes that weaken recovery.

- ``Backup Job State Change`` (``aws.backup``) in FAILED, ABORTED or EXPIRED: Sev2, one
  incident per protected resource, so a nightly job failing again joins the open one.
- CloudTrail calls that weaken recovery are converted by ``cloudtrail.py`` (they arrive as
  ``AWS API Call via CloudTrail``); ``weakening`` below gives the fact the rules read:
  ``ModifyDBInstance`` setting ``backupRetentionPeriod`` to 0 (no PITR) or below the
  runbook's 30 days, ``DeleteDBSnapshot``/``DeleteDBClusterSnapshot``, and lifecycle or
  versioning changes on the source-receipt bucket. Inside the account they are Sev1, like
  the Object Lock rules (``severity.yaml``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.models import Signal, Transition
from chalicelib.sources.eventbridge import EventBridgeEnvelope, converter

RUNBOOK_RETENTION_DAYS = 30
_FAILED = {"FAILED", "ABORTED", "EXPIRED"}
_SNAPSHOT_DELETES = {"DeleteDBSnapshot", "DeleteDBClusterSnapshot"}
_LIFECYCLE = {"PutBucketLifecycleConfiguration", "PutBucketLifecycle", "DeleteBucketLifecycle"}


def weakening(event_name: str, params: dict[str, Any]) -> str:
    """What a CloudTrail call does to recovery: ``pitr_disabled``, ``retention_lowered``,
    ``snapshot_deleted``, ``bucket_lifecycle_changed``, or ``""`` (nothing we watch)."""
    if event_name in ("ModifyDBInstance", "ModifyDBCluster"):
        retention = params.get("backupRetentionPeriod")
        if isinstance(retention, int) and not isinstance(retention, bool):
            if retention == 0:
                return "pitr_disabled"
            if retention < RUNBOOK_RETENTION_DAYS:
                return "retention_lowered"
        return ""
    if event_name in _SNAPSHOT_DELETES:
        return "snapshot_deleted"
    if event_name in _LIFECYCLE:
        return "bucket_lifecycle_changed"
    return ""


def to_signal(event: EventBridgeEnvelope, delivery_id: str, occurred: datetime) -> Signal:
    detail = event.detail
    state = str(detail.get("state") or "UNKNOWN")
    resource = str(detail.get("resourceArn") or "unknown-resource")
    vault = str(detail.get("backupVaultName") or "")
    return Signal(
        kind="backup", source="eventbridge", delivery_id=delivery_id,
        incident_key=f"backup:{resource}", occurred_at=occurred,
        transition=Transition.TRIGGER if state in _FAILED else
        Transition.RESOLVE if state == "COMPLETED" else Transition.NONE,
        title=f"backup of {resource.rsplit(':', 1)[-1]} {state}" + (f" (vault {vault})" if vault else ""),
        resource=resource, account=event.account, region=event.region,
        facts=(("backup_state", state), ("backup_resource_type", str(detail.get("resourceType") or ""))),
        details=(("backup_job_id", str(detail.get("backupJobId") or "")),
                 ("status_message", str(detail.get("statusMessage") or "")[:300])),
    )


convert = converter(to_signal)
