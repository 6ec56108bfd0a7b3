"""Whole-word matching for classification rules.

Names are split on ``- _ / .``, spaces and camelCase boundaries (``AIGateway`` →
``ai gateway``, ``LoginFailures`` → ``login failures``), lower-cased, and compared
token by token. A rule word never matches inside another word: ``auth`` does not
match ``author``, ``dea`` does not match ``idea``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_TOKEN = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def tokens(text: str) -> tuple[str, ...]:
    return tuple(t.lower() for t in _TOKEN.findall(text))


def phrase_tokens(phrase: str) -> tuple[str, ...]:
    return tokens(phrase)


def contains_phrase(haystack: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    return n > 0 and any(haystack[i : i + n] == phrase for i in range(len(haystack) - n + 1))


def any_phrase_in(texts: Iterable[str], phrases: Iterable[str]) -> bool:
    wanted = [phrase_tokens(p) for p in phrases]
    for text in texts:
        hay = tokens(text)
        # "aigateway" as one rule word must also match "AIGateway" split in two
        joined = tuple("".join(hay[i : i + 2]) for i in range(len(hay) - 1))
        if any(contains_phrase(hay, w) or (len(w) == 1 and w[0] in joined) for w in wanted):
            return True
    return False
