"""Whole-word matching for classification rules.

Names are split on ``- _ / .``, spaces and camelCase boundaries (``AIGateway`` →
``ai gateway``, ``LoginFailures`` → ``login failures``), lower-cased, and compared
token by token. A rule word never matches inside another word: ``auth`` does not
match ``author``, ``dea`` does not match ``idea``.

Two refinements, both whole-token:

- a rule word ending in ``*`` is a stem: ``authenticat*`` matches ``authentication``,
  ``authenticator`` and ``AuthenticatedUsers``; a stem needs at least four letters, and is
  chosen so it cannot reach an unrelated word (``authoriz*``, never ``author*``);
- a one-word rule (``oauth``, ``aigateway``) also matches two tokens that camelCase split
  apart (``OAuth`` → ``o auth``, ``AIGateway`` → ``ai gateway``), but never two words a
  separator keeps apart: ``audit-log-in-s3`` is not ``login``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from functools import lru_cache

_TOKEN = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
STEM = "*"
MIN_STEM_LETTERS = 4


def tokens(text: str) -> tuple[str, ...]:
    return tuple(t.lower() for t in _TOKEN.findall(text))


@lru_cache(maxsize=4096)  # rule words are config: tokenised once, not at every signal a rule is tried on
def phrase_tokens(phrase: str) -> tuple[str, ...]:
    """A rule word's tokens; a trailing ``*`` stays on the last token (a stem)."""
    found = tokens(phrase)
    if found and phrase.rstrip().endswith(STEM):
        return (*found[:-1], found[-1] + STEM)
    return found


def stem_too_short(phrase: str) -> bool:
    found = phrase_tokens(phrase)
    return bool(found) and found[-1].endswith(STEM) and len(found[-1]) - 1 < MIN_STEM_LETTERS


def _token_matches(have: str, wanted: str) -> bool:
    return have.startswith(wanted[:-1]) if wanted.endswith(STEM) else have == wanted


def contains_phrase(haystack: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    if n and not phrase[-1].endswith(STEM):  # whole tokens only: tuple equality (a new incident's classification
        if n == 1:                           # tries every rule's words; token by token cost ~1 ms per signal)
            return phrase[0] in haystack
        return any(haystack[i:i + n] == phrase for i, h in enumerate(haystack) if h == phrase[0])
    return n > 0 and any(all(_token_matches(h, w) for h, w in zip(haystack[i : i + n], phrase, strict=True))
                         for i in range(len(haystack) - n + 1))


def _case_joined(text: str) -> set[str]:
    """Pairs of tokens that only a case change split apart (``OAuth`` → ``oauth``)."""
    spans = [(m.start(), m.end(), m.group().lower()) for m in _TOKEN.finditer(text)]
    return {a[2] + b[2] for a, b in itertools.pairwise(spans) if a[1] == b[0]}


def any_phrase_in(texts: Iterable[str], phrases: Iterable[str]) -> bool:
    # A new incident's classification tries every rule's words on every text: one-word rules are
    # one set intersection per text; stems and several-word phrases are matched token by token.
    words, stems, longer = _wanted(tuple(phrases))
    for text in texts:
        hay, seen = _text_tokens(text)
        if (not words.isdisjoint(seen) or (stems and any(h.startswith(stems) for h in hay))
                or any(contains_phrase(hay, w) for w in longer)):
            return True
    return False


@lru_cache(maxsize=1024)
def _wanted(phrases: tuple[str, ...]) -> tuple[frozenset[str], tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """One-word rules (matched whole, or as two tokens a case change split), one-word stems (as
    prefixes: ``auth*`` → ``auth``), and longer phrases."""
    wanted = [phrase_tokens(p) for p in phrases]
    return (frozenset(w[0] for w in wanted if len(w) == 1 and not w[0].endswith(STEM)),
            tuple(w[0][:-1] for w in wanted if len(w) == 1 and w[0].endswith(STEM)),
            tuple(w for w in wanted if len(w) > 1))


@lru_cache(maxsize=4096)
def _text_tokens(text: str) -> tuple[tuple[str, ...], frozenset[str]]:
    """``text``'s tokens, and the set of them with the case-split pairs joined."""
    hay = tokens(text)
    return hay, frozenset(hay) | _case_joined(text)
