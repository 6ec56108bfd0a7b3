"""CloudTrail API calls delivered by EventBridge (``AWS API Call via CloudTrail``).

The incident key is caller + bucket: one principal hammering one bucket is one
incident, however many objects it touches. Object keys may name patients, so they
are kept out of the signal's title, resource and links; only a digest reaches the
timeline. Deleting a *version* is logged as ``DeleteObject`` with
``requestParameters.versionId`` (there is no ``DeleteObjectVersion`` event).
``DeleteObjects`` (multi-delete) logs neither the keys nor their version ids, and the
console uses it even to delete one version, so it is marked ``version_targeted``: a
possible version delete, never "a delete marker only".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from chalicelib.models import Signal, SignalKind, Transition
from chalicelib.sources.backups import weakening
from chalicelib.sources.common import Wire, digest, facts, parse_time

MULTI_DELETE = "DeleteObjects"


class SessionIssuer(Wire):
    arn: str | None = None


class SessionContext(Wire):
    session_issuer: SessionIssuer | None = Field(None, alias="sessionIssuer")


class UserIdentity(Wire):
    type: str | None = None
    arn: str | None = None
    account_id: str | None = Field(None, alias="accountId")
    invoked_by: str | None = Field(None, alias="invokedBy")
    session_context: SessionContext | None = Field(None, alias="sessionContext")

    def principal(self) -> str:
        return self.arn or self.invoked_by or self.type or "unknown-principal"


class CloudTrailRecord(Wire):
    event_source: str = Field(alias="eventSource")
    event_name: str = Field(alias="eventName")
    event_id: str | None = Field(None, alias="eventID")
    event_time: str | None = Field(None, alias="eventTime")
    aws_region: str | None = Field(None, alias="awsRegion")
    error_code: str | None = Field(None, alias="errorCode")
    source_ip: str | None = Field(None, alias="sourceIPAddress")
    user_agent: str | None = Field(None, alias="userAgent")
    recipient_account: str | None = Field(None, alias="recipientAccountId")
    user_identity: UserIdentity = Field(default_factory=UserIdentity, alias="userIdentity")
    request_parameters: dict[str, Any] | None = Field(None, alias="requestParameters")


def caller(caller_account: str | None, account: str | None) -> str:
    """``internal`` when the caller's account is the account the event happened in."""
    if caller_account and account:
        return "internal" if caller_account == account else "external"
    return "external" if caller_account else "internal"


def convert(payload: dict[str, Any], received: datetime) -> list[Signal]:
    from chalicelib.sources.eventbridge import EventBridgeEnvelope

    event = EventBridgeEnvelope.model_validate(payload)
    return [from_eventbridge(event.detail, delivery_id=event.delivery_id, account=event.account,
                             region=event.region, received=parse_time(event.time, received))]


def from_eventbridge(
    detail: dict[str, Any], *, delivery_id: str, account: str | None, region: str | None,
    received: datetime,
) -> Signal:
    record = CloudTrailRecord.model_validate(detail)
    params = record.request_parameters or {}
    bucket = str(params.get("bucketName") or "")
    versioning = params.get("VersioningConfiguration")
    versioning_status = versioning.get("Status") if isinstance(versioning, dict) else None
    principal = record.user_identity.principal()
    event_account = record.recipient_account or account
    # RDS calls name their instance or snapshot (runbook §7); S3 calls their bucket
    db_target = str(params.get("dBInstanceIdentifier") or params.get("dBClusterIdentifier")
                    or params.get("dBSnapshotIdentifier") or params.get("dBClusterSnapshotIdentifier") or "")
    target = bucket or db_target or record.event_source
    details = [
        ("principal", principal),
        ("caller_account", record.user_identity.account_id or "unknown"),
        ("source_ip", record.source_ip or "unknown"),
        ("user_agent", (record.user_agent or "unknown")[:200]),
        ("action", record.event_name),
        ("outcome", f"denied ({record.error_code})" if record.error_code else "allowed"),
    ]
    if bucket:
        details.append(("bucket", bucket))
    if params.get("key"):
        details.append(("object_key_sha256", digest(str(params["key"]))))
    if params.get("versionId"):
        details.append(("version_id", str(params["versionId"])))
    if "backupRetentionPeriod" in params:
        details.append(("backup_retention_period", str(params["backupRetentionPeriod"])))
    unlogged_versions = record.event_name == MULTI_DELETE
    if unlogged_versions:
        details.append(("version_ids", "not logged by CloudTrail for DeleteObjects: a possible version delete"))
    return Signal(
        kind=SignalKind.CLOUDTRAIL,
        source="eventbridge",
        delivery_id=delivery_id,
        incident_key=f"cloudtrail:{principal}:{target}",
        transition=Transition.TRIGGER,
        occurred_at=parse_time(record.event_time, received),
        title=f"{record.event_name} on {target}" + (" denied" if record.error_code else ""),
        resource=f"arn:aws:s3:::{bucket}" if bucket else db_target or record.event_source,
        account=event_account,
        region=record.aws_region or region,
        facts=facts(
            event_source=record.event_source, event_name=record.event_name, error_code=record.error_code,
            caller_account=record.user_identity.account_id,
            caller=caller(record.user_identity.account_id, event_account),
            version_targeted=bool(params.get("versionId")) or unlogged_versions,
            versioning_status=versioning_status if isinstance(versioning_status, str) else None,
            bucket=bucket or None, recovery_weakening=weakening(record.event_name, params) or None,
        ),
        details=tuple(details),
    )
