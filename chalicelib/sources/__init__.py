"""Source payloads → ``Signal``: one module per source, and ``to_signals`` to pick one.

Layout. ``registry.py`` says what a source is (``Source``: kind, triggers, facts, fixtures,
recogniser, converter); ``catalog.py`` lists every source, in the order ``to_signals`` asks
them. Both are stdlib only, because ``app.py`` declares its EventBridge rules from the catalog
on every cold start and may not load pydantic. So a source's declaration sits in
``catalog.py`` and names its recogniser and converter by dotted path; they live in the
source's own module (``<name>.py``), imported on the first event that needs them.
``dispatch.py`` holds ``to_signals`` itself; this package's ``__init__`` stays lean for the
same reason, and only forwards to it.

Adding a source: its module (converter, and recogniser unless its EventBridge rule's source
and detail-type say enough), its entry in ``catalog.py``, a fixture in ``tests/events/``
with a conversion test, and a rule in ``severity.yaml`` if the default (SEV3) is not right.
``tests/test_source_registry.py`` checks each of those is there.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.models import Signal

__all__ = ["decode", "to_signals"]


def decode(raw: bytes | str) -> Any:
    """JSON-decode ``raw`` (depth-limited, finite numbers only); return the text itself if it is
    not JSON or is refused."""
    from chalicelib.sources import dispatch
    return dispatch.decode(raw)


def to_signals(payload: Any, received: datetime, source_hint: str = "unknown") -> list[Signal]:
    """Convert one delivery (as Lambda or a webhook hands it over) into signals; never raises on
    bad input (see ``dispatch``)."""
    from chalicelib.sources import dispatch
    return dispatch.to_signals(payload, received, source_hint)
