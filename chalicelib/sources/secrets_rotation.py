"""Secrets Manager rotation (runbook §6: vendor API keys rotate every 90 days).

Two inputs, one kind:

- ``RotationFailed``, a CloudTrail service event EventBridge delivers as ``AWS Service Event
  via CloudTrail`` (``aws.secretsmanager``): Sev2, one incident per secret.
- The daily check (``overdue_signals``): every secret whose last rotation (or creation, when
  it never rotated) is more than ``max_age_days`` old becomes one Sev3 signal keyed by the
  secret's ARN, so tomorrow's run joins the incident still open instead of opening another.

Names of secrets may be paged; values are never read (``ListSecrets`` returns none).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from chalicelib.models import Signal, Transition
from chalicelib.sources.common import parse_time
from chalicelib.sources.eventbridge import EventBridgeEnvelope, converter

if TYPE_CHECKING:
    from chalicelib.aws import Aws

MAX_AGE_DAYS = 90


def secret_arn(detail: dict[str, Any]) -> str:
    """Where the failing secret is named: AWS docs disagree, so every place it has been seen."""
    for holder in ("additionalEventData", "serviceEventDetails", "requestParameters"):
        value = detail.get(holder)
        if isinstance(value, dict):
            for key in ("SecretId", "secretId", "secretArn", "arn"):
                if value.get(key):
                    return str(value[key])
    for resource in detail.get("resources") or []:
        if isinstance(resource, dict) and resource.get("ARN"):
            return str(resource["ARN"])
    return "unknown-secret"


def secret_name(arn: str) -> str:
    """``…:secret:prod/vendors/key-Ab12Cd`` → ``prod/vendors/key`` (the 6-character suffix is AWS's)."""
    name = arn.split(":secret:", 1)[-1]
    head, _, suffix = name.rpartition("-")
    return head if head and len(suffix) == 6 else name


def to_signal(event: EventBridgeEnvelope, delivery_id: str, occurred: datetime) -> Signal:
    detail = event.detail
    arn = secret_arn(detail)
    name = str(detail.get("eventName") or "RotationFailed")
    return Signal(
        kind="secrets_rotation", source="eventbridge", delivery_id=delivery_id,
        incident_key=f"secret:{arn}", transition=Transition.TRIGGER,
        occurred_at=parse_time(detail.get("eventTime"), occurred),
        title=f"secret {secret_name(arn)}: {name}", resource=arn, account=event.account, region=event.region,
        facts=(("rotation_problem", "failed"), ("secret_name", secret_name(arn))),
        details=(("secret_arn", arn),),
    )


convert = converter(to_signal)


def rotation_age_days(secret: dict[str, Any], now: datetime) -> float | None:
    """Days since the secret last rotated, or was created if it never rotated; None if neither is known."""
    last = secret.get("LastRotatedDate") or secret.get("CreatedDate")
    if isinstance(last, str):
        last = parse_time(last, now)
    if not isinstance(last, datetime):
        return None
    return (now - last) / timedelta(days=1)


def overdue_signals(secrets: list[dict[str, Any]], now: datetime,
                    max_age_days: int = MAX_AGE_DAYS) -> Iterator[Signal]:
    """One Sev3 signal per secret older than ``max_age_days`` (pure: the caller lists the secrets)."""
    day = now.strftime("%Y-%m-%d")
    for secret in secrets:
        age = rotation_age_days(secret, now)
        if age is None or age <= max_age_days:
            continue
        arn = str(secret.get("ARN") or secret.get("Name"))
        name = str(secret.get("Name") or secret_name(arn))
        never = not secret.get("LastRotatedDate")
        yield Signal(
            kind="secrets_rotation", source="schedule", delivery_id=f"secret-age:{arn}:{day}",
            incident_key=f"secret:{arn}", transition=Transition.TRIGGER, occurred_at=now,
            title=f"secret {name} {'never rotated, created' if never else 'last rotated'} {int(age)} days ago"
                  f" (limit {max_age_days})",
            resource=arn,
            facts=(("rotation_problem", "overdue"), ("secret_name", name)),
            details=(("secret_arn", arn), ("age_days", str(int(age))),
                     ("rotation_enabled", str(bool(secret.get("RotationEnabled"))).lower())),
        )


MAX_PAGES = 50  # 5,000 secrets: far beyond ours, and a bound on one Lambda run


def list_secrets(aws: Aws) -> list[dict[str, Any]]:
    """Every secret's metadata (names and dates; ``ListSecrets`` never returns values), through
    ``Aws.call`` so AWS errors arrive as ``PlaybookError`` without parameters."""
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"MaxResults": 100}
    for _ in range(MAX_PAGES):
        page = aws.call("secretsmanager", "list_secrets", params)
        found.extend(s for s in page.get("SecretList") or [] if isinstance(s, dict))
        if not page.get("NextToken"):
            break
        params = {"MaxResults": 100, "NextToken": page["NextToken"]}
    return found
