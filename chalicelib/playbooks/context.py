"""What a playbook sees while it plans: the incident, its signal, options, and read access."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from chalicelib.aws import Aws
from chalicelib.models import Incident, Signal
from chalicelib.notify.channels import Transport


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
        """A read-only AWS call made while planning (recorded for the audit trail)."""
        self.reads.append(f"{service}.{operation}")
        return self.aws.call(service, operation, params)

    def opts(self, model: type[Any]) -> Any:
        return self.options if isinstance(self.options, model) else model()

    def detail(self, name: str) -> str | None:
        return dict(self.signal.details).get(name) if self.signal else None
