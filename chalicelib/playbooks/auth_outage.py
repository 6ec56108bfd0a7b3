"""auth-outage: runbook §5.4 (see ``plan``)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from chalicelib.config.severity import Strict
from chalicelib.models import DutyKind
from chalicelib.playbooks.context import PlaybookContext
from chalicelib.playbooks.registry import playbook
from chalicelib.playbooks.steps import AddDuty, ApiCall, Note, Step


class Options(Strict):
    flag_parameter: str = "/platform/prod/flags/admin_auth_fallback"
    enabled_value: str = "enabled"
    customer_notice_minutes: int = Field(60, ge=1)  # per the customer SLA


@playbook("auth-outage", permissions=("ssm:GetParameter", "ssm:PutParameter"), options=Options)
def plan(ctx: PlaybookContext) -> list[Step]:
    """Enable the admin_auth fallback path while Cognito / WorkOS fail, and start the customer clock.

    Trigger: auth surfaces failing (alarms naming auth, login, sso, cognito, workos).
    Does: reads the admin_auth fallback flag (SSM) and enables it if it is off, so hospital
    admins can sign in while cached sessions stay valid for their token TTL; marks the
    customer notification (per SLA) as due.
    Never: changes user pools, WorkOS settings, sessions or tokens.
    """
    options: Options = ctx.opts(Options)
    current = ctx.reading("the admin_auth fallback flag", "ssm", "get_parameter", {"Name": options.flag_parameter},
                          then=lambda answer: answer["Parameter"]["Value"])
    return [
        Note(text=ctx.later("the flag's value", lambda flag: f"admin_auth fallback is already {flag!r}", current),
             only_if=ctx.later("the fallback is already enabled", lambda flag: flag == options.enabled_value,
                               current)),
        ApiCall(service="ssm", operation="put_parameter",
                params={"Name": options.flag_parameter, "Value": options.enabled_value,
                        "Type": "String", "Overwrite": True},
                target=f"ssm:{options.flag_parameter}", why="enable the admin_auth fallback path",
                only_if=ctx.later("the fallback is not enabled yet", lambda flag: flag != options.enabled_value,
                                  current)),
        AddDuty(kind=DutyKind.CUSTOMER_NOTIFICATION,
                due_at=ctx.now + timedelta(minutes=options.customer_notice_minutes),
                reason="customers are told of the auth outage per their SLA"),
    ]
