"""``severity.yaml``: the severity matrix and the ordered classification rules."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from chalicelib.decisions.words import MIN_STEM_LETTERS, phrase_tokens, stem_too_short
from chalicelib.models import Severity, SignalKind


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


class MatrixRow(Strict):
    definition: str
    response: str
    response_minutes: int | None = Field(ge=1)
    owner: str
    page: bool = True


class Match(Strict):
    """Conditions on what a signal *is*. Every given field must hold; any value in a list may."""

    kind: tuple[SignalKind, ...] = ()
    namespace: tuple[str, ...] = ()
    metric: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    event_source: tuple[str, ...] = ()
    event_name: tuple[str, ...] = ()
    error_code: tuple[str, ...] = ()
    caller: Literal["internal", "external"] | None = None
    version_targeted: bool | None = None
    versioning_status: tuple[str, ...] = ()
    sentry_resource: tuple[str, ...] = ()
    sentry_action: tuple[str, ...] = ()
    sentry_level: tuple[str, ...] = ()
    sentry_environment: tuple[str, ...] = ()

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
        if not self.model_dump(exclude_defaults=True):
            raise ValueError("a rule must match on at least one field")
        return self


class Rule(Strict):
    name: str
    match: Match
    severity: Severity
    playbook: str | None = None

    _coerce = field_validator("severity", mode="before")(severity_value)


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
