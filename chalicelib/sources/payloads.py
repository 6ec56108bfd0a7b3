"""Untrusted structures walked without recursion: canonical JSON, a depth check, and the
bounded, PHI-free copy of a raw payload that a delivery record keeps.

Lambda hands the converters Python structures, not text, so an EventBridge ``detail``
nested 100,000 deep never meets ``safejson``'s limit; ``json.dumps`` (like any recursive
walk) then dies of ``RecursionError``. Everything here walks with an explicit stack.

``kept`` is what the pipeline stores for unrecognised input: PHI-bearing keys dropped
(``phi.is_phi_key``, also inside JSON held in a string, like an SNS ``Message``),
identifiers in free text masked, subtrees past ``MAX_DEPTH`` cut, and the result clipped
to ``KEEP_BYTES`` once JSON-encoded, with the original's size and sha256, so a record
always fits a DynamoDB item (400 KB) and the original can still be recognised.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from chalicelib import phi
from chalicelib.sources import safejson

MAX_DEPTH = safejson.MAX_DEPTH
KEEP_BYTES = 128 * 1024  # of the stored (JSON-encoded) text: a third of a DynamoDB item
TOO_DEEP = "[nested too deep]"
_JSON_IN_STRING_LEVELS = 3  # an SNS Message is JSON in a string; JSON in that is scrubbed too


def deeper_than(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether dicts and lists in ``value`` nest more than ``limit`` levels (stops there)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list | tuple) else None
        if children is None:
            continue
        if level > limit:
            return True
        stack.extend((child, level + 1) for child in children)
    return False


def encode(value: Any, *, scrub: bool = False, max_depth: int | None = None) -> str:
    """``json.dumps(value, sort_keys=True, default=str)`` without recursion.

    With ``scrub``, PHI-bearing keys (and Sentry tag pairs naming one) are left out and
    strings masked; with ``max_depth``, deeper containers become ``TOO_DEEP``."""
    return "".join(_chunks(value, scrub, max_depth, 0))


def _chunks(value: Any, scrub: bool, max_depth: int | None, string_level: int) -> Iterator[str]:
    Frame = tuple[Iterator[Any], bool, int, int]  # children, is a dict, depth, id
    stack: list[Frame] = []
    first: list[bool] = []
    open_ids: set[int] = set()

    def start(item: Any, level: int) -> str | None:
        """The text of a scalar, or None after pushing a container's frame."""
        if not isinstance(item, dict | list | tuple):
            return _scalar(item, scrub, max_depth, string_level)
        if (max_depth is not None and level > max_depth) or id(item) in open_ids:
            return json.dumps(TOO_DEEP)
        if isinstance(item, dict):
            pairs = sorted(((_key(k), v) for k, v in item.items() if not (scrub and phi.is_phi_key(k))),
                           key=lambda pair: pair[0])
            stack.append((iter(pairs), True, level, id(item)))
        else:
            stack.append((iter([v for v in item if not (scrub and _phi_pair(v))]), False, level, id(item)))
        open_ids.add(id(item))
        first.append(True)
        return None

    text = start(value, 1)
    if text is not None:
        yield text
        return
    yield "{" if stack[-1][1] else "["
    while stack:
        children, is_dict, level, ident = stack[-1]
        child: Any = next(children, _END)
        if child is _END:
            stack.pop()
            first.pop()
            open_ids.discard(ident)
            yield "}" if is_dict else "]"
            continue
        if not first[-1]:
            yield ", "
        first[-1] = False
        if is_dict:
            yield json.dumps(child[0]) + ": "
            child = child[1]
        text = start(child, level + 1)
        yield text if text is not None else ("{" if stack[-1][1] else "[")


_END = object()


def _key(key: Any) -> str:
    # json.dumps's own spelling of non-string keys
    return key if isinstance(key, str) else json.dumps(key) if isinstance(key, bool | int | float) or key is None \
        else str(key)


def _phi_pair(item: Any) -> bool:
    """A Sentry tag naming personal data: ``["user.email", "…"]`` or ``{"key": "ip", "value": …}``."""
    if isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[0], str):
        return phi.is_phi_key(item[0])
    return isinstance(item, dict) and isinstance(item.get("key"), str) and "value" in item and \
        phi.is_phi_key(item["key"])


def _scalar(item: Any, scrub: bool, max_depth: int | None, string_level: int) -> str:
    if not scrub:
        return json.dumps(item, default=str)
    if isinstance(item, str):
        return json.dumps(_scrub_text(item, string_level))
    return json.dumps(item if isinstance(item, int | float | bool) or item is None else phi.mask(str(item)))


def _scrub_text(text: str, string_level: int = 0) -> str:
    """Free text masked; JSON inside it (an SNS ``Message``) scrubbed like the rest."""
    if string_level < _JSON_IN_STRING_LEVELS and text.lstrip()[:1] in ("{", "["):
        try:
            inner = safejson.loads(text)
        except safejson.JsonRejected as exc:
            return f"[not kept: {exc}]"  # cannot be parsed safely, so cannot be scrubbed
        except ValueError:
            pass
        else:
            return "".join(_chunks(inner, True, MAX_DEPTH, string_level + 1))
    return phi.mask(text)


@dataclass(frozen=True)
class ParsedBody:
    """A body already parsed: scrubbed by key as a structure, sized and digested as sent."""

    value: Any
    original: bytes


def kept(raw: Any, limit: int = KEEP_BYTES) -> dict[str, Any]:
    """What a delivery record keeps of ``raw`` (bytes, text, a structure from Lambda, a ``ParsedBody``)."""
    if isinstance(raw, ParsedBody):
        original = raw.original
        clean = encode(raw.value, scrub=True, max_depth=MAX_DEPTH)
    elif isinstance(raw, bytes | bytearray | str):
        original = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
        clean = _scrub_text(original.decode("utf-8", "replace"))
    else:
        original = encode(raw).encode("utf-8", "surrogatepass")
        clean = encode(raw, scrub=True, max_depth=MAX_DEPTH)
    clipped = clip(clean, limit)
    return {"raw": clipped, "raw_bytes": len(original), "raw_sha256": hashlib.sha256(original).hexdigest(),
            "raw_truncated": len(clipped) < len(clean)}


def clip(text: str, limit: int) -> str:
    """The longest prefix of ``text`` whose JSON encoding is at most ``limit`` bytes."""
    if _encoded_size(text) <= limit:
        return text
    low, high = 0, min(len(text), limit)
    while low < high:  # the longest prefix that fits, by bisection
        middle = (low + high + 1) // 2
        if _encoded_size(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return text[:low]


def _encoded_size(text: str) -> int:
    return len(json.dumps(text))  # ensure_ascii: characters are bytes
