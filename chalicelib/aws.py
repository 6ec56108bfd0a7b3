"""AWS access for playbooks: clients injected or built lazily, errors converted at the boundary.

``Aws.call(service, operation, params)`` is the one place a playbook's reads and the
executor's writes reach boto3. ``ClientError`` and connection errors become
``PlaybookError`` (``retryable`` for throttling, 5xx and timeouts); messages carry the
service, operation and AWS error code, never parameters or response bodies.

``new_client(service)`` builds the clients the app's own adapters use (the store, Secrets
Manager, the sweep queue, SNS pages). In the deployed zip ``scripts/package`` ships, beside this
module, botocore's data for just those services and operations (``SHIPPED_OPERATIONS``), cut from
the zip's own botocore and stored as plain JSON: a cold start then parses a few KB instead of
botocore's 1.2 MB endpoints.json and the gzipped service model, and lists 4 service folders
instead of 400 (``bench/coldstart.py`` measures it). Without that folder (a work tree, tests)
clients come from stock boto3. Playbooks call any service and operation, so ``Aws`` uses stock.
The shipped data names no other service, so these clients cannot get credentials through one
(STS web identity, SSO): in Lambda they come from the environment.
"""

from __future__ import annotations

import os
from typing import Any

from chalicelib import coldstart
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


# The operations each adapter calls, in botocore's names (what scripts/package keeps of each model).
SHIPPED_OPERATIONS: dict[str, tuple[str, ...]] = {
    # chalicelib/store/dynamodb.py
    "dynamodb": ("BatchGetItem", "DeleteItem", "GetItem", "PutItem", "Query", "Scan", "TransactWriteItems",
                 "UpdateItem"),
    "secretsmanager": ("GetSecretValue",),  # chalicelib/secrets.py
    "sqs": ("SendMessageBatch",),  # chalicelib/notify/sweep_queue.py
    "sns": ("Publish",),  # chalicelib/notify/channels.py
}
SHIPPED_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "aws_data")
_sessions: dict[str, Any] = {}


def new_client(service: str, data: str = SHIPPED_DATA) -> Any:
    """A client for one of ``SHIPPED_OPERATIONS``' services, from the shipped data when the zip
    carries it, else from stock boto3. Its requests are the same either way."""
    with coldstart.loading():  # botocore's import and the client's build: ~30,000 objects for the process's life
        if service in SHIPPED_OPERATIONS and os.path.isfile(os.path.join(data, "endpoints.json")):
            if data not in _sessions:
                _sessions[data] = _shipped_session(data)
            return _sessions[data].create_client(service)
        import boto3

        return boto3.client(service)


def _shipped_session(data: str) -> Any:
    """A botocore session whose loader reads only ``data``, dressed as boto3's default session.

    The loader counts that folder as botocore's own data, as it is: otherwise botocore would feed
    its legacy endpoint into the endpoint rules and could resolve differently. boto3 itself is
    not imported (with s3transfer and multiprocessing, ~15 ms of a cold start): for these services
    all a boto3 session adds to a client is its user agent, set here as boto3/session.py sets it,
    with boto3's version as the zip ships it (``boto3-version``)."""
    import botocore.loaders
    import botocore.session

    class ShippedLoader(botocore.loaders.Loader):
        def is_builtin_path(self, path: str) -> bool:
            return path.startswith(data) or bool(super().is_builtin_path(path))

    core = botocore.session.Session()
    core.register_component("data_loader", ShippedLoader(extra_search_paths=[data],
                                                         include_default_search_paths=False))
    botocore_info = f"Botocore/{core.user_agent_version}"
    core.user_agent_extra = f"{core.user_agent_extra} {botocore_info}" if core.user_agent_extra else botocore_info
    with open(os.path.join(data, "boto3-version"), encoding="ascii") as version:
        core.user_agent_name, core.user_agent_version = "Boto3", version.read().strip()
    return core


def _playbook_error(message: str, retryable: bool) -> ResponderError:
    return PlaybookError(message, retryable=retryable)
