"""Runtime settings, read from the environment once and validated (the only env reader).

| variable | meaning | default |
|---|---|---|
| RESPONDER_STAGE | stage name | local |
| RESPONDER_STORE | sqlite:///path or dynamodb://table | sqlite:///.responder/state.db |
| RESPONDER_CONFIG_DIR | folder with severity.yaml and routing.yaml | the shipped chalicelib/config |
| SENTRY_CLIENT_SECRET | Sentry integration client secret (local) | — |
| SENTRY_CLIENT_SECRET_ARN | Secrets Manager id of that secret (AWS) | — |
| RESPONDER_DELIVERY_LEASE_SECONDS | lease one worker holds on a delivery (2 × Lambda timeout) | 60 |
| RESPONDER_DELIVERY_KEEP_DAYS | how long delivery ids are remembered for dedupe | 14 |
| SENTRY_DSN | the responder's own error reporting | — (off) |
| RESPONDER_PUBLIC_URL | base URL of the API, for one-click ack links | local: http://127.0.0.1:8000 |
| RESPONDER_LINK_SECRET / _ARN | HMAC key of ack links (env, or Secrets Manager id) | local: generated¹ |
| RESPONDER_ACK_LINK_MINUTES | how long an ack link works | 30 |
| PAGERDUTY_WEBHOOK_SECRET / _ARN | PagerDuty webhook v3 signing secret (env / Secrets Manager id) | — |
| RESPONDER_AWS | let playbooks call AWS (on/off) | off on stage local, on elsewhere |
| RESPONDER_AUDIT | playbook audit trail: file://path or s3://bucket/prefix | audit.jsonl beside the SQLite store |
| RESPONDER_SWEEP_QUEUE_URL | SQS queue the sweep hands due incidents to (deployed) | — (in-process) |
| RESPONDER_DUE_SHARDS | partitions of DynamoDB's ``due`` index; may grow, never shrink | 16 |

¹ On stage local, generated on first use into ``link-secret`` beside the SQLite store (0600);
a deployed stage must name the key (a ``ConfigError`` says so); its API function learns its URL from
the request, and the template gives the functions outside the API ``RESPONDER_PUBLIC_URL``.

Secrets are ``SecretStr`` so they never print in a repr, a log or an error.

``chalice local`` (Chalice's CLI, not Lambda) always runs on a laptop: its default stage is the
deployed ``dev``, whose environment names a DynamoDB table and Secrets Manager ids that a laptop
cannot reach, so those are set aside there and the local defaults apply (``laptop_view``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from chalicelib.errors import ConfigError

LOCAL_STAGE = "local"
# `chalice local`'s own default address: ack links printed on a laptop open in its browser.
LOCAL_PUBLIC_URL = "http://127.0.0.1:8000"
DEFAULT_STORE = "sqlite:///.responder/state.db"
# What a deployed stage's environment holds that only makes sense inside AWS: its name, its
# table, an S3 audit trail and every Secrets Manager id (``*_ARN``).
_DEPLOYED_ONLY = ("RESPONDER_STAGE", "RESPONDER_STORE")


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    stage: str = LOCAL_STAGE
    store_url: str = Field(DEFAULT_STORE, pattern=r"^(sqlite://.*|dynamodb://.+)$")
    config_dir: str | None = None
    sentry_client_secret: SecretStr | None = None
    sentry_client_secret_arn: str | None = None
    delivery_lease_seconds: int = Field(60, ge=5, le=3600)
    delivery_keep_days: int = Field(14, ge=1, le=400)
    sentry_dsn: SecretStr | None = None
    audit_url: str | None = Field(None, pattern=r"^(file://.+|s3://.+)$")
    aws: bool | None = None
    public_url: str | None = Field(None, pattern=r"^https?://[^\s]+$")
    link_secret: SecretStr | None = None
    link_secret_arn: str | None = None
    ack_link_minutes: int = Field(30, ge=1, le=24 * 60)
    pagerduty_webhook_secret: SecretStr | None = None
    pagerduty_webhook_secret_arn: str | None = None
    slack_signing_secret: SecretStr | None = None
    slack_signing_secret_arn: str | None = None
    sweep_queue_url: str | None = Field(None, pattern=r"^https?://[^\s]+$")
    due_shards: int = Field(16, ge=1, le=1000)
    env: Mapping[str, str] = Field(default_factory=dict, repr=False, exclude=True)

    @property
    def is_local(self) -> bool:
        return self.stage == LOCAL_STAGE

    @property
    def aws_enabled(self) -> bool:
        """Playbooks reach AWS only where there is one: not on a laptop unless asked to."""
        return self.aws if self.aws is not None else not self.is_local

    @property
    def ack_base_url(self) -> str | None:
        """Where ack links point: as configured, else (on a laptop) `chalice local`'s address."""
        return self.public_url or (LOCAL_PUBLIC_URL if self.is_local else None)

    def state_dir(self) -> Path:
        """The folder of local state: the SQLite store's, else ``.responder``."""
        if self.store_url.startswith("sqlite://"):
            path = self.store_url.removeprefix("sqlite://").removeprefix("/")
            if path and path != ":memory:":
                return Path(path).parent
        return Path(".responder")

    def audit_location(self) -> str:
        """The audit trail: as configured, else a JSON-lines file beside the SQLite store."""
        return self.audit_url or "file://" + str(self.state_dir() / "audit.jsonl")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = laptop_view(dict(os.environ if environ is None else environ))
        names = {
            "stage": "RESPONDER_STAGE", "store_url": "RESPONDER_STORE",
            "config_dir": "RESPONDER_CONFIG_DIR", "sentry_client_secret": "SENTRY_CLIENT_SECRET",
            "sentry_client_secret_arn": "SENTRY_CLIENT_SECRET_ARN",
            "delivery_lease_seconds": "RESPONDER_DELIVERY_LEASE_SECONDS",
            "delivery_keep_days": "RESPONDER_DELIVERY_KEEP_DAYS", "sentry_dsn": "SENTRY_DSN",
            "audit_url": "RESPONDER_AUDIT", "aws": "RESPONDER_AWS", "public_url": "RESPONDER_PUBLIC_URL",
            "link_secret": "RESPONDER_LINK_SECRET", "link_secret_arn": "RESPONDER_LINK_SECRET_ARN",
            "ack_link_minutes": "RESPONDER_ACK_LINK_MINUTES",
            "pagerduty_webhook_secret": "PAGERDUTY_WEBHOOK_SECRET",
            "pagerduty_webhook_secret_arn": "PAGERDUTY_WEBHOOK_SECRET_ARN",
            "slack_signing_secret": "SLACK_SIGNING_SECRET", "slack_signing_secret_arn": "SLACK_SIGNING_SECRET_ARN",
            "sweep_queue_url": "RESPONDER_SWEEP_QUEUE_URL", "due_shards": "RESPONDER_DUE_SHARDS",
        }
        values = {field: env[var] for field, var in names.items() if env.get(var)}
        try:
            return cls(**values, env=env)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = str(err["loc"][0]) if err["loc"] else "(settings)"
            raise ConfigError("environment", names.get(field, field), err["msg"]) from None


def under_chalice_local(env: Mapping[str, str]) -> bool:
    """Chalice's CLI (``chalice local``) on a machine that is not Lambda."""
    return env.get("AWS_CHALICE_CLI_MODE") == "true" and not env.get("AWS_LAMBDA_FUNCTION_NAME")


def laptop_view(env: dict[str, str]) -> dict[str, str]:
    """The environment as a laptop should read it: under ``chalice local`` with a deployed stage
    (plain ``chalice local`` picks ``dev``), without that stage's AWS-only settings."""
    if not under_chalice_local(env) or env.get("RESPONDER_STAGE", LOCAL_STAGE) == LOCAL_STAGE:
        return env
    return {name: value for name, value in env.items()
            if name not in _DEPLOYED_ONLY and not name.endswith("_ARN")
            and not (name == "RESPONDER_AUDIT" and value.startswith("s3://"))}
