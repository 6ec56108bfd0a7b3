"""JSON parsing for input we did not write: depth-limited, finite numbers only.

``json.loads`` recurses once per nesting level, so a body nested 100,000 deep escapes as
``RecursionError`` (not ``ValueError``) from whatever called it, and it accepts ``NaN`` and
``Infinity``, which later overflow a timestamp. Every parser of inbound bytes uses ``loads``
here instead: too deep or non-finite input raises ``JsonRejected`` (a ``ValueError``, so
callers that already turn bad JSON into an ``unknown`` signal or a 400 keep doing so).

Depth is checked before parsing, on the bracket characters outside string literals, so the
check itself never recurses and costs one regex pass over the text.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

MAX_DEPTH = 64  # real payloads nest about 12 deep (Sentry event_alert with breadcrumbs)

# "unrolled" string literal: one regex step per run of plain characters, not per character, so a
# 6 MB webhook body is scanned in a fifth of a second. Possessive, and the closing quote optional:
# an unterminated string ends the text instead of being retried from every later quote
# (`"\"\"…`, 200 KB of it, took minutes).
_STRING = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"?', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class JsonRejected(ValueError):
    """Input that is JSON-shaped but refused: nested too deep, or a non-finite number."""


def depth(text: str) -> int:
    """The deepest nesting of objects and arrays in ``text`` (0 for a scalar)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(0, max(accumulate(map(_STEP.__getitem__, brackets)), default=0))


def _refuse_constant(name: str) -> Any:
    raise JsonRejected(f"non-finite number {name} is not accepted")


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` for untrusted input; raises ``JsonRejected`` or ``json.JSONDecodeError``."""
    if isinstance(text, bytes | bytearray):
        text = text.decode("utf-8")
    # Nesting is at most the number of opening brackets: counting them is ~50 times cheaper than
    # ``depth``, which runs only when they could nest too deep.
    if text.count("{") + text.count("[") > max_depth and depth(text) > max_depth:
        raise JsonRejected(f"JSON nested deeper than {max_depth} levels")
    return json.loads(text, parse_constant=_refuse_constant)
