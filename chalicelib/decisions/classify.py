"""Classification: ``Signal`` → ``Classification`` (severity, owner, response time, playbook).

A pure function of the signal and the severity config. Order of precedence:

1. an explicit ``severity: SEV1``…``SEV4`` line (and optional ``playbook: <id>``) in an
   alarm's description, or alarm tags named ``severity`` / ``playbook``;
2. the first rule in ``severity.yaml`` whose every condition holds;
3. the default (SEV3, no playbook).

An override changes the severity, not what the signal is: the matching rule's playbook
still runs unless the override names another one.

``Classification.rule`` says which of the three decided, for the timeline and for
anyone asking "why did this page me?".
"""

from __future__ import annotations

import re

from chalicelib.config.severity import Match, SeverityConfig
from chalicelib.decisions.words import any_phrase_in
from chalicelib.models import Classification, Severity, Signal

_OVERRIDE_LINE = re.compile(r"^\s*(severity|playbook)\s*[:=]\s*(\S+)\s*$", re.IGNORECASE | re.MULTILINE)
_SEVERITY_VALUE = re.compile(r"^sev\s*-?\s*([1-4])$", re.IGNORECASE)


def classify(signal: Signal, config: SeverityConfig) -> Classification:
    severity, playbook, rule = _override(signal)
    matched = next((r for r in config.rules if matches(r.match, signal)), None)
    if matched is not None:
        playbook = playbook or matched.playbook
    if severity is None:
        if matched is not None:
            severity, rule = matched.severity, f"rule:{matched.name}"
        else:
            severity, rule = config.default_severity, "default"
    row = config.matrix[severity]
    return Classification(
        severity=severity, owner=row.owner, response_minutes=row.response_minutes,
        playbook=playbook, rule=rule,
    )


def _override(signal: Signal) -> tuple[Severity | None, str | None, str]:
    found: dict[str, str] = {}
    for key, value in signal.tags:
        if key.lower() in ("severity", "playbook"):
            found.setdefault(key.lower(), value.strip())
    source = "tag" if found else "description"
    for key, value in _OVERRIDE_LINE.findall(signal.description or ""):
        found.setdefault(key.lower(), value)
    sev_match = _SEVERITY_VALUE.match(found.get("severity", ""))
    severity = Severity(int(sev_match.group(1))) if sev_match else None
    playbook = found.get("playbook") or None
    return severity, playbook, f"override:{source}" if severity else "default"


def matches(match: Match, signal: Signal) -> bool:
    """True when every condition given in ``match`` holds for ``signal``."""
    if match.kind and signal.kind not in match.kind:
        return False
    for name in match.facts:
        wanted = match.wanted(name)
        if not any((v.lower() if isinstance(v, str) else v) in wanted for v in signal.fact_values(name)):
            return False
    return not match.words or any_phrase_in(_word_haystack(signal), match.words)


# Facts rule words are looked for in, besides the dimension values.
WORD_FACTS = ("alarm_name", "namespace", "metric")


def _word_haystack(signal: Signal) -> list[str]:
    """Where rule words are looked for: alarm name, namespaces, metric names, dimension values."""
    return [str(value) for name, value in signal.facts if name in WORD_FACTS] + [
        value for _, value in signal.dimensions]
