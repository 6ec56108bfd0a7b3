"""What a playbook's plan is made of: frozen steps the executor carries out.

``ApiCall`` is the only step that touches AWS; ``mutating`` says whether it changes
anything (those are skipped in a dry run and counted against the per-incident limit).
The rest act on the incident: a ``Note`` for the responder, an ``AddDuty`` with a deadline
(customer notification, post-mortem), ``RaiseSeverity``, and ``Watch`` (verify an action
through the scheduled sweep).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from chalicelib.models import Frozen, Severity


class ApiCall(Frozen):
    type: Literal["api_call"] = "api_call"
    service: str
    operation: str  # the boto3 method name, e.g. "update_service"
    params: dict[str, Any] = Field(default_factory=dict)
    mutating: bool = True
    target: str = ""  # what it acts on ("ecs-service:prod/api"): the rate limit counts per target
    why: str = ""

    @property
    def iam_action(self) -> str:
        return f"{self.service}:{''.join(part.title() for part in self.operation.split('_'))}"


class Note(Frozen):
    type: Literal["note"] = "note"
    text: str


class AddDuty(Frozen):
    type: Literal["duty"] = "duty"
    kind: str  # customer_notification, design_partner_notification, postmortem, breach_notification
    due_at: datetime
    reason: str


class RaiseSeverity(Frozen):
    type: Literal["raise_severity"] = "raise_severity"
    severity: Severity
    reason: str


class Watch(Frozen):
    type: Literal["watch"] = "watch"
    until: datetime
    cluster: str
    service: str
    alarm_names: tuple[str, ...] = ()
    health_url: str | None = None


Step = ApiCall | Note | AddDuty | RaiseSeverity | Watch
