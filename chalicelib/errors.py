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
botocore's ``ClientError`` is caught only in the adapters (``store/dynamodb.py``,
``channels.py``, ``secrets.py``) and re-raised as one of these with ``from``.
"""

from __future__ import annotations


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
