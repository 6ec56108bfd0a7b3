"""Secrets: from the environment locally, from Secrets Manager in AWS, cached with a TTL.

The client is injected (tests pass moto's or a fake) and built lazily otherwise.
Errors name the secret id, never its value.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from chalicelib.errors import StoreError, TransientError


class SecretsManagerSecret:
    """One secret value, fetched on first use and again after ``ttl`` (rotation)."""

    def __init__(self, secret_id: str, clock: Callable[[], datetime], client: Any = None,
                 ttl: timedelta = timedelta(minutes=5)) -> None:
        self.secret_id, self.clock, self._client, self.ttl = secret_id, clock, client, ttl
        self._value: str | None = None
        self._fetched: datetime | None = None

    def __call__(self) -> str:
        now = self.clock()
        if self._value is None or self._fetched is None or now - self._fetched >= self.ttl:
            self._value, self._fetched = self._fetch(), now
        return self._value

    def _fetch(self) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        if self._client is None:
            import boto3

            self._client = boto3.client("secretsmanager")
        try:
            value = self._client.get_secret_value(SecretId=self.secret_id).get("SecretString")
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            if code in ("ThrottlingException", "InternalServiceError"):
                raise TransientError(f"secret {self.secret_id}: {code}") from None
            raise StoreError(f"secret {self.secret_id}: {code}") from None
        except BotoCoreError as exc:
            raise TransientError(f"secret {self.secret_id}: {type(exc).__name__}") from None
        if not value:
            raise StoreError(f"secret {self.secret_id} has no SecretString")
        return str(value)


def env_secret(env: dict[str, str] | Any, name: str) -> Callable[[], str]:
    def get() -> str:
        value = env.get(name)
        if not value:
            raise StoreError(f"{name} is not set")
        return str(value)
    return get
