"""What a source is: its kind, its triggers, the facts it gives the rules, its fixtures, and
where its recogniser and converter live.

Stdlib only: ``app.py`` declares its EventBridge rules from these declarations on every cold
start, and ``models`` checks kinds and fact names against them, so nothing here may load
pydantic or boto3. Recognisers and converters are therefore named by dotted path
(``"chalicelib.sources.rds_event:convert"``) and imported on the first event that needs them.
The declarations are ``NamedTuple``s, not dataclasses: immutable and built by keyword all the
same, without the ``inspect``/``ast`` imports ``dataclasses`` would add to every cold start.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from chalicelib.models import Signal

FactType = type[str] | type[int] | type[float] | type[bool]
FactValue = str | int | float | bool

# Kinds no payload source produces: what no converter recognised, the responder's own canary,
# a page a human asked for (POST /incidents, sources/manual.py) and a job's missed heartbeat
# (chalicelib/heartbeats.py).
UNKNOWN_KIND = "unknown"
CANARY_KIND = "canary"
MANUAL_KIND = "manual"
HEARTBEAT_KIND = "heartbeat"
BUILTIN_KINDS = (UNKNOWN_KIND, CANARY_KIND, MANUAL_KIND, HEARTBEAT_KIND)


class Fact(NamedTuple):
    """A value a source's signals carry for the rules to match on (``facts:`` in severity.yaml).

    A fact may be given several times on one signal (an alarm's namespaces); a rule's condition
    on it holds when any given value is any listed value."""

    name: str  # snake_case; two sources may declare one name, with the same type
    type: FactType
    doc: str
    values: tuple[str, ...] = ()  # a text fact's only possible values (a rule naming another is refused)


class EventBridgeRule(NamedTuple):
    name: str     # the Lambda/handler name in app.py, e.g. "on_aws_health"
    pattern: dict[str, Any]  # the EventBridge event pattern, exactly as deployed

    def recognises(self, payload: Any) -> bool:
        """True for an EventBridge event of this rule's ``source`` and ``detail-type``.

        Only those two: the ``detail`` filter narrows what is delivered, not what the converter
        understands (a RUNNING task event sent by hand still converts)."""
        if not (isinstance(payload, dict) and "detail-type" in payload and "detail" in payload):
            return False
        sources = self.pattern.get("source")
        detail_types = self.pattern.get("detail-type")
        return ((sources is None or payload.get("source") in sources)
                and (detail_types is None or payload.get("detail-type") in detail_types))


Recogniser = Callable[[Any], bool]
Converter = Callable[[Any, datetime], "list[Signal]"]


class Source(NamedTuple):
    name: str                         # "aws_health"
    kind: str                         # the Signal.kind value it produces, e.g. "aws_health"
    doc: str                          # one line: what it is and the runbook section it serves
    # rules, or "route:/webhooks/sentry", "sns", "schedule:<handler name in app.py>"
    triggers: tuple[EventBridgeRule | str, ...]
    facts: tuple[Fact, ...]
    fixtures: tuple[str, ...]         # file names under tests/events/
    # "module:function" (imported on first use) or the callable itself. A recogniser left None
    # recognises the EventBridge events of the source's own rules (source and detail-type).
    convert: Converter | str
    recognises: Recogniser | str | None = None
    # Its incidents may be customer-facing: a Sev1/Sev2 owes customers a notice (comms.py).
    customer_facing: bool = False

    @property
    def rules(self) -> tuple[EventBridgeRule, ...]:
        return tuple(t for t in self.triggers if isinstance(t, EventBridgeRule))

    def recognise(self, payload: Any) -> bool:
        if self.recognises is None:
            return any(rule.recognises(payload) for rule in self.rules)
        return bool(_resolved(self.recognises)(payload))

    def converted(self, payload: Any, received: datetime) -> list[Signal]:
        signals: list[Signal] = _resolved(self.convert)(payload, received)
        return signals


def _resolved(target: Callable[..., Any] | str) -> Callable[..., Any]:
    return _import(target) if isinstance(target, str) else target


@cache
def _import(dotted: str) -> Callable[..., Any]:
    import importlib

    module, _, name = dotted.partition(":")
    function: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return function


# --- lookups over the catalog (chalicelib/sources/catalog.py) ---------------------------


def sources() -> tuple[Source, ...]:
    from chalicelib.sources.catalog import SOURCES
    return SOURCES


def eventbridge_rules() -> tuple[EventBridgeRule, ...]:
    """Every source's rules, each once, in catalog order (app.py declares one Lambda per rule)."""
    seen: dict[str, EventBridgeRule] = {}
    for source in sources():
        for rule in source.rules:
            seen.setdefault(rule.name, rule)
    return tuple(seen.values())


@cache
def kinds() -> frozenset[str]:
    """Every kind a ``Signal`` may have."""
    return frozenset(s.kind for s in sources()) | frozenset(BUILTIN_KINDS)


@cache
def customer_facing_kinds() -> frozenset[str]:
    return frozenset(s.kind for s in sources() if s.customer_facing)


@cache
def facts() -> dict[str, Fact]:
    """Every declared fact by name. Two declarations of one name must agree on its type."""
    found: dict[str, Fact] = {}
    for source in sources():
        for fact in source.facts:
            known = found.setdefault(fact.name, fact)
            if known.type is not fact.type:
                raise TypeError(f"fact {fact.name!r} is declared as {known.type.__name__} and as "
                                f"{fact.type.__name__} (source {source.name!r})")
    return found


@cache
def facts_of_kind(kind: str) -> dict[str, FactType]:
    """The facts a signal of ``kind`` may carry: those its sources declare."""
    return {f.name: f.type for s in sources() if s.kind == kind for f in s.facts}


def value_has_type(value: Any, fact_type: FactType) -> bool:
    """``value`` is of ``fact_type`` (a bool is not an int here, an int is a float)."""
    if fact_type is bool or isinstance(value, bool):
        return fact_type is bool and isinstance(value, bool)
    if fact_type is float:
        return isinstance(value, int | float)
    return isinstance(value, fact_type)
