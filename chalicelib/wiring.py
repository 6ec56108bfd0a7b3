"""The composition root: builds the real collaborators once, lazily; tests swap them whole.

Nothing here runs at import. ``get_deps()`` builds on first use (the first event of a
cold start) and caches; ``override_deps(deps)`` is the one seam tests and the CLI use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr

from chalicelib import coldstart
from chalicelib import config as config_module
from chalicelib.aws import Aws, new_client
from chalicelib.config import ResponderConfig, RoutingConfig
from chalicelib.decisions.incidents import NewId
from chalicelib.errors import ConfigError
from chalicelib.notify.channels import (
    ConsoleChannel,
    PagerDutyChannel,
    SlackChannel,
    SnsChannel,
    Transport,
    UrllibTransport,
)
from chalicelib.notify.links import AckLinks
from chalicelib.notify.paging import Channel, Pager
from chalicelib.notify.sweep_queue import SweepQueue
from chalicelib.pipeline import Pipeline
from chalicelib.playbooks.audit import AuditLog, open_audit
from chalicelib.secrets import LocalSecretFile, SecretsManagerSecret, env_secret
from chalicelib.settings import Settings
from chalicelib.store import IncidentStore, open_store
from chalicelib.web.shortlinks import ShortLinks
from chalicelib.web.tokens import TokenService


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Deps:
    settings: Settings
    config: ResponderConfig
    store: IncidentStore
    pager: Pager
    clock: Callable[[], datetime]
    pipeline: Pipeline
    sentry_secret: Callable[[], str] | None
    pagerduty_secret: Callable[[], str] | None = None
    links: AckLinks | None = None
    slack_secret: Callable[[], str] | None = None  # Slack's signing secret (POST /webhooks/slack)
    http: Transport | None = None  # outbound HTTP beside the channels' (Slack's response_url)

    @property
    def tokens(self) -> TokenService:
        return TokenService(self.store, self.clock)


def build_deps(
    settings: Settings | None = None,
    *,
    clock: Callable[[], datetime] = utc_now,
    store: IncidentStore | None = None,
    channels: dict[str, Callable[[], Channel]] | None = None,
    transport: Transport | None = None,
    aws_clients: dict[str, Any] | None = None,
    new_id: NewId | None = None,
    audit: AuditLog | None = None,
    aws: Aws | None = None,
) -> Deps:
    settings = settings or Settings.from_env()
    clients = _LazyClients(aws_clients or {})
    config = config_module.load(settings.config_dir)
    store = store or open_store(settings.store_url, dynamodb_client=clients.existing("dynamodb"),
                                due_shards=settings.due_shards)
    transport = transport or UrllibTransport()
    factories = channel_factories(config.routing, settings, transport, clients)
    factories.update(channels or {})
    links = ack_links(settings, clock, clients)
    pager = Pager(factories, reveal=ShortLinks(links, store).reveal)  # SMS pages get the short link
    pipeline = Pipeline(store, config, pager, clock, lease_seconds=settings.delivery_lease_seconds,
                        keep_days=settings.delivery_keep_days, new_id=new_id,
                        aws=aws or Aws(clients.given(), build_missing=settings.aws_enabled),
                        http=transport,
                        audit=audit or open_audit(settings.audit_location(), clients.existing("s3")),
                        stage=settings.stage, ack_link=links.issue if links.base_url else None)
    if settings.sweep_queue_url:
        pipeline.escalator.queue = SweepQueue(lambda: clients.get("sqs"), settings.sweep_queue_url)
    return Deps(settings=settings, config=config, store=store, pager=pager, clock=clock, pipeline=pipeline,
                sentry_secret=_secret(settings.sentry_client_secret, settings.sentry_client_secret_arn, clock, clients),
                pagerduty_secret=_secret(settings.pagerduty_webhook_secret, settings.pagerduty_webhook_secret_arn,
                                         clock, clients),
                links=links,
                slack_secret=_secret(settings.slack_signing_secret, settings.slack_signing_secret_arn, clock, clients),
                http=transport)


def ack_links(settings: Settings, clock: Callable[[], datetime], clients: _LazyClients) -> AckLinks:
    """Ack links: on a laptop they work with no set-up (``chalice local``'s address, a generated
    secret kept beside the store); a deployed stage must name its key.

    A deployed stage's address: the API function learns it from its first request
    (``learn_public_url``), the functions outside the API are given ``RESPONDER_PUBLIC_URL`` by
    the template, and the authorizer only checks links, which needs no address. Without one,
    pages go out without a link rather than not at all.
    """
    secret = _secret(settings.link_secret, settings.link_secret_arn, clock, clients)
    if secret is None and settings.is_local:
        secret = LocalSecretFile(settings.state_dir() / "link-secret")
    if secret is None:
        raise ConfigError("environment", "RESPONDER_LINK_SECRET_ARN",
                          f"required in stage {settings.stage} (the key of ack links)")
    return AckLinks(settings.ack_base_url or "", secret, timedelta(minutes=settings.ack_link_minutes))


def channel_factories(routing: RoutingConfig, settings: Settings, transport: Transport,
                      aws: _LazyClients) -> dict[str, Callable[[], Channel]]:
    env = settings.env
    factories: dict[str, Callable[[], Channel]] = {}
    for name, ch in routing.channels.items():
        if ch.type == "console":
            factories[name] = ConsoleChannel
        elif ch.type == "pagerduty":
            factories[name] = _bind(PagerDutyChannel, env_secret(env, ch.routing_key_env or ""),
                                    ch.endpoint, transport)
        elif ch.type == "slack":
            factories[name] = _bind(SlackChannel, env_secret(env, ch.webhook_url_env or ""), transport)
        else:
            factories[name] = _bind(SnsChannel, env_secret(env, ch.topic_arn_env or ""),
                                    lambda: aws.get("sns"), ch.page_format == "sms")
    return factories


def _bind(cls: Callable[..., Channel], *args: Any) -> Callable[[], Channel]:
    return lambda: cls(*args)


def _secret(local: SecretStr | None, arn: str | None, clock: Callable[[], datetime],
            aws: _LazyClients) -> Callable[[], str] | None:
    """A secret from the environment (local) or Secrets Manager (AWS, cached), or None."""
    if local is not None:
        return local.get_secret_value
    if arn:
        return SecretsManagerSecret(arn, clock, aws.existing("secretsmanager"))
    return None


class _LazyClients:
    """boto3 clients built on first use, so importing and wiring cost no AWS set-up."""

    def __init__(self, given: dict[str, Any]) -> None:
        self._clients = dict(given)

    def existing(self, name: str) -> Any:
        return self._clients.get(name)

    def given(self) -> dict[str, Any]:
        return dict(self._clients)

    def get(self, name: str) -> Any:
        if name not in self._clients:
            self._clients[name] = new_client(name)
        return self._clients[name]


_deps: Deps | None = None
_public_url: str | None = None  # the API's own address, as its first request showed it


def learn_public_url(url: str | None) -> None:
    """The API function's base URL for ack links, from the request it serves. The template
    cannot hand the API function its own URL (a circular dependency), so unless
    ``RESPONDER_PUBLIC_URL`` is set (a custom domain) the first request decides."""
    global _public_url
    if url and _public_url is None:
        _public_url = url


def get_deps() -> Deps:
    global _deps
    if _deps is None:
        with coldstart.loading():  # the config, the store, the channels: built once, kept for the process
            settings = Settings.from_env()
            if _public_url and settings.public_url is None:
                settings = settings.model_copy(update={"public_url": _public_url})
            _deps = build_deps(settings)
    return _deps


def override_deps(deps: Deps | None) -> None:
    """Install ``deps`` for every handler (``None`` returns to lazy real wiring)."""
    global _deps, _public_url
    _deps = deps
    if deps is None:
        _public_url = None
