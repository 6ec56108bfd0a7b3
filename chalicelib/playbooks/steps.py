"""What a playbook's plan is made of: frozen steps the executor carries out.

``ApiCall`` is the only step that touches AWS; ``mutating`` says whether it changes
anything (those are skipped in a dry run and counted against the per-incident limit).
The rest act on the incident: a ``Note`` for the responder, an ``AddDuty`` with a deadline
(customer notification, post-mortem), ``RaiseSeverity``, and ``Watch`` (verify an action
through the scheduled sweep).

A value known only after an AWS read is a ``RuntimeValue`` (runtime.py); ``only_if`` makes a
step depend on one. Both are resolved by the executor before anything runs; ``only_if`` is
left out of the step's record (``exclude``), so a resolved step records as it always did.
Each step type has a runner in the executor (``@runs``); ``describe`` is its line in a plan.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import Field

from chalicelib.models import DutyKind, Frozen, Severity
from chalicelib.playbooks.runtime import RuntimeValue

Text = str | RuntimeValue


class _Step(Frozen):
    only_if: RuntimeValue | None = Field(None, exclude=True)  # carried out only if this reads true

    def describe(self) -> str:
        raise NotImplementedError

    def _when(self) -> str:
        return f" only if {self.only_if.label} (read at run time)" if self.only_if is not None else ""


class ApiCall(_Step):
    type: Literal["api_call"] = "api_call"
    service: str
    operation: str  # the boto3 method name, e.g. "update_service"
    params: dict[str, Any] = Field(default_factory=dict)
    mutating: bool = True
    target: str = ""  # what it acts on ("ecs-service:prod/api"): the rate limit counts per target
    why: Text = ""

    @property
    def iam_action(self) -> str:
        return f"{self.service}:{''.join(part.title() for part in self.operation.split('_'))}"

    def describe(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items() if k != "MessageBody")
        return f"{self.iam_action}({args})" + self._when()


class Note(_Step):
    type: Literal["note"] = "note"
    text: Text

    def describe(self) -> str:
        return f"note: {self.text}" + self._when()


class AddDuty(_Step):
    type: Literal["duty"] = "duty"
    kind: DutyKind
    due_at: datetime
    reason: str

    def describe(self) -> str:
        return f"duty {self.kind} due {self.due_at.isoformat()}: {self.reason}" + self._when()


class RaiseSeverity(_Step):
    type: Literal["raise_severity"] = "raise_severity"
    severity: Severity
    reason: str

    def describe(self) -> str:
        return f"raise to SEV{self.severity.value}: {self.reason}" + self._when()


class Watch(_Step):
    type: Literal["watch"] = "watch"
    until: datetime
    cluster: str
    service: str
    alarm_names: tuple[str, ...] = ()
    health_url: str | None = None

    def describe(self) -> str:
        return f"watch {self.cluster}/{self.service} until {self.until.isoformat()}" + self._when()


Step = ApiCall | Note | AddDuty | RaiseSeverity | Watch
STEP_TYPES: tuple[type[_Step], ...] = get_args(Step)  # the types the executor must have runners for
