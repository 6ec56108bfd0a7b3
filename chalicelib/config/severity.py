"""``severity.yaml``: the severity matrix and the ordered classification rules."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from chalicelib.decisions.words import MIN_STEM_LETTERS, phrase_tokens, stem_too_short
from chalicelib.models import Severity
from chalicelib.sources import registry


class Strict(BaseModel):
    # defer_build: a deployed function loads its config pre-validated (config.COMPILED) and never
    # validates one, so it need not pay for building these classes' validators at cold start.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def severity_value(value: Any) -> Any:
    if isinstance(value, str) and value.upper().startswith("SEV") and value[3:].isdigit():
        return int(value[3:])
    return value


def severity_keys(value: Any) -> Any:
    """``{SEV1: …}`` → ``{1: …}``; two spellings of one severity (``SEV1``, ``sev1``, ``1``) are refused."""
    if not isinstance(value, dict):
        return value
    out: dict[Any, Any] = {}
    for key, item in value.items():
        severity = severity_value(key)
        if severity in out:
            raise ValueError(f"severity {key!r} is given twice (as {_spelling(value, severity)!r} too)")
        out[severity] = item
    return out


def _spelling(value: dict[Any, Any], severity: Any) -> Any:
    return next(k for k in value if severity_value(k) == severity)


def fact_value_lists(facts: Any) -> Any:
    """``{name: value}`` → ``{name: (value,)}``: one value may stand for a list of one."""
    if not isinstance(facts, dict):
        return facts
    return {name: tuple(v) if isinstance(v, list | tuple) else (v,) for name, v in facts.items()}


class MatrixRow(Strict):
    definition: str
    response: str
    response_minutes: int | None = Field(ge=1)
    owner: str
    page: bool = True


class Match(Strict):
    """Conditions on what a signal *is*. Every given condition must hold; any value in a list may.

    ``facts`` names facts the sources declare (chalicelib/sources/catalog.py): ``{event_name:
    [DeleteObject, DeleteObjects], version_targeted: true}``. Text compares without case."""

    kind: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    facts: dict[str, tuple[registry.FactValue, ...]] = Field(default_factory=dict)
    # facts' text values lower-cased once, for ``classify``
    _wanted: dict[str, frozenset[registry.FactValue]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _facts_not_at_top(cls, data: Any) -> Any:
        if isinstance(data, dict):
            stray = [k for k in data if k not in cls.model_fields and k in registry.facts()]
            if stray:
                raise ValueError(f"{stray[0]!r} is a fact: write it under facts:")
        return data

    @field_validator("kind")
    @classmethod
    def _known_kinds(cls, kinds: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [k for k in kinds if k not in registry.kinds()]
        if unknown:
            raise ValueError(f"kind {unknown[0]!r} is produced by no registered source")
        return kinds

    _one_value_is_a_list = field_validator("facts", mode="before")(fact_value_lists)

    @field_validator("words")
    @classmethod
    def _words_tokenise(cls, words: tuple[str, ...]) -> tuple[str, ...]:
        for word in words:
            if not phrase_tokens(word):
                raise ValueError(f"word {word!r} has no letters or digits")
            if stem_too_short(word):
                raise ValueError(f"stem {word!r} needs at least {MIN_STEM_LETTERS} letters before the *")
        return words

    @model_validator(mode="after")
    def _not_empty(self) -> Match:
        if not (self.kind or self.words or self.facts):
            raise ValueError("a rule must match on at least one field")
        self._wanted = {name: frozenset(v.lower() if isinstance(v, str) else v for v in values)
                        for name, values in self.facts.items()}
        return self

    def undeclared(self) -> str | None:
        """Why a fact condition can never hold (a fact no source declares, a value of the wrong
        type, no value at all), or None."""
        return undeclared_facts(self.facts)

    def wanted(self, name: str) -> frozenset[registry.FactValue]:
        return self._wanted[name]


def undeclared_facts(facts: dict[str, tuple[registry.FactValue, ...]]) -> str | None:
    """Why a condition on ``facts`` can never hold (a fact no source declares, a value of the wrong
    type, no value at all), or None. Rules and inhibit rules (services.yaml) are checked alike."""
    declared = registry.facts()
    for name, values in facts.items():
        fact = declared.get(name)
        if fact is None:
            return f"fact {name!r} is declared by no source"
        if not values:
            return f"fact {name!r} lists no value"
        wrong = next((v for v in values if not registry.value_has_type(v, fact.type)), None)
        if wrong is not None:
            return f"fact {name!r} takes {fact.type.__name__} values, not {wrong!r}"
        impossible = next((v for v in values if fact.values and v not in fact.values), None)
        if impossible is not None:
            return f"fact {name!r} is one of {', '.join(fact.values)}, never {impossible!r}"
    return None


class Rule(Strict):
    name: str
    match: Match
    severity: Severity
    playbook: str | None = None

    _coerce = field_validator("severity", mode="before")(severity_value)

    @model_validator(mode="after")
    def _declared_facts(self) -> Rule:
        # Refused at load: a rule on a fact no source gives would silently never match.
        problem = self.match.undeclared()
        if problem:
            raise ValueError(f"rule {self.name!r}: {problem}")
        return self


class SeverityConfig(Strict):
    matrix: dict[Severity, MatrixRow]
    default_severity: Severity
    rules: tuple[Rule, ...]

    _coerce = field_validator("default_severity", mode="before")(severity_value)

    _matrix_keys = field_validator("matrix", mode="before")(severity_keys)

    @model_validator(mode="after")
    def _complete(self) -> SeverityConfig:
        missing = [f"SEV{s.value}" for s in Severity if s not in self.matrix]
        if missing:
            raise ValueError(f"matrix lacks {', '.join(missing)}")
        names = [r.name for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"rule names repeat: {', '.join(dupes)}")
        return self
