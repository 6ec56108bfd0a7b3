"""The responder's configuration files, validated once at load.

``severity.yaml`` (``config.severity``) holds the severity matrix and the ordered
classification rules; ``routing.yaml`` (``config.routing``) the channels, people, on-call
schedules and escalation chains; ``playbooks.yaml`` (``config.playbooks``) the playbooks'
safety envelope and options; ``services.yaml`` (``config.services``, optional) the service
map. A bad file raises ``ConfigError`` naming the file, the key (``rules[3].severity``) and
the reason, so a typo fails the deploy's tests rather than a page at 3 a.m. Checks that need
both files (owners exist as roles, every chain completes inside its severity's response time)
run in ``load``. A key written twice in
one mapping is an error too (YAML would keep the second silently). What is allowed but
worth a look (one person holding two roles of one escalation chain) is logged and
returned in ``ResponderConfig.warnings``.

The deployment zip also carries the shipped files pre-validated (``COMPILED``, written by
``scripts/precompile_zip.py`` through ``compile_to``): ``load`` uses it while the YAML beside it
is byte for byte what was validated, so a cold start skips YAML parsing, validation and building
the config classes' validators. Edited YAML (a digest mismatch) is validated as always.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from chalicelib.config.playbooks import PlaybooksConfig
from chalicelib.config.routing import RoutingConfig
from chalicelib.config.services import ServicesConfig
from chalicelib.config.severity import Match, MatrixRow, Rule, SeverityConfig, Strict
from chalicelib.errors import ConfigError

__all__ = ["DEFAULT_DIR", "Match", "MatrixRow", "ResponderConfig", "RoutingConfig", "Rule", "SeverityConfig",
           "load"]

DEFAULT_DIR = Path(__file__).parent
COMPILED = "compiled-config.pickle"
FILES = ("severity.yaml", "routing.yaml", "playbooks.yaml", "services.yaml")
log = logging.getLogger("responder")
_M = TypeVar("_M", bound=BaseModel)


class ResponderConfig(Strict):
    severity: SeverityConfig
    routing: RoutingConfig
    playbooks: PlaybooksConfig = Field(default_factory=PlaybooksConfig)
    services: ServicesConfig = Field(default_factory=ServicesConfig)  # services.yaml (optional)
    # allowed but worth a look (one person holding two roles of a chain); logged at load
    warnings: tuple[str, ...] = ()


def load(config_dir: Path | str | None = None) -> ResponderConfig:
    """Load and cross-check both files from ``config_dir`` (default: the shipped ones)."""
    folder = Path(config_dir) if config_dir else DEFAULT_DIR
    compiled = _load_compiled(folder)
    if compiled is not None:
        for text in compiled.warnings:
            log.warning("config warning: %s", text)
        return compiled
    return _load_yaml(folder)


def compile_to(folder: Path, target: Path) -> None:
    """Validate ``folder``'s files and write the result with their digest (scripts/precompile_zip.py)."""
    target.write_bytes(pickle.dumps((sources_digest(folder), _load_yaml(folder)), protocol=pickle.HIGHEST_PROTOCOL))


def sources_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for name in FILES:
        path = folder / name
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.exists() else b"") + b"\0")
    return digest.hexdigest()


def _load_compiled(folder: Path) -> ResponderConfig | None:
    path = folder / COMPILED
    if not path.exists():
        return None
    # Our own build artifact, shipped beside this code and written by the same code: as trusted as the code.
    digest, config = pickle.loads(path.read_bytes())  # noqa: S301
    if digest != sources_digest(folder) or not isinstance(config, ResponderConfig):
        return None  # the YAML changed since it was compiled: validate what is there now
    return config


def _load_yaml(folder: Path) -> ResponderConfig:
    severity = _load_file(folder / "severity.yaml", SeverityConfig)
    routing = _load_file(folder / "routing.yaml", RoutingConfig)
    playbooks = _load_file(folder / "playbooks.yaml", PlaybooksConfig)
    # optional: without it no signal carries a service, so nothing is grouped or inhibited
    services = _load_file(folder / "services.yaml", ServicesConfig) if (folder / "services.yaml").exists() \
        else ServicesConfig()
    for sev, row in severity.matrix.items():
        if row.owner not in routing.roles:
            raise ConfigError(str(folder / "severity.yaml"), f"matrix.SEV{sev.value}.owner",
                              f"role {row.owner!r} is not in routing.yaml roles")
    for sev, chain in routing.escalation.items():
        limit = severity.matrix[sev].response_minutes
        last = chain.steps[-1].after_minutes if chain.steps else 0
        if limit is not None and chain.steps and last >= limit:
            raise ConfigError(str(folder / "routing.yaml"), f"escalation.SEV{sev.value}",
                              f"the last step pages at +{last} min, which cannot complete inside the "
                              f"{limit}-minute response time")
    from chalicelib.playbooks import REGISTRY

    for index, rule in enumerate(severity.rules):
        if rule.playbook and rule.playbook not in REGISTRY:
            raise ConfigError(str(folder / "severity.yaml"), f"rules[{index}].playbook",
                              f"no playbook {rule.playbook!r} (known: {', '.join(sorted(REGISTRY))})")
    rule_names = {rule.name for rule in severity.rules}
    for index, inhibit in enumerate(services.inhibit_rules):
        for side, name in inhibit.rule_names():
            if name not in rule_names:
                raise ConfigError(str(folder / "services.yaml"), f"inhibit_rules[{index}].{side}.rule",
                                  f"inhibit rule {inhibit.name!r}: no rule {name!r} in severity.yaml")
    from chalicelib.decisions.oncall import same_person_warnings
    from chalicelib.decisions.silences import unmapped_service_warning

    warnings = tuple(f"{folder / 'routing.yaml'}: {text}" for text in same_person_warnings(routing)) + tuple(
        f"{folder / 'routing.yaml'}: maintenance_windows.{name}.{text}" for name, window in
        routing.maintenance_windows.items() if (text := unmapped_service_warning(window.matchers, services)))
    for text in warnings:
        log.warning("config warning: %s", text)
    return ResponderConfig(severity=severity, routing=routing, playbooks=playbooks, services=services,
                           warnings=warnings)


def _load_file(path: Path, model: type[_M]) -> _M:
    import yaml  # deferred: only the first event of a cold start pays for it

    try:
        # libyaml's parser when the wheel has it (several times faster at cold start), same safe constructor
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(path.read_text(encoding="utf-8"))
        try:
            node = loader.get_single_node()
            if node is not None:
                _refuse_duplicate_keys(path, node)
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
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


def _refuse_duplicate_keys(path: Path, root: Any) -> None:
    """A key given twice in one mapping is an error: YAML would let the second silently win.

    ``<<`` merge keys are not counted (a key written next to a merge overrides the merged one,
    which is what merges are for); a node reached twice through an alias is checked once.
    """
    import yaml

    seen: set[int] = set()
    stack: list[tuple[Any, str]] = [(root, "")]
    while stack:
        node, where = stack.pop(0)  # breadth first: the outermost duplicate is named first
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first_line: dict[str, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    stack.append((value_node, where))
                    continue
                key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
                line = key_node.start_mark.line + 1
                if key in first_line and isinstance(key_node, yaml.ScalarNode):
                    raise ConfigError(str(path), f"{where}.{key}" if where else key,
                                      f"duplicated key (line {first_line[key]} and line {line}): "
                                      "YAML would silently keep only the second")
                first_line.setdefault(key, line)
                stack.append((value_node, f"{where}.{key}" if where else key))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, f"{where}[{index}]") for index, item in enumerate(node.value))


def _key_path(loc: tuple[int | str, ...]) -> str:
    out, previous = "", None
    for part in loc:
        if previous in ("matrix", "escalation"):
            part = f"SEV{part}"  # these keys are severities, not list positions
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
        previous = part
    return out or "(root)"
