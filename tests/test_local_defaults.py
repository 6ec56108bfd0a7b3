"""A laptop needs no set-up: ack links work out of the box and `chalice local` uses the embedded
store; a deployed stage still has to name its link address and key."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.errors import ConfigError
from chalicelib.notify.links import AckLinks
from chalicelib.secrets import LocalSecretFile
from chalicelib.settings import LOCAL_PUBLIC_URL, Settings, laptop_view
from chalicelib.store.sqlite import SqliteStore
from chalicelib.wiring import build_deps
from tests.conftest import ROOT, T0, FakeClock

CHALICE = json.loads((ROOT / ".chalice" / "config.json").read_text())


def _local(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"RESPONDER_STORE": f"sqlite:///{tmp_path}/state.db", **env})


def test_local_links_point_at_chalice_local_and_use_a_generated_secret(tmp_path: Path) -> None:
    settings = _local(tmp_path)
    deps = build_deps(settings, clock=FakeClock(), store=SqliteStore(tmp_path / "state.db"))
    assert settings.ack_base_url == LOCAL_PUBLIC_URL == "http://127.0.0.1:8000"
    secret_file = tmp_path / "link-secret"
    assert not secret_file.exists()  # generated on first use, not at start
    assert deps.links is not None
    incident = type("I", (), {"id": "inc-1"})()
    link = deps.links.make(incident, "giles", T0)  # type: ignore[arg-type]
    assert link.startswith("http://127.0.0.1:8000/ack/")
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert len(secret_file.read_text().strip()) >= 40
    # another process (the CLI today, `chalice local` tomorrow) reads the same key: the link checks
    again = AckLinks(LOCAL_PUBLIC_URL, LocalSecretFile(secret_file))
    assert not isinstance(again.check(link.rsplit("/", 1)[1], T0), str)


def test_configured_link_secret_and_url_win_over_the_local_defaults(tmp_path: Path) -> None:
    settings = _local(tmp_path, RESPONDER_PUBLIC_URL="https://responder.example", RESPONDER_LINK_SECRET="k")
    deps = build_deps(settings, clock=FakeClock(), store=SqliteStore(tmp_path / "state.db"))
    assert deps.links is not None and deps.links.base_url == "https://responder.example"
    deps.links.make(type("I", (), {"id": "inc-1"})(), "giles", T0)  # type: ignore[arg-type]
    assert not (tmp_path / "link-secret").exists()


def test_two_processes_racing_to_create_the_secret_agree(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "link-secret"
    code = ("import sys; from pathlib import Path; from chalicelib.secrets import LocalSecretFile;"
            " print(LocalSecretFile(Path(sys.argv[1]))())")
    runs = [subprocess.Popen([sys.executable, "-c", code, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
            for _ in range(4)]
    values = {run.communicate(timeout=60)[0].strip() for run in runs}
    assert values == {path.read_text().strip()}
    assert [p.name for p in path.parent.iterdir()] == ["link-secret"]  # no temporary files left


def test_an_empty_secret_file_is_a_clear_config_error(tmp_path: Path) -> None:
    (tmp_path / "link-secret").write_text("\n")
    with pytest.raises(ConfigError, match="link-secret: secret: is empty"):
        LocalSecretFile(tmp_path / "link-secret")()


def test_a_deployed_stage_must_name_its_link_key(tmp_path: Path) -> None:
    settings = Settings.from_env({"RESPONDER_STAGE": "prod", "RESPONDER_PUBLIC_URL": "https://responder.example"})
    with pytest.raises(ConfigError, match="RESPONDER_LINK_SECRET_ARN: required in stage prod"):
        build_deps(settings, clock=FakeClock(), store=SqliteStore(tmp_path / "state.db"))
    assert not (tmp_path / "link-secret").exists()  # nothing is generated for a deployed stage


def test_a_deployed_function_without_an_address_checks_links_and_pages_without_them(tmp_path: Path) -> None:
    """The authorizer (and the API before its first request) has no address: it still starts."""
    settings = Settings.from_env({"RESPONDER_STAGE": "prod", "RESPONDER_LINK_SECRET": "k"})
    deps = build_deps(settings, clock=FakeClock(), store=SqliteStore(tmp_path / "state.db"))
    assert deps.links is not None and deps.links.base_url == ""
    assert deps.pipeline.escalator.ack_link is None
    addressed = build_deps(settings.model_copy(update={"public_url": "https://responder.example"}),
                           clock=FakeClock(), store=SqliteStore(tmp_path / "state.db"))
    link = addressed.links.make(type("I", (), {"id": "inc-1"})(), "giles", T0)  # type: ignore[arg-type,union-attr]
    assert not isinstance(deps.links.check(link.rsplit("/", 1)[1], T0), str)  # the same key checks it


def _chalice_local_env(stage: str) -> dict[str, str]:
    """The environment `chalice local --stage STAGE` gives app.py: the stage's variables over ours."""
    return {"AWS_CHALICE_CLI_MODE": "true", "RESPONDER_STORE": "sqlite:///mine.db",
            **CHALICE["stages"][stage]["environment_variables"]}


def test_plain_chalice_local_reads_like_a_laptop() -> None:
    settings = Settings.from_env(_chalice_local_env("dev"))  # `chalice local` with no --stage: dev
    assert (settings.stage, settings.store_url) == ("local", "sqlite:///.responder/state.db")
    assert settings.link_secret_arn is None and settings.sentry_client_secret_arn is None
    assert settings.ack_base_url == LOCAL_PUBLIC_URL


def test_chalice_local_sets_aside_every_aws_only_setting_of_a_deployed_stage() -> None:
    env = {**_chalice_local_env("prod"), "RESPONDER_AUDIT": "s3://audit-bucket/responder/",
           "SOMETHING_NEW_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x",
           "RESPONDER_ACK_LINK_MINUTES": "10"}
    view = laptop_view(env)
    assert not {name for name in view if name.endswith("_ARN")}
    assert "RESPONDER_AUDIT" not in view and "RESPONDER_STAGE" not in view
    assert view["RESPONDER_ACK_LINK_MINUTES"] == "10"  # an ordinary setting stays
    assert Settings.from_env(env).audit_location() == "file://.responder/audit.jsonl"


def test_chalice_local_stage_local_keeps_the_callers_environment() -> None:
    assert Settings.from_env(_chalice_local_env("local")).store_url == "sqlite:///mine.db"


def test_inside_lambda_the_stage_environment_is_used_as_is() -> None:
    env = {**_chalice_local_env("dev"), "AWS_LAMBDA_FUNCTION_NAME": "alarm-responder-dev"}
    assert laptop_view(env) == env
    settings = Settings.from_env(env)
    assert (settings.stage, settings.store_url) == ("dev", "dynamodb://alarm-responder-dev")
