"""What a playbook sees while it plans: the incident, its signal, options, and read access.

A plan reads nothing while it is made: ``reading`` and ``later`` describe values found at run
time (runtime.py), and their code reads through ``read`` when the executor resolves them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from chalicelib.aws import Aws
from chalicelib.models import Incident, Signal
from chalicelib.notify.channels import Transport
from chalicelib.playbooks.runtime import RuntimeValue, compute, describe_read, runtime_value


@dataclass
class PlaybookContext:
    incident: Incident
    signal: Signal | None
    options: BaseModel | None
    aws: Aws
    http: Transport | None
    now: datetime
    reads: list[str] = field(default_factory=list)

    def read(self, service: str, operation: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """A read-only AWS call made while resolving a plan (recorded for the audit trail)."""
        self.reads.append(f"{service}.{operation}")
        return self.aws.call(service, operation, params)

    def reading(self, label: str, service: str, operation: str, params: dict[str, Any],
                then: Callable[[dict[str, Any]], Any] = lambda answer: answer) -> RuntimeValue:
        """``then(answer)`` of one AWS read, known at run time."""
        return runtime_value(label, [describe_read(service, operation, params)],
                             lambda: then(self.read(service, operation, params)))

    def later(self, label: str, fn: Callable[..., Any], *inputs: Any, reads: tuple[str, ...] = ()) -> Any:
        """``fn(*inputs)`` once the runtime values among ``inputs`` are read (plus any ``reads`` of its own)."""
        needed = [r for value in inputs if isinstance(value, RuntimeValue) for r in value.reads]
        if not needed and not reads:
            return fn(*inputs)  # everything is known now (an option instead of a read)
        return runtime_value(label, [*needed, *reads], lambda: fn(*(compute(value) for value in inputs)))

    def opts(self, model: type[Any]) -> Any:
        return self.options if isinstance(self.options, model) else model()

    def detail(self, name: str) -> str | None:
        return dict(self.signal.details).get(name) if self.signal else None
