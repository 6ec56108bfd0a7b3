"""AWS access for playbooks: clients injected or built lazily, errors converted at the boundary.

``Aws.call(service, operation, params)`` is the one place a playbook's reads and the
executor's writes reach boto3. ``ClientError`` and connection errors become
``PlaybookError`` (``retryable`` for throttling, 5xx and timeouts); messages carry the
service, operation and AWS error code, never parameters or response bodies.
"""

from __future__ import annotations

from typing import Any

from chalicelib.errors import PlaybookError, ResponderError, from_client_error


class Aws:
    def __init__(self, clients: dict[str, Any] | None = None, *, build_missing: bool = True) -> None:
        self._clients: dict[str, Any] = dict(clients or {})
        self.build_missing = build_missing

    def client(self, service: str) -> Any:
        if service not in self._clients:
            if not self.build_missing:
                raise PlaybookError(f"{service}: no client configured")
            import boto3
            from botocore.config import Config

            # Playbooks run inside a 30-second Lambda: fail fast, let the incident escalate.
            config = Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"})
            self._clients[service] = boto3.client(service, config=config)
        return self._clients[service]

    def call(self, service: str, operation: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            result: dict[str, Any] = getattr(self.client(service), operation)(**(params or {}))
            return result
        except (ClientError, BotoCoreError) as exc:
            raise from_client_error(exc, service, operation, into=_playbook_error) from None


def _playbook_error(message: str, retryable: bool) -> ResponderError:
    return PlaybookError(message, retryable=retryable)
