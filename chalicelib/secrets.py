"""Secrets: from the environment locally, from Secrets Manager in AWS, cached with a TTL;
on a laptop, a generated one kept in a file (``LocalSecretFile``).

The client is injected (tests pass moto's or a fake) and built lazily otherwise.
Errors name the secret id, never its value.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from chalicelib.errors import ConfigError, StoreError, from_client_error


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
            from chalicelib.aws import new_client

            self._client = new_client("secretsmanager")
        try:
            value = self._client.get_secret_value(SecretId=self.secret_id).get("SecretString")
        except (ClientError, BotoCoreError) as exc:
            raise from_client_error(exc, "secretsmanager", "get_secret_value",
                                    context=f"secret {self.secret_id}") from None
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


class LocalSecretFile:
    """A random secret generated on first use and kept in ``path`` (mode 0600), so a laptop
    needs no set-up and links made by the CLI still work in ``chalice local`` tomorrow.

    Creation is atomic: the value is written to a private temporary file which is then
    hard-linked into place; when two processes race, the first link wins and both read it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._value: str | None = None

    def __call__(self) -> str:
        if self._value is None:
            self._value = self._read() or self._create()
        return self._value

    def _read(self) -> str | None:
        try:
            value = self.path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(str(self.path), "secret", f"cannot be read ({type(exc).__name__})") from None
        if not value:
            raise ConfigError(str(self.path), "secret", "is empty; delete the file to generate a new one")
        return value

    def _create(self) -> str:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.fchmod(fd, 0o600)  # whatever the umask
        try:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(secrets.token_urlsafe(32) + "\n")
            try:
                os.link(temporary, self.path)
            except FileExistsError:
                pass  # another process made it first: use theirs
        finally:
            temporary.unlink(missing_ok=True)
        value = self._read()
        if value is None:
            raise ConfigError(str(self.path), "secret", "could not be created")
        return value
