"""Values a plan knows only at run time, as ``terraform plan`` shows them: ``<label, read at run time>``.

A playbook plans without touching AWS: a value that needs a read (the last known-good
revision, the current route flag) is a ``RuntimeValue`` carrying its label, the reads it
would make, and the code that makes them (``PlaybookContext.reading`` / ``later``). A step
that happens only for some answers carries ``only_if``.

``simulate`` prints the plan as it is (``render``, ``reads_of``): nothing is read. The
executor turns the same plan into concrete steps with ``resolve`` through the same code,
so what a plan shows and what a run does cannot drift apart. A read that fails while
resolving fails the plan, exactly as a failing read inside a playbook always did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, PrivateAttr, model_serializer


class RuntimeValue(BaseModel):
    # defer_build: built when a plan first holds one, not by every cold start that imports the pipeline
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    label: str                  # what the value is: "last known-good revision"
    reads: tuple[str, ...]      # what it reads: "ecs:DescribeServices cluster=prod services=api"
    _compute: Callable[[], Any] | None = PrivateAttr(default=None)

    def __str__(self) -> str:
        return f"<{self.label}, read at run time>"

    @model_serializer
    def _as_text(self) -> str:
        return str(self)


def runtime_value(label: str, reads: Iterable[str], compute: Callable[[], Any]) -> RuntimeValue:
    """A value ``compute`` finds at run time, computed at most once (a plan is made per run)."""
    found: list[Any] = []

    def once() -> Any:
        if not found:
            found.append(compute())
        return found[0]

    value = RuntimeValue(label=label, reads=tuple(dict.fromkeys(reads)))
    value._compute = once
    return value


def compute(value: Any) -> Any:
    """The concrete value: a ``RuntimeValue`` is computed (it reads), anything else is itself.
    Dicts, lists and tuples are resolved element by element."""
    if isinstance(value, RuntimeValue):
        if value._compute is None:
            raise ValueError(f"{value} has nothing to compute it")
        return value._compute()
    if isinstance(value, dict):
        return {k: compute(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(compute(v) for v in value)
    return value


def resolve(steps: Iterable[BaseModel]) -> list[Any]:
    """The steps a run carries out: conditions decided, every runtime value read (in plan order)."""
    concrete = []
    for step in steps:
        condition = getattr(step, "only_if", None)
        if condition is not None and not compute(condition):
            continue
        update = {name: compute(getattr(step, name)) for name in type(step).model_fields}
        update["only_if"] = None
        concrete.append(step.model_copy(update=update))
    return concrete


def runtime_values(value: Any) -> list[RuntimeValue]:
    if isinstance(value, RuntimeValue):
        return [value]
    if isinstance(value, BaseModel):
        return [v for name in type(value).model_fields for v in runtime_values(getattr(value, name))]
    if isinstance(value, dict):
        return [v for item in value.values() for v in runtime_values(item)]
    if isinstance(value, list | tuple):
        return [v for item in value for v in runtime_values(item)]
    return []


def reads_of(steps: Iterable[BaseModel]) -> list[str]:
    """Every read the plan would make at run time, once each, in plan order."""
    return list(dict.fromkeys(read for step in steps for value in runtime_values(step) for read in value.reads))


def describe_read(service: str, operation: str, params: dict[str, Any] | None = None) -> str:
    """``ecs:DescribeServices cluster=prod-cluster services=api`` (the IAM action and its key parameters)."""
    action = "".join(part.title() for part in operation.split("_"))
    shown = " ".join(f"{k}={_brief(v)}" for k, v in (params or {}).items()
                     if (isinstance(v, str | int) and not isinstance(v, bool))
                     or (isinstance(v, list) and bool(v) and all(isinstance(item, str) for item in v)))
    return f"{service}:{action}" + (f" {shown}" if shown else "")


def _brief(value: Any) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, list) else str(value)


def shown(step: Any, dry_run: bool) -> dict[str, Any]:
    """One step as ``simulate`` prints it: its record, its plan line, and its condition if it has one."""
    out: dict[str, Any] = step.model_dump(mode="json") | {"dry_run": dry_run, "plan": step.describe()}
    if step.only_if is not None:
        out["only_if"] = str(step.only_if)
    return out
