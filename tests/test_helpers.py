"""The shared helpers of issue 16 §1: conflict retries, botocore errors, webhook signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from chalicelib.errors import (
    ChannelError,
    ConflictError,
    DeliveryInProgress,
    PlaybookError,
    StoreError,
    TransientError,
    aws_error_code,
    from_client_error,
)
from chalicelib.signatures import verify_hmac
from chalicelib.store.retry import CONFLICT_ATTEMPTS, retried

# --- retried ------------------------------------------------------------------------------------


def flaky(failures: int, error: Exception) -> Any:
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) <= failures:
            raise error
        return "written"
    attempt.calls = calls  # type: ignore[attr-defined]
    return attempt


def test_retried_rereads_until_the_write_wins_pausing_between_attempts() -> None:
    pauses: list[int] = []
    attempt = flaky(3, ConflictError("lost"))
    assert retried(attempt, what="incident inc-1", pause=pauses.append) == "written"
    assert len(attempt.calls) == 4 and pauses == [1, 2, 3]


def test_retried_gives_up_after_the_one_budget_naming_what_kept_changing() -> None:
    pauses: list[int] = []
    attempt = flaky(1000, ConflictError("lost"))
    with pytest.raises(ConflictError, match="incident inc-1 kept changing"):
        retried(attempt, what="incident inc-1", pause=pauses.append)
    assert len(attempt.calls) == CONFLICT_ATTEMPTS and len(pauses) == CONFLICT_ATTEMPTS - 1


def test_retried_reraises_other_retried_errors_as_they_were() -> None:
    attempt = flaky(10, DeliveryInProgress("leased"))
    with pytest.raises(DeliveryInProgress, match="leased"):
        retried(attempt, what="delivery", attempts=3, pause=lambda _: None, retry_on=(DeliveryInProgress,))
    assert len(attempt.calls) == 3


def test_retried_never_retries_what_it_was_not_told_to() -> None:
    attempt = flaky(1, StoreError("bad table"))
    with pytest.raises(StoreError):
        retried(attempt, what="x", pause=lambda _: None)
    assert len(attempt.calls) == 1


def test_retried_needs_one_attempt() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        retried(lambda: None, what="x", attempts=0)


# --- from_client_error --------------------------------------------------------------------------


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "arn:aws:secret:patient-42 is secret"}}, "GetSecretValue")


def test_throttling_becomes_transient_and_the_rest_a_store_error() -> None:
    throttled = from_client_error(client_error("ThrottlingException"), "secretsmanager", "get_secret_value")
    denied = from_client_error(client_error("AccessDeniedException"), "secretsmanager", "get_secret_value")
    assert isinstance(throttled, TransientError) and str(throttled) == "secretsmanager.get_secret_value: ThrottlingException"
    assert isinstance(denied, StoreError) and not isinstance(denied, TransientError)


def test_connection_errors_are_transient_and_named_by_class() -> None:
    error = from_client_error(EndpointConnectionError(endpoint_url="https://x"), "sns", "publish", context="SNS publish failed")
    assert isinstance(error, TransientError) and str(error) == "SNS publish failed: EndpointConnectionError"


def test_the_message_names_the_code_never_aws_text() -> None:
    error = from_client_error(client_error("AccessDeniedException"), "secretsmanager", "get_secret_value")
    assert "patient-42" not in str(error) and aws_error_code(client_error("X")) == "X"


def test_an_adapter_chooses_its_own_error_class() -> None:
    error = from_client_error(client_error("ServiceUnavailable"), "ecs", "describe_services",
                              into=lambda message, retryable: PlaybookError(message, retryable=retryable))
    assert isinstance(error, PlaybookError) and error.retryable and str(error) == "ecs.describe_services: ServiceUnavailable"
    channel = from_client_error(client_error("InvalidParameter"), "sns", "publish",
                                into=lambda message, retryable: ChannelError(message, retryable=retryable))
    assert isinstance(channel, ChannelError) and not channel.retryable


# --- verify_hmac --------------------------------------------------------------------------------

BODY = b'{"event":{"event_type":"incident.resolved"}}'


def sign(secret: str, body: bytes = BODY, algorithm: str = "sha256") -> bytes:
    return hmac.new(secret.encode(), body, getattr(hashlib, algorithm)).digest()


def test_hex_signature_matches_in_either_case_and_with_whitespace() -> None:
    given = sign("s3cret").hex()
    assert verify_hmac("s3cret", BODY, given)
    assert verify_hmac("s3cret", BODY, f"  {given.upper()} ")
    assert not verify_hmac("s3cret", BODY + b" ", given)
    assert not verify_hmac("other", BODY, given)


def test_any_of_several_prefixed_signatures_matches() -> None:
    good = "v1=" + sign("new").hex()
    assert verify_hmac("new", BODY, ["v1=" + sign("old").hex(), good], prefix="v1=")
    assert not verify_hmac("new", BODY, [sign("new").hex()], prefix="v1=")  # no prefix, no match
    assert not verify_hmac("new", BODY, [], prefix="v1=")


def test_other_algorithms_and_encodings() -> None:
    digest = sign("k", algorithm="sha1")
    assert verify_hmac("k", BODY, base64.b64encode(digest).decode(), algorithm="sha1", encoding="base64")
    url = base64.urlsafe_b64encode(sign("k")).rstrip(b"=").decode()
    assert verify_hmac("k", BODY, url, encoding="base64url")
    assert not verify_hmac("k", BODY, url.lower(), encoding="base64url")  # base64 is case-sensitive


def test_non_ascii_header_is_a_mismatch_not_a_crash() -> None:
    assert not verify_hmac("k", BODY, "sha256=é\u2028")
