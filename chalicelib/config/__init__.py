"""The responder's configuration files, validated once at load.

``severity.yaml`` holds the severity matrix and the ordered classification rules;
``routing.yaml`` says which people and channels stand behind each owner role. A bad
file raises ``ConfigError`` naming the file, the key (``rules[3].severity``) and the
reason, so a typo fails the deploy's tests rather than a page at 3 a.m.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chalicelib.errors import ConfigError
from chalicelib.models import Severity, SignalKind
from chalicelib.words import phrase_tokens

DEFAULT_DIR = Path(__file__).parent
_M = TypeVar("_M", bound=BaseModel)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _severity(value: Any) -> Any:
    if isinstance(value, str) and value.upper().startswith("SEV") and value[3:].isdigit():
        return int(value[3:])
    return value


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

    _coerce = field_validator("severity", mode="before")(_severity)


class SeverityConfig(Strict):
    matrix: dict[Severity, MatrixRow]
    default_severity: Severity
    rules: tuple[Rule, ...]

    _coerce = field_validator("default_severity", mode="before")(_severity)

    @field_validator("matrix", mode="before")
    @classmethod
    def _matrix_keys(cls, value: Any) -> Any:
        return {_severity(k): v for k, v in value.items()} if isinstance(value, dict) else value

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


class ChannelConfig(Strict):
    type: Literal["console", "pagerduty", "sns", "slack"]
    routing_key_env: str | None = None
    endpoint: str = "https://events.pagerduty.com/v2/enqueue"
    topic_arn_env: str | None = None
    webhook_url_env: str | None = None

    @model_validator(mode="after")
    def _has_secret_ref(self) -> ChannelConfig:
        needed = {"pagerduty": "routing_key_env", "sns": "topic_arn_env", "slack": "webhook_url_env"}
        field = needed.get(self.type)
        if field and not getattr(self, field):
            raise ValueError(f"a {self.type} channel needs {field}")
        if not self.endpoint.startswith("https://"):
            raise ValueError("endpoint must be https")
        return self


class Person(Strict):
    channels: tuple[str, ...] = Field(min_length=1)


class RoutingConfig(Strict):
    channels: dict[str, ChannelConfig]
    people: dict[str, Person]
    roles: dict[str, tuple[str, ...]]

    @model_validator(mode="after")
    def _references(self) -> RoutingConfig:
        for name, person in self.people.items():
            for channel in person.channels:
                if channel not in self.channels:
                    raise ValueError(f"people.{name} uses unknown channel {channel!r}")
        for role, people in self.roles.items():
            for person_name in people:
                if person_name not in self.people:
                    raise ValueError(f"roles.{role} names unknown person {person_name!r}")
        return self


class ResponderConfig(Strict):
    severity: SeverityConfig
    routing: RoutingConfig


def load(config_dir: Path | str | None = None) -> ResponderConfig:
    """Load and cross-check both files from ``config_dir`` (default: the shipped ones)."""
    folder = Path(config_dir) if config_dir else DEFAULT_DIR
    severity = _load_file(folder / "severity.yaml", SeverityConfig)
    routing = _load_file(folder / "routing.yaml", RoutingConfig)
    for sev, row in severity.matrix.items():
        if row.owner not in routing.roles:
            raise ConfigError(str(folder / "severity.yaml"), f"matrix.SEV{sev.value}.owner",
                              f"role {row.owner!r} is not in routing.yaml roles")
    return ResponderConfig(severity=severity, routing=routing)


@cache
def load_cached(config_dir: str | None = None) -> ResponderConfig:
    return load(config_dir)


def _load_file(path: Path, model: type[_M]) -> _M:
    import yaml  # deferred: only the first event of a cold start pays for it

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), "(file)", exc.strerror or "cannot be read") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(yaml)"
        raise ConfigError(str(path), where, f"not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(str(path), _key_path(err["loc"]), err["msg"]) from exc


def _key_path(loc: tuple[int | str, ...]) -> str:
    out, previous = "", None
    for part in loc:
        if previous == "matrix":
            part = f"SEV{part}"  # matrix keys are severities, not list positions
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
        previous = part
    return out or "(root)"
