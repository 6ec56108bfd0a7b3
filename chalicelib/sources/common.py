"""Small helpers every source converter shares: time parsing, safe ids, the lenient wire base."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

_OFFSET_WITHOUT_COLON = re.compile(r"([+-]\d{2})(\d{2})$")


class Wire(BaseModel):
    """Base of wire models: unknown keys are ignored, because AWS and Sentry add fields."""

    # defer_build: built on first use, so a cold start builds only the shapes its event arrives in.
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True, defer_build=True)


def parse_time(value: Any, default: datetime) -> datetime:
    """Parse the timestamp spellings our sources use; fall back to ``default``.

    CloudWatch writes ``2025-03-14T09:42:31.774+0000`` (no colon), EventBridge ``…Z``,
    Sentry ISO strings or epoch floats.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(float(value), tz=UTC)
        except (OverflowError, OSError, ValueError):  # 1e20, inf, nan: not a time
            return default
    if not isinstance(value, str) or not value:
        return default
    text = value.strip().replace("Z", "+00:00")
    text = _OFFSET_WITHOUT_COLON.sub(r"\1:\2", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return default
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def digest(data: bytes | str) -> str:
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()[:32]


def arn_region(arn: str | None) -> str | None:
    parts = (arn or "").split(":")
    return parts[3] or None if len(parts) > 4 and parts[0] == "arn" else None


def arn_account(arn: str | None) -> str | None:
    parts = (arn or "").split(":")
    return parts[4] or None if len(parts) > 5 and parts[0] == "arn" else None


FactValues = str | int | float | bool | list[str] | tuple[str, ...] | None


def facts(**values: FactValues) -> tuple[tuple[str, str | int | float | bool], ...]:
    """A signal's facts from keyword arguments: None is left out, a list gives one pair per item."""
    pairs: list[tuple[str, str | int | float | bool]] = []
    for name, value in values.items():
        if isinstance(value, list | tuple):
            pairs.extend((name, item) for item in value)
        elif value is not None:
            pairs.append((name, value))
    return tuple(pairs)
