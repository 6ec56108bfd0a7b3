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
    checks = (
        (match.kind, lambda: signal.kind in match.kind),
        (match.namespace, lambda: _any_equal(signal.namespaces, match.namespace)),
        (match.metric, lambda: _any_equal(signal.metrics, match.metric)),
        (match.words, lambda: any_phrase_in(_word_haystack(signal), match.words)),
        (match.event_source, lambda: _any_equal((signal.event_source,), match.event_source)),
        (match.event_name, lambda: _any_equal((signal.event_name,), match.event_name)),
        (match.error_code, lambda: _any_equal((signal.error_code,), match.error_code)),
        (match.caller, lambda: _caller(signal) == match.caller),
        (match.version_targeted is not None, lambda: signal.version_targeted == match.version_targeted),
        (match.versioning_status, lambda: _any_equal((signal.versioning_status,), match.versioning_status)),
        (match.sentry_resource, lambda: _any_equal((signal.sentry_resource,), match.sentry_resource)),
        (match.sentry_action, lambda: _any_equal((signal.sentry_action,), match.sentry_action)),
        (match.sentry_level, lambda: _any_equal((signal.sentry_level,), match.sentry_level)),
        (match.sentry_environment,
         lambda: _any_equal((signal.sentry_environment,), match.sentry_environment)),
        (match.facts, lambda: all(_fact_holds(signal.fact(name), wanted) for name, wanted in match.facts.items())),
    )
    return all(check() for given, check in checks if given)


def _any_equal(have: tuple[str | None, ...], wanted: tuple[str, ...]) -> bool:
    lowered = {w.lower() for w in wanted}
    return any(h is not None and h.lower() in lowered for h in have)


def _fact_holds(have: object, wanted: tuple[bool | int | float | str, ...]) -> bool:
    if have is None:
        return False
    if isinstance(have, str):
        return have.lower() in {str(w).lower() for w in wanted if isinstance(w, str)}
    # bools are not ints here: a rule saying `true` never matches a count of 1
    return any(type(w) is type(have) and w == have for w in wanted)


def _word_haystack(signal: Signal) -> list[str]:
    """Where rule words are looked for: alarm name, namespaces, metric names, dimension values."""
    return [signal.alarm_name or "", *signal.namespaces, *signal.metrics,
            *(value for _, value in signal.dimensions)]


def _caller(signal: Signal) -> str:
    # A call is internal when the caller's account is the account the event happened in.
    if signal.caller_account and signal.account:
        return "internal" if signal.caller_account == signal.account else "external"
    return "external" if signal.caller_account else "internal"
