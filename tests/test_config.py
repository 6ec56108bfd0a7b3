"""A bad config file fails at load with the file, the key and the reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib import config
from chalicelib.errors import ConfigError
from chalicelib.models import Severity
from chalicelib.settings import Settings
from tests.conftest import ROOT, copy_config


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    copy_config(tmp_path)
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_shipped_config_loads() -> None:
    loaded = config.load()
    assert len(loaded.severity.rules) > 10
    assert set(loaded.routing.roles) >= {"founder-primary", "engineering-oncall", "engineering-daytime", "backlog"}


@pytest.mark.parametrize("old, new, key, reason", [
    ("    severity: SEV1\n    playbook: auth-outage", "    severity: SEV7\n    playbook: auth-outage",
     "rules[", "Input should be"),
    ("      words: [auth, authn, authz,", "      wordz: [auth, authn, authz,", "rules[", "Extra inputs"),
    ("    response_minutes: 120", "    response_minutes: -5", "matrix.SEV2.response_minutes", "greater than"),
    ("      caller: internal\n    severity: SEV1\n    playbook: object-lock-alarm\n  - name: object-lock-retention-or-hold-external",
     "      caller: inside\n    severity: SEV1\n    playbook: object-lock-alarm\n  - name: object-lock-retention-or-hold-external",
     "rules[", "internal"),
])
def test_bad_severity_file_names_file_key_and_reason(config_dir: Path, old: str, new: str, key: str,
                                                     reason: str) -> None:
    edit(config_dir / "severity.yaml", old, new)
    with pytest.raises(ConfigError) as info:
        config.load(config_dir)
    err = info.value
    assert err.file.endswith("severity.yaml") and key in err.key and reason in err.reason
    assert str(err).startswith(str(config_dir / "severity.yaml") + ": ")


def test_rule_with_empty_match_is_refused(config_dir: Path) -> None:
    with (config_dir / "severity.yaml").open("a") as f:
        f.write("  - name: catch-all\n    match: {}\n    severity: SEV1\n")
    with pytest.raises(ConfigError, match=r"rules\[\d+\]\.match: .*at least one field"):
        config.load(config_dir)


def test_owner_role_missing_from_routing_is_refused(config_dir: Path) -> None:
    edit(config_dir / "routing.yaml", "  backlog:\n    coverage: none\n", "")
    with pytest.raises(ConfigError) as info:
        config.load(config_dir)
    assert info.value.key == "matrix.SEV4.owner" and "backlog" in info.value.reason


def test_routing_reference_to_unknown_channel(config_dir: Path) -> None:
    edit(config_dir / "routing.yaml", "  giles: {channels: [console]}", "  giles: {channels: [pager]}")
    with pytest.raises(ConfigError, match=r"routing\.yaml: .*unknown channel 'pager'"):
        config.load(config_dir)


def test_pagerduty_channel_needs_its_secret_reference(config_dir: Path) -> None:
    edit(config_dir / "routing.yaml", "  console:\n    type: console", "  console:\n    type: pagerduty")
    with pytest.raises(ConfigError, match="routing_key_env"):
        config.load(config_dir)


def test_invalid_yaml_names_the_line(config_dir: Path) -> None:
    (config_dir / "severity.yaml").write_text("matrix: [\n  - a: b\n  c\n")
    with pytest.raises(ConfigError, match=r"severity.yaml: line \d+: not valid YAML"):
        config.load(config_dir)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"severity.yaml: \(file\)"):
        config.load(tmp_path)


def test_settings_reject_bad_store_url_without_echoing_secrets() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"RESPONDER_STORE": "postgres://x", "SENTRY_CLIENT_SECRET": "s3cr3t-value"})
    assert info.value.key == "RESPONDER_STORE" and "s3cr3t-value" not in str(info.value)
    settings = Settings.from_env({"SENTRY_CLIENT_SECRET": "s3cr3t-value"})
    assert "s3cr3t-value" not in repr(settings)


@pytest.mark.parametrize("file, old, new, key", [
    # the incident that caused this: a role written twice, the second (coverage: none) silently won
    ("routing.yaml", "  backlog:\n    coverage: none\n",
     "  backlog:\n    coverage: none\n  founder-backup:\n    coverage: none\n", "roles.founder-backup"),
    ("routing.yaml", "  giles: {channels: [console]}", "  giles: {channels: [console], channels: []}",
     "people.giles.channels"),
    ("severity.yaml", "    severity: SEV1\n    playbook: auth-outage", "    severity: SEV1\n    severity: SEV4\n"
     "    playbook: auth-outage", "rules[13].severity"),
    ("severity.yaml", "default_severity: SEV3\n", "default_severity: SEV3\ndefault_severity: SEV4\n", "default_severity"),
    ("playbooks.yaml", "dry_run:", "dry_run: true\ndry_run:", "dry_run"),
])
def test_duplicated_yaml_key_names_file_key_and_lines(config_dir: Path, file: str, old: str, new: str,
                                                      key: str) -> None:
    edit(config_dir / file, old, new)
    with pytest.raises(ConfigError) as info:
        config.load(config_dir)
    err = info.value
    assert err.file == str(config_dir / file) and err.key == key, str(err)
    assert "duplicated key" in err.reason and "line" in err.reason


def test_a_key_next_to_a_yaml_merge_is_not_a_duplicate(config_dir: Path) -> None:
    # severity.yaml's Object Lock rules use `<<: *anchor` and then override `caller`
    assert "<<: *object_lock_calls" in (config_dir / "severity.yaml").read_text()
    assert config.load(config_dir).severity.rules == config.load().severity.rules


@pytest.mark.parametrize("file, old, new, key", [
    ("severity.yaml", "  SEV2:\n    definition:", "  sev1:\n    definition: again\n    response: x\n"
     "    response_minutes: 1\n    owner: backlog\n  SEV2:\n    definition:", "matrix"),
    ("routing.yaml", "  SEV4:\n    steps:", "  sev1:\n    steps: []\n  SEV4:\n    steps:", "escalation"),
])
def test_two_spellings_of_one_severity_are_a_duplicate(config_dir: Path, file: str, old: str, new: str,
                                                        key: str) -> None:
    edit(config_dir / file, old, new)
    with pytest.raises(ConfigError, match="given twice") as info:
        config.load(config_dir)
    assert info.value.key == key


SEV2_CHAIN = "      - {role: engineering-oncall, after_minutes: 0}\n"  # SEV2's first step (SEV1 has it at +10)


def test_shipped_routing_has_no_sev1_or_sev2_step_that_can_be_empty() -> None:
    routing = config.load().routing
    assert all(step.when == "always" for sev in (Severity.SEV1, Severity.SEV2)
               for step in routing.escalation[sev].steps)


def test_daytime_role_in_a_sev2_chain_is_refused_naming_role_and_hours(config_dir: Path) -> None:
    edit(config_dir / "routing.yaml", SEV2_CHAIN, SEV2_CHAIN.replace("engineering-oncall", "engineering-daytime"))
    with pytest.raises(ConfigError) as info:
        config.load(config_dir)
    reason = info.value.reason
    assert info.value.file.endswith("routing.yaml")
    assert "escalation.SEV2.steps[0]: role 'engineering-daytime' has nobody on call" in reason
    assert "from Mon 18:00 to Tue 09:00" in reason and "America/New_York" in reason
    assert "when: business-hours" in reason


def test_daytime_step_marked_business_hours_loads(config_dir: Path) -> None:
    edit(config_dir / "routing.yaml", SEV2_CHAIN,
         SEV2_CHAIN + "      - {role: engineering-daytime, after_minutes: 30, when: business-hours}\n")
    step = config.load(config_dir).routing.escalation[Severity.SEV2].steps[1]
    assert (step.role, step.when) == ("engineering-daytime", "business-hours")


def test_role_with_a_gap_in_a_sev1_chain_is_refused(config_dir: Path) -> None:
    # a night-shift role that covers the whole week but Sunday night: coverage none, so only the chain check sees it
    edit(config_dir / "routing.yaml", "  backlog:\n    coverage: none\n",
         "  backlog:\n    coverage: none\n  night-watch:\n    coverage: none\n    shifts:\n"
         "      - {person: engineer-on-call, days: [mon, tue, wed, thu, fri, sat], start: \"00:00\", end: \"00:00\"}\n")
    edit(config_dir / "routing.yaml", "      - {role: founder-backup, after_minutes: 5}",
         "      - {role: night-watch, after_minutes: 5}")
    with pytest.raises(ConfigError, match=r"SEV1\.steps\[1\]: role 'night-watch' has nobody on call "
                                          r"from Sun 00:00 to Mon 00:00 \(America/New_York\)"):
        config.load(config_dir)


def test_business_hours_step_must_still_be_held_all_business_hours(config_dir: Path) -> None:
    edit(config_dir / "routing.yaml", SEV2_CHAIN, SEV2_CHAIN + "      - {role: backlog, after_minutes: 30, when: business-hours}\n")
    with pytest.raises(ConfigError, match=r"SEV2\.steps\[1\]: role 'backlog' has nobody on call from Mon 09:00 to Mon 18:00"):
        config.load(config_dir)


def test_a_stem_too_short_to_stay_inside_its_word_family_is_refused(config_dir: Path) -> None:
    edit(config_dir / "severity.yaml", "      words: [auth, authn, authz,", "      words: [aut*, authn, authz,")
    with pytest.raises(ConfigError, match=r"rules\[\d+\]\.match\.words: .*stem 'aut\*' needs at least 4 letters"):
        config.load(config_dir)


def _copy_config(folder: Path) -> Path:
    folder.mkdir()
    for name in config.FILES:
        (folder / name).write_bytes((config.DEFAULT_DIR / name).read_bytes())
    return folder


def test_compiled_config_is_what_the_yaml_validates_to(tmp_path: Path) -> None:
    folder = _copy_config(tmp_path / "config")
    config.compile_to(folder, folder / config.COMPILED)
    assert config.load(folder) == config.load(config.DEFAULT_DIR)


def test_compiled_config_is_ignored_once_the_yaml_changes(tmp_path: Path) -> None:
    folder = _copy_config(tmp_path / "config")
    config.compile_to(folder, folder / config.COMPILED)
    routing = folder / "routing.yaml"
    routing.write_text(routing.read_text() + "\nbogus_key: 1\n")
    with pytest.raises(ConfigError) as caught:
        config.load(folder)
    assert "bogus_key" in str(caught.value)


def test_a_cold_start_with_compiled_config_builds_no_config_validators(tmp_path: Path) -> None:
    """What the deployed first event saves: no YAML, no config model class built."""
    folder = _copy_config(tmp_path / "config")
    config.compile_to(folder, folder / config.COMPILED)
    code = ("import json, sys; from chalicelib import config; c = config.load(sys.argv[1]); "
            "print(json.dumps([config.RoutingConfig.__pydantic_complete__, 'yaml' in sys.modules, "
            "c.routing.roles == config.load().routing.roles]))")
    result = subprocess.run([sys.executable, "-c", code, str(folder)], cwd=ROOT, capture_output=True, text=True,
                            check=True)
    assert json.loads(result.stdout) == [False, False, True]
