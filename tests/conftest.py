"""Shared fixtures: real sample events, a fake clock, recording channels, deps on SQLite or moto.

moto is imported before anything builds a boto3 client, and fake credentials point at no
real account; every test runs without network beyond loopback.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.update({
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
})
os.environ.pop("SENTRY_DSN", None)
os.environ.pop("AWS_PROFILE", None)

import boto3
import moto  # noqa: F401  (registers its botocore hook before any client exists)
import pytest
from chalice.test import Client
from moto import mock_aws

from chalicelib import config
from chalicelib.aws import Aws
from chalicelib.errors import ChannelError
from chalicelib.notify.paging import PageRequest
from chalicelib.settings import Settings
from chalicelib.store.dynamodb import DynamoStore
from chalicelib.store.sqlite import SqliteStore
from chalicelib.wiring import Deps, build_deps, override_deps

ROOT = Path(__file__).resolve().parent.parent
# Real payload shapes, copied into the repository with their provenance (tests/events/SOURCES.md):
# nothing a test reads lives outside it.
EVENTS_DIR = ROOT / "tests" / "events"
SENTRY_SECRET = "test-sentry-client-secret-0123456789"
# Friday 10:42 in New York: business hours, so Sev3 pages at once (tests of night-time say so).
T0 = datetime(2025, 3, 14, 14, 42, 40, tzinfo=UTC)

# Files in tests/events/ that are not inbound events: outbound PagerDuty calls and responses,
# and test vectors.
NOT_INBOUND = {
    "pagerduty-events-v2-acknowledge.json", "pagerduty-events-v2-resolve.json",
    "pagerduty-events-v2-response-202.json", "pagerduty-events-v2-response-400.json",
    "pagerduty-events-v2-trigger.json", "pagerduty-webhook-signature-test-vector.json",
    "sentry-signature-test-vector.json", "sns-signature-string-to-sign-example.json",
    "secretsmanager-list-secrets-response.json",  # what the daily rotation check reads, not an event
}


CONFIG = config.load()


def copy_config(folder: Path) -> Path:
    """The shipped config files copied into ``folder``, for a test to edit."""
    for name in ("severity.yaml", "routing.yaml", "playbooks.yaml"):
        shutil.copy(config.DEFAULT_DIR / name, folder / name)
    return folder


def config_with_channels(folder: Path, channels: str, people: dict[str, str] | None = None,
                         prefix: str = "") -> Path:
    """The shipped config in ``folder`` with extra channels (YAML lines under ``channels:``),
    some people moved onto them ({"giles": "[pd, console]"}), and ``prefix`` YAML before them."""
    copy_config(folder)
    path = folder / "routing.yaml"
    console = "channels:\n  console:\n    type: console\n"
    routing = path.read_text()
    assert console in routing
    routing = routing.replace(console, prefix + console + channels)
    for person, spec in (people or {}).items():
        old = f"  {person}: {{channels: [console]}}"
        assert old in routing, old
        routing = routing.replace(old, f"  {person}: {{channels: {spec}}}")
    path.write_text(routing)
    return folder


def load_event(name: str) -> Any:
    return json.loads((EVENTS_DIR / name).read_text())


def inbound_event_files() -> list[str]:
    return sorted(p.name for p in EVENTS_DIR.glob("*.json") if p.name not in NOT_INBOUND)


def sns_event(name: str, *, message_id: str | None = None, **message_changes: Any) -> dict[str, Any]:
    """A real SNS sample, optionally with a fresh MessageId and edited alarm message fields."""
    event = copy.deepcopy(load_event(name))
    sns = event["Records"][0]["Sns"]
    if message_id:
        sns["MessageId"] = message_id
    if message_changes:
        message = json.loads(sns["Message"])
        for key, value in message_changes.items():
            if isinstance(value, dict) and isinstance(message.get(key), dict):
                message[key].update(value)
            else:
                message[key] = value
        sns["Message"] = json.dumps(message)
    return event


class FakeClock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


class RecordingChannel:
    """A channel that keeps what it was asked to send, and can be told to fail."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[PageRequest] = []
        self.fail = fail

    def send(self, page: PageRequest) -> None:
        if self.fail:
            raise ChannelError("recording channel set to fail", retryable=True)
        self.sent.append(page)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def console() -> RecordingChannel:
    return RecordingChannel()


def make_deps(store: Any, clock: Callable[[], datetime], channel: RecordingChannel,
              env: dict[str, str] | None = None, **kwargs: Any) -> Deps:
    audit = Path(getattr(store, "path", "") or tempfile.mkdtemp()).parent / "audit.jsonl"
    settings = Settings.from_env({"SENTRY_CLIENT_SECRET": SENTRY_SECRET, "RESPONDER_AUDIT": f"file://{audit}",
                                  **(env or {})})
    # Playbooks get only the clients a test hands over: nothing can reach for real AWS.
    kwargs.setdefault("aws", Aws(build_missing=False))
    return build_deps(settings, clock=clock, store=store, channels={"console": lambda: channel}, **kwargs)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "state.db")


def installed(built: Deps) -> Iterator[Deps]:
    """``built`` as the deps every handler and route uses, for one test (``yield from`` it)."""
    override_deps(built)
    yield built
    override_deps(None)


@pytest.fixture
def deps(sqlite_store: SqliteStore, clock: FakeClock, console: RecordingChannel) -> Iterator[Deps]:
    yield from installed(make_deps(sqlite_store, clock, console))


@pytest.fixture
def client(deps: Deps) -> Iterator[Client]:
    """The Chalice test client on the app, serving whichever ``deps`` the test module defines."""
    import app as app_module  # chalice and stdlib only: cheap, and after moto is in place

    with Client(app_module.app, stage_name="dev") as c:
        yield c


def create_table(client: Any, name: str = "responder-test") -> str:
    """The table exactly as the merge template declares it (keys, the sparse ``due`` index)."""
    template = json.loads((ROOT / ".chalice" / "merge-template.json").read_text())
    props = template["Resources"]["IncidentsTable"]["Properties"]
    client.create_table(TableName=name, KeySchema=props["KeySchema"],
                        AttributeDefinitions=props["AttributeDefinitions"],
                        GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"], BillingMode="PAY_PER_REQUEST")
    return name


def app_on(kind: str, tmp_path: Path, clock: Callable[[], datetime],
           channel: RecordingChannel, env: dict[str, str] | None = None) -> Iterator[tuple[Client, Deps]]:
    """The Chalice test client and the deps it serves, on ``kind``: "sqlite" or "dynamodb" (moto)."""
    import app as app_module

    if kind == "sqlite":
        for built in installed(make_deps(SqliteStore(tmp_path / "s.db"), clock, channel, env)):
            with Client(app_module.app, stage_name="dev") as http:
                yield http, built
        return
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        for built in installed(make_deps(DynamoStore(create_table(dynamodb), client=dynamodb), clock, channel, env)):
            with Client(app_module.app, stage_name="dev") as http:
                yield http, built


@pytest.fixture
def dynamo_store() -> Iterator[DynamoStore]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        yield DynamoStore(create_table(client), client=client)


@pytest.fixture(params=["sqlite", "dynamodb"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "sqlite":
        yield SqliteStore(tmp_path / "contract.db")
        return
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        yield DynamoStore(create_table(client), client=client)


class AtomicRequests:
    """A boto3 client whose every call runs alone, as each request does on the real DynamoDB.

    moto's in-process backend is not thread-safe: a reader can see half of a
    TransactWriteItems. Serialising whole requests restores the service's guarantee while
    the races *between* requests, the ones our code must survive, stay as they are.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attr(*args, **kwargs)
        return call


def new_id() -> str:
    return str(uuid.uuid4())


# --- the packaged template (chalice package + merge template), built once per session ---

STAGES = ["dev", "prod"]


def load_script(name: str, folder: str = "scripts") -> Any:
    """A script of scripts/ (or bench/) as a module: those folders are not packages."""
    spec = importlib.util.spec_from_file_location(name, ROOT / folder / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_sam_transform() -> Any:
    return load_script("sam_transform")


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """``chalice package`` + merge template per stage: {stage: {"sam": ..., "cfn": ..., "zip": path}}."""
    sam_transform = load_sam_transform()
    out: dict[str, dict[str, Any]] = {}
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    for stage in STAGES:
        folder = tmp_path_factory.mktemp(stage)
        subprocess.run([str(Path(sys.executable).parent / "chalice"), "package", "--stage", stage,
                        "--merge-template", ".chalice/merge-template.json", str(folder)],
                       cwd=ROOT, env=env, check=True, capture_output=True)
        sam = json.loads((folder / "sam.json").read_text())
        out[stage] = {"sam": sam, "cfn": sam_transform.transform_sam(sam, stage), "zip": folder / "deployment.zip"}
    return out
