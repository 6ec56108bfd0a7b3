"""The API's edge: one error shape, whoever answers, and the API's own address.

Three parties can answer an HTTP request with an error, and each has its own body shape:
API Gateway itself (no token, unknown route, throttling: ``{"message": "Unauthorized"}``),
Chalice's request handler (wrong content type, wrong method: ``{"Code", "Message"}``) and our
views. The README promises ``{"message", "error", "field"?}`` for every one:

- API Gateway's answers are declared as gateway responses in ``.chalice/merge-template.json``;
  ``chalice local`` and the test client render the same declarations
  (``install_local_gateway_responses``), so what a laptop shows is what AWS sends.
- Chalice's own answers are reshaped on the way out (``reshape_chalice_error``).

The API function cannot be told its URL by the template (the API refers to the function, so
the function referring to the API is a circular dependency CloudFormation refuses); it learns
it from the request instead (``public_url``), unless ``RESPONDER_PUBLIC_URL`` names a custom
domain. Standard library only (not even pathlib): ``app.py`` imports this on every cold start.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger("responder")

MESSAGE_VARIABLE = "$context.error.messageString"
_HOST = re.compile(r"^[A-Za-z0-9.-]+(:\d{1,5})?$")


def public_url(context: Mapping[str, Any], headers: Mapping[str, str]) -> str | None:
    """The base URL this request reached the API by: API Gateway's domain (plus the stage on
    an execute-api domain, which carries it in the path), else the Host header (``chalice
    local``: plain http). None when neither is a plain host name."""
    domain = str(context.get("domainName") or "")
    if domain and _HOST.match(domain):
        stage = str(context.get("stage") or "")
        if ".execute-api." in domain and re.fullmatch(r"[A-Za-z0-9_-]+", stage):
            return f"https://{domain}/{stage}"
        return f"https://{domain}"
    host = str(headers.get("host") or "")
    return f"http://{host}" if host and _HOST.match(host) else None


def reshape_chalice_error(status: int, body: Any, accepted_types: list[str] | None = None) -> dict[str, Any] | None:
    """Our body for one of Chalice's own ``{"Code", "Message"}`` errors, or None for any other body.

    Chalice's messages can quote the request (the content type sent); ours never do."""
    if not (isinstance(body, dict) and set(body) == {"Code", "Message"}):
        return None
    if status == 415:
        accepted = " or ".join(accepted_types or ["application/json"])
        return {"message": f"Content-Type: this route accepts {accepted}", "error": "unsupported_media_type",
                "field": "Content-Type"}
    if status == 405:
        return {"message": "method: not allowed on this route", "error": "method_not_allowed", "field": "method"}
    if status >= 500:
        return {"message": "an internal error occurred; it has been logged", "error": "internal"}
    kind = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict",
            413: "too_large", 429: "throttled"}.get(status, "bad_request")
    return {"message": kind.replace("_", " "), "error": kind}


# --- chalice local / the test client: API Gateway's answers as the template declares them ----


def gateway_responses(template_path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The merge template's gateway responses: type -> {status, template, headers}; a status of
    None keeps API Gateway's own (the DEFAULT_* types cover several)."""
    with open(template_path, encoding="utf-8") as file:
        template = json.load(file)
    declared = template["Resources"]["RestAPI"]["Properties"]["GatewayResponses"]
    return {kind: {"status": int(spec["StatusCode"]) if "StatusCode" in spec else None,
                   "template": spec["ResponseTemplates"]["application/json"],
                   "headers": {name: value.strip("'") for name, value in
                               spec.get("ResponseParameters", {}).get("Headers", {}).items()}}
            for kind, spec in declared.items()}


def render(response: Mapping[str, Any], message: str) -> bytes:
    """A gateway response body, with API Gateway's message where the template asks for it."""
    return str(response["template"]).replace(MESSAGE_VARIABLE, json.dumps(message)).encode()


def local_response_type(status: int, error_type: str, body: bytes | None) -> str:
    """Which gateway response API Gateway would send for what Chalice's local gateway raised."""
    text = (body or b"").decode("utf-8", "replace")
    if status == 401:
        return "UNAUTHORIZED"
    if status == 403 and error_type == "AccessDeniedException":
        return "ACCESS_DENIED"
    if status == 403:  # no route matched ("Missing Authentication Token" or its signed-request variant)
        return "MISSING_AUTHENTICATION_TOKEN"
    if status == 500 and "AuthorizerConfiguration" in error_type + text:
        return "AUTHORIZER_CONFIGURATION_ERROR"
    return "DEFAULT_5XX" if status >= 500 else "DEFAULT_4XX"


def install_local_gateway_responses(template_path: str | os.PathLike[str]) -> bool:
    """Make ``chalice.local.LocalGateway`` answer with the template's gateway responses.

    Only where ``chalice.local`` exists (a laptop, CI); Lambda ships ``chalice/app.py`` alone."""
    try:
        from chalice import local
    except ImportError:
        return False
    if getattr(local.LocalGateway.handle_request, "_gateway_responses", False) or not os.path.exists(template_path):
        return False
    responses = gateway_responses(template_path)
    original: Callable[..., Any] = local.LocalGateway.handle_request

    def handle_request(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        except local.LocalGatewayException as exc:
            kind = local_response_type(exc.CODE, str((exc.headers or {}).get("x-amzn-ErrorType", "")), exc.body)
            raise _as_gateway_response(exc.headers or {}, responses[kind], _message(exc.body), exc.CODE) from None
        except Exception as exc:  # noqa: BLE001 - the authorizer failed: API Gateway answers AUTHORIZER_FAILURE
            log.error("authorizer failed", extra={"outcome": {"error": type(exc).__name__}})
            raise _as_gateway_response({}, responses["AUTHORIZER_FAILURE"], "", 500) from None

    handle_request._gateway_responses = True  # type: ignore[attr-defined]
    local.LocalGateway.handle_request = handle_request  # type: ignore[method-assign]
    return True


def _as_gateway_response(headers: Mapping[str, str], response: Mapping[str, Any], message: str,
                         status: int) -> Exception:
    from chalice.local import LocalGatewayException

    exc = LocalGatewayException({**headers, "Content-Type": "application/json", **response["headers"]},
                                render(response, message))
    exc.CODE = response["status"] or status  # the instance's status: chalice reads ``exc.CODE``
    return exc


def _message(body: bytes | None) -> str:
    try:
        parsed = json.loads(body or b"{}")
    except ValueError:
        return ""
    return str(parsed.get("message") or parsed.get("Message") or "") if isinstance(parsed, dict) else ""
