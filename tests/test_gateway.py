"""One error shape whoever answers (API Gateway, Chalice, our views), locally as in AWS; the API
learns its own address from the request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from chalice.local import LambdaContext
from chalice.test import Client

import app as app_module
from chalicelib import wiring
from chalicelib.web import gateway
from tests.conftest import ROOT

TEMPLATE = ROOT / ".chalice" / "merge-template.json"
DECLARED = gateway.gateway_responses(TEMPLATE)


def test_missing_authorization_header_gets_the_templates_unauthorized_body(client: Client) -> None:
    response = client.http.get("/incidents")
    assert response.status_code == 401
    assert response.json_body == {"message": "a valid bearer token is required", "error": "unauthorized",
                                  "field": "Authorization"}
    assert response.body == gateway.render(DECLARED["UNAUTHORIZED"], "Unauthorized")  # what AWS sends, byte for byte
    assert response.headers["Cache-Control"] == "no-store"


def test_unknown_token_and_missing_header_have_the_same_shape(client: Client) -> None:
    missing = client.http.get("/incidents").json_body
    unknown = client.http.get("/incidents", headers={"Authorization": "Bearer rsp_nope"}).json_body
    assert set(missing) == set(unknown) == {"message", "error", "field"}
    assert missing["error"] == unknown["error"] == "unauthorized" and missing["field"] == unknown["field"]


def test_wrong_content_type_is_415_in_our_shape_naming_what_is_accepted(client: Client) -> None:
    response = client.http.post("/tokens", headers={"Content-Type": "application/xml", "Authorization": "x"},
                                body=b"<token/>")
    assert response.status_code == 415
    assert response.json_body == {"message": "Content-Type: this route accepts application/json",
                                  "error": "unsupported_media_type", "field": "Content-Type"}
    assert b"application/xml" not in response.body  # the request's own text is not echoed


def test_webhook_with_wrong_content_type_is_415_in_our_shape(client: Client) -> None:
    response = client.http.post("/webhooks/sentry", headers={"Content-Type": "text/html"}, body=b"{}")
    assert response.status_code == 415 and response.json_body["error"] == "unsupported_media_type"
    assert "application/json" in response.json_body["message"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer rsp_secret_token_value"}])
def test_unknown_route_is_404_in_our_shape_and_never_echoes_the_token(client: Client,
                                                                      headers: dict[str, str]) -> None:
    response = client.http.get("/no/such/route", headers=headers)
    assert response.status_code == 404
    assert response.json_body == {"message": "no such route", "error": "not_found", "field": "path"}
    assert b"rsp_secret_token_value" not in response.body


def test_wrong_method_is_405_in_our_shape(client: Client) -> None:
    response = client.http.put("/health")
    assert response.status_code in (404, 405)  # API Gateway: no such method is no such route
    assert set(response.json_body) == {"message", "error", "field"}


def test_a_failing_authorizer_is_503_in_our_shape_not_a_dropped_connection(
        client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib import handlers
    def store_unreachable(token: str | None, deps: Any = None) -> dict[str, str]:
        raise RuntimeError("NoRegionError: You must specify a region.")

    monkeypatch.setattr(handlers, "identify", store_unreachable)
    response = client.http.get("/incidents", headers={"Authorization": "Bearer rsp_x"})
    assert response.status_code == 503
    assert response.json_body == {"message": "the token check failed; retry later", "error": "unavailable"}


def test_every_declared_response_renders_to_our_shape() -> None:
    for kind, response in DECLARED.items():
        body = json.loads(gateway.render(response, 'API Gateway said "no"'))
        assert set(body) - {"field"} == {"message", "error"}, kind
        assert response["status"] is None or 400 <= response["status"] < 600
    assert DECLARED["DEFAULT_4XX"]["status"] is None  # one type for many statuses: API Gateway's own is kept


@pytest.mark.parametrize(("status", "error_type", "body", "kind"), [
    (401, "UnauthorizedException", b'{"message":"Unauthorized"}', "UNAUTHORIZED"),
    (403, "AccessDeniedException", b'{"Message": "User is not authorized"}', "ACCESS_DENIED"),
    (403, "UnauthorizedException", b'{"message": "Missing Authentication Token"}', "MISSING_AUTHENTICATION_TOKEN"),
    (500, "AuthorizerConfigurationException", b'{"message":null}', "AUTHORIZER_CONFIGURATION_ERROR"),
    (429, "", b"", "DEFAULT_4XX"),
])
def test_local_gateway_errors_map_to_the_response_types_aws_uses(status: int, error_type: str, body: bytes,
                                                                  kind: str) -> None:
    assert gateway.local_response_type(status, error_type, body) == kind


@pytest.mark.parametrize(("status", "code", "expected"), [
    (415, "UnsupportedMediaType", {"error": "unsupported_media_type", "field": "Content-Type"}),
    (405, "MethodNotAllowedError", {"error": "method_not_allowed", "field": "method"}),
    (500, "InternalServerError", {"error": "internal"}),
    (404, "NotFoundError", {"error": "not_found"}),
])
def test_chalice_errors_are_reshaped(status: int, code: str, expected: dict[str, str]) -> None:
    reshaped = gateway.reshape_chalice_error(status, {"Code": code, "Message": "Unsupported media type: x/<y>"})
    assert reshaped is not None and expected.items() <= reshaped.items()
    assert "<y>" not in reshaped["message"]


def test_our_own_bodies_are_left_alone() -> None:
    assert gateway.reshape_chalice_error(400, {"message": "m", "error": "bad_request", "field": "f"}) is None
    assert gateway.reshape_chalice_error(200, {"Code": "x"}) is None


# --- the API's own address ---------------------------------------------------------------------


@pytest.mark.parametrize(("context", "headers", "url"), [
    ({"domainName": "a1b2c3.execute-api.eu-west-1.amazonaws.com", "stage": "api"}, {"host": "evil.example"},
     "https://a1b2c3.execute-api.eu-west-1.amazonaws.com/api"),
    ({"domainName": "responder.example.com", "stage": "api"}, {}, "https://responder.example.com"),
    ({}, {"host": "127.0.0.1:8000"}, "http://127.0.0.1:8000"),
    ({}, {"host": "evil.example/phish?x="}, None),
    ({"domainName": "a.execute-api.x.amazonaws.com", "stage": "../x"}, {}, "https://a.execute-api.x.amazonaws.com"),
    ({}, {}, None),
])
def test_public_url_comes_from_the_request(context: dict[str, str], headers: dict[str, str],
                                           url: str | None) -> None:
    assert gateway.public_url(context, headers) == url


def _api_gateway_event(path: str, domain: str) -> dict[str, Any]:
    return {"resource": path, "path": path, "httpMethod": "GET", "headers": {"Host": domain},
            "multiValueHeaders": {}, "queryStringParameters": None, "multiValueQueryStringParameters": None,
            "pathParameters": None, "stageVariables": None, "body": None, "isBase64Encoded": False,
            "requestContext": {"resourcePath": path, "httpMethod": "GET", "path": f"/api{path}", "stage": "api",
                               "domainName": domain, "requestId": "req-1", "identity": {"sourceIp": "192.0.2.1"}}}


def test_api_function_makes_ack_links_with_the_url_its_requests_came_by(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The deployed API function has no RESPONDER_PUBLIC_URL (that would be a cycle): it learns it."""
    for name in ("RESPONDER_PUBLIC_URL", "RESPONDER_STORE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RESPONDER_STAGE", "dev")
    monkeypatch.setenv("RESPONDER_STORE", f"sqlite:///{tmp_path}/s.db")
    monkeypatch.setenv("RESPONDER_AUDIT", f"file://{tmp_path}/audit.jsonl")
    monkeypatch.setenv("RESPONDER_LINK_SECRET", "link-secret-for-tests")
    wiring.override_deps(None)
    try:
        domain = "a1b2c3.execute-api.us-east-1.amazonaws.com"
        answer = app_module.app(_api_gateway_event("/health", domain), LambdaContext("api_handler", 512))
        assert answer["statusCode"] == 200
        links = wiring.get_deps().links
        assert links is not None and links.base_url == f"https://{domain}/api"
    finally:
        wiring.override_deps(None)


def test_a_configured_public_url_wins_over_the_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESPONDER_STAGE", "dev")
    monkeypatch.setenv("RESPONDER_STORE", f"sqlite:///{tmp_path}/s.db")
    monkeypatch.setenv("RESPONDER_AUDIT", f"file://{tmp_path}/audit.jsonl")
    monkeypatch.setenv("RESPONDER_LINK_SECRET", "link-secret-for-tests")
    monkeypatch.setenv("RESPONDER_PUBLIC_URL", "https://responder.example.com")
    wiring.override_deps(None)
    try:
        wiring.learn_public_url("https://a1b2c3.execute-api.us-east-1.amazonaws.com/api")
        links = wiring.get_deps().links
        assert links is not None and links.base_url == "https://responder.example.com"
    finally:
        wiring.override_deps(None)
