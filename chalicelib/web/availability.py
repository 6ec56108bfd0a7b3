"""When the store (or the settings it needs) cannot be reached, the API says so.

A store error inside the custom authorizer used to escape it: `chalice local` dropped the
connection (curl `HTTP 000`) and API Gateway answered a bare 500. Here the authorizer marks
the caller "store unavailable" instead, and every view answers 503 with the usual error
body ``{"message", "error": "unavailable"}``, so the caller knows to retry, and nothing is
written. Messages name the store and the error class only (``errors.py``'s rule).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.errors import ConfigError, StoreError, TransientError

log = logging.getLogger("responder")

# What "the store cannot be reached" looks like from here: a store or AWS error, or settings
# that do not let us build one. A lost race (ConflictError) that escaped a view is also worth a retry.
UNAVAILABLE = (StoreError, TransientError, ConfigError)


def identify(token: str | None) -> dict[str, str]:
    """The authorizer: who holds ``token``; if the store cannot say, a caller marked unavailable."""
    from chalicelib import handlers
    try:
        return handlers.identify(token)
    except UNAVAILABLE as exc:
        log.warning("authorizer: store unavailable", extra={"error": type(exc).__name__})
        return {"user": "anonymous", "role": "none", "token_id": "", "unavailable": _reason(exc)}


def api_view(view_name: str, authorizer_context: Mapping[str, Any], *args: object) -> Any:
    """Run the API view ``view_name`` for the caller the authorizer identified; 503 if the store is out."""
    from chalicelib import handlers
    from chalicelib.web import api
    if authorizer_context.get("unavailable"):
        return unavailable(str(authorizer_context["unavailable"]))
    return guarded(lambda: getattr(api, view_name)(handlers.get_deps(),
                                                   handlers.principal_from(authorizer_context), *args))


def guarded(run: Callable[[], Any]) -> Any:
    """``run()``'s answer, or a 503 if it could not reach the store."""
    try:
        return run()
    except UNAVAILABLE as exc:
        log.warning("store unavailable", extra={"error": type(exc).__name__})
        return unavailable(_reason(exc))


def unavailable(reason: str) -> Any:
    from chalicelib.web.api import ApiResponse

    response: ApiResponse = ApiResponse(503, {"message": f"the incident store cannot be reached ({reason});"
                                                         " try again shortly", "error": "unavailable"})
    response.headers["Retry-After"] = "30"
    return response


def _reason(exc: Exception) -> str:
    """The error's own one-line message (ids and reasons, never values); its class if it has none."""
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
