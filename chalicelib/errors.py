"""The responder's own exceptions. Adapters convert library errors into these at the boundary.

    ResponderError
    ├── ConfigError          a config file is invalid: names the file, the key and the reason
    ├── InvalidRequest       bad HTTP input or CLI input: a one-line reason naming the field
    │   └── SignatureError   a webhook signature is missing or wrong (HTTP 401)
    ├── TransientError       worth retrying: throttling, 5xx, timeouts (Lambda retries, then the DLQ)
    │   └── DeliveryInProgress  another worker holds this delivery's lease: retry later
    ├── StoreError           the incident store failed for good (bad table, bad URL)
    │   └── ConflictError    a conditional write lost a race; re-read and try again
    ├── IncidentNotFound     no incident with that id
    ├── ChannelError         a page could not be delivered on one channel
    └── PlaybookError        a playbook could not read or act (AWS error, timeout, bad facts);
                             recorded on the timeline, the incident escalates as usual

Messages never contain secrets or payload text: they name fields, ids and reasons only.
botocore's ``ClientError`` / ``BotoCoreError`` is caught only in the adapters (``aws.py``,
``store/dynamodb.py``, ``notify/channels.py``, ``secrets.py``, ``playbooks/audit.py``), and
each turns it into one of these with ``from_client_error(exc, service, operation)``: the
message is ``<context>: <AWS error code>`` (never the request or AWS's own message), and
throttling, AWS 5xx and connection errors (``TRANSIENT_CODES``, any ``BotoCoreError``) are
retryable: a ``TransientError`` by default, or the adapter's own class told ``retryable``.
"""

from __future__ import annotations

from collections.abc import Callable

# AWS error codes that mean "try again later": throttling, a service's 5xx, a lost transaction race.
TRANSIENT_CODES = frozenset({
    "Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded",
    "ProvisionedThroughputExceededException", "TransactionConflictException",
    "InternalError", "InternalFailure", "InternalServerError", "InternalServiceError", "ServiceUnavailable",
    "ServerException",
})


class ResponderError(Exception):
    """Base of every error the responder raises on purpose."""


class ConfigError(ResponderError):
    def __init__(self, file: str, key: str, reason: str) -> None:
        super().__init__(f"{file}: {key}: {reason}")
        self.file, self.key, self.reason = file, key, reason


class InvalidRequest(ResponderError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


class SignatureError(InvalidRequest):
    pass


class TransientError(ResponderError):
    pass


class DeliveryInProgress(TransientError):
    pass


class StoreError(ResponderError):
    pass


class ConflictError(StoreError):
    pass


class IncidentNotFound(ResponderError):
    pass


class ChannelError(ResponderError):
    def __init__(self, reason: str, *, retryable: bool = False, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retryable, self.retry_after = retryable, retry_after


class PlaybookError(ResponderError):
    def __init__(self, reason: str, *, retryable: bool = False) -> None:
        super().__init__(reason)
        self.retryable = retryable


def aws_error_code(exc: BaseException) -> str:
    """A botocore ``ClientError``'s AWS error code, or the class name of any other botocore error."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code") or "Error")
    return type(exc).__name__


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: a ``ClientError`` with a code in ``TRANSIENT_CODES``, or any connection error."""
    if isinstance(getattr(exc, "response", None), dict):
        return aws_error_code(exc) in TRANSIENT_CODES
    return True  # BotoCoreError: timeouts, refused connections, endpoint errors


def _store_or_transient(message: str, retryable: bool) -> ResponderError:
    return TransientError(message) if retryable else StoreError(message)


def from_client_error(exc: BaseException, service: str, operation: str, *, context: str | None = None,
                      into: Callable[[str, bool], ResponderError] = _store_or_transient) -> ResponderError:
    """Our error for a botocore error: ``into(message, retryable)``; raise it ``from None`` or ``from exc``.

    ``context`` replaces the default ``service.operation`` at the head of the message.
    """
    return into(f"{context or f'{service}.{operation}'}: {aws_error_code(exc)}", is_transient(exc))
