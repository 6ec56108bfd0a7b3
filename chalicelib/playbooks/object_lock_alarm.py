"""object-lock-alarm: runbook §5.5 (see ``plan``)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from chalicelib.config.severity import Strict
from chalicelib.errors import PlaybookError
from chalicelib.playbooks.context import PlaybookContext
from chalicelib.playbooks.registry import playbook
from chalicelib.playbooks.steps import Note, Step


class Options(Strict):
    lookback_minutes: int = Field(60, ge=1, le=1440)


@playbook("object-lock-alarm", permissions=("cloudtrail:LookupEvents",), options=Options)
def plan(ctx: PlaybookContext) -> list[Step]:
    """Answer "who attempted what" for an S3 Object Lock tampering attempt; change nothing.

    Trigger: CloudTrail PutObjectRetention, PutObjectLegalHold, PutObjectLockConfiguration,
    DeleteObject of a version, PutBucketVersioning Suspended, allowed or denied.
    Does: writes the principal, its account (inside ours or not), source IP, user agent,
    action, bucket, object (as a digest) and outcome on the timeline, and the same
    principal's other CloudTrail calls in the last hour (LookupEvents), so the founder paged
    for a Sev1 starts from the facts.
    Never: remediates (Object Lock in COMPLIANCE mode blocks the change), disables the
    principal, or copies object keys (they may name patients) anywhere.
    """
    options: Options = ctx.opts(Options)
    fields = ("principal", "caller_account", "source_ip", "user_agent", "action", "bucket",
              "object_key_sha256", "version_id", "outcome")
    facts = {f: ctx.detail(f) for f in fields if ctx.detail(f)}
    inside = facts.get("caller_account") == (ctx.signal.account if ctx.signal else None)
    steps: list[Step] = [
        Note(text="who attempted what: " + "; ".join(f"{k}={v}" for k, v in facts.items())),
        Note(text="caller is inside our account: Sev1 (runbook §5.5)" if inside
             else "caller is outside our account: Sev2; check the bucket policy's cross-account grants"),
        Note(text="no remediation: Object Lock (COMPLIANCE, 7 years) blocks the change"),
    ]
    principal = facts.get("principal", "")
    username = principal.rsplit("/", 1)[-1] if principal else ""
    if username:
        steps.append(Note(text=ctx.later(f"{username}'s other CloudTrail calls", lambda: _other_calls(
            ctx, username, options.lookback_minutes), reads=(
                f"cloudtrail:LookupEvents Username={username} (last {options.lookback_minutes} min)",))))
    return steps


def _other_calls(ctx: PlaybookContext, username: str, lookback_minutes: int) -> str:
    try:
        found = ctx.read("cloudtrail", "lookup_events", {
            "LookupAttributes": [{"AttributeKey": "Username", "AttributeValue": username}],
            "StartTime": ctx.now - timedelta(minutes=lookback_minutes), "EndTime": ctx.now,
            "MaxResults": 50}).get("Events", [])
    except PlaybookError as exc:  # the facts above already answer the question; this only adds context
        return f"could not read {username}'s other CloudTrail calls: {exc}"
    names: dict[str, int] = {}
    for event in found:
        names[str(event.get("EventName"))] = names.get(str(event.get("EventName")), 0) + 1
    summary = ", ".join(f"{name} ×{count}" for name, count in sorted(names.items())) or "none"
    return f"{username}'s CloudTrail calls in the last {lookback_minutes} min: {summary}"
