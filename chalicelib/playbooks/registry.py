"""The playbook registry: ``@playbook(id, permissions=…)`` registers one module's ``plan``.

A playbook's docstring says what triggers it, what it does and what it never does; the
registry test checks that every module registers exactly one, with a docstring and
declared IAM permissions, and that the prod policy grants them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel

if TYPE_CHECKING:
    from chalicelib.playbooks.context import PlaybookContext
    from chalicelib.playbooks.steps import Step

PlanFn = Callable[["PlaybookContext"], "list[Step]"]


@dataclass(frozen=True)
class Playbook:
    id: str
    plan: PlanFn
    permissions: tuple[str, ...]
    module: str
    options: type[BaseModel] | None = None  # the shape of this playbook's options in playbooks.yaml

    @property
    def summary(self) -> str:
        doc = (self.plan.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""

    @property
    def doc(self) -> str:
        return (self.plan.__doc__ or "").strip()


REGISTRY: dict[str, Playbook] = {}


def playbook(playbook_id: str, *, permissions: tuple[str, ...],
             options: type[BaseModel] | None = None) -> Callable[[PlanFn], PlanFn]:
    def register(plan: PlanFn) -> PlanFn:
        if playbook_id in REGISTRY:
            raise ValueError(f"playbook {playbook_id!r} is registered twice")
        REGISTRY[playbook_id] = Playbook(playbook_id, plan, tuple(permissions), plan.__module__, options)
        return plan
    return register
