"""Meta-tests over the whole playbook registry (in the manner of Cloud Custodian's policy tests)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib import config
from chalicelib.playbooks import MODULES, REGISTRY
from tests.conftest import ROOT

PLAYBOOK_DIR = ROOT / "chalicelib" / "playbooks"
FRAMEWORK = {"__init__", "registry", "steps", "context", "executor", "audit", "runtime"}


def test_every_module_registers_exactly_one_playbook_named_after_it() -> None:
    files = {p.stem for p in PLAYBOOK_DIR.glob("*.py")} - FRAMEWORK
    assert files == {m.__name__.rsplit(".", 1)[1] for m in MODULES}
    by_module = {pb.module.rsplit(".", 1)[1]: pb.id for pb in REGISTRY.values()}
    assert by_module == {name: name.replace("_", "-") for name in files}


@pytest.mark.parametrize("playbook_id", sorted(REGISTRY))
def test_playbook_declares_trigger_action_limits_and_permissions(playbook_id: str) -> None:
    playbook = REGISTRY[playbook_id]
    for part in ("Trigger:", "Does:", "Never:"):
        assert part in playbook.doc, f"{playbook_id} docstring lacks {part}"
    assert playbook.summary and playbook.permissions
    assert all(re.fullmatch(r"[a-z0-9-]+:[A-Z][A-Za-z]+", p) for p in playbook.permissions)


def test_prod_policy_grants_every_declared_action_and_no_wildcard_action() -> None:
    policy = json.loads((ROOT / ".chalice" / "policy-prod.json").read_text())
    granted = set()
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert not [a for a in actions if "*" in a], statement["Sid"]
        granted |= set(actions)
    declared = {p for pb in REGISTRY.values() for p in pb.permissions}
    assert declared <= granted, sorted(declared - granted)


def test_every_rule_playbook_exists_and_an_unknown_one_is_refused(tmp_path: Path) -> None:
    rules = config.load().severity.rules
    assert {r.playbook for r in rules if r.playbook} == set(REGISTRY)
    for name in ("severity.yaml", "routing.yaml", "playbooks.yaml"):
        (tmp_path / name).write_text((config.DEFAULT_DIR / name).read_text())
    path = tmp_path / "severity.yaml"
    path.write_text(path.read_text().replace("playbook: auth-outage", "playbook: auth-outrage"))
    with pytest.raises(config.ConfigError, match=r"rules\[\d+\]\.playbook: no playbook 'auth-outrage'"):
        config.load(tmp_path)


def test_playbooks_json_lists_id_permissions_summary() -> None:
    result = subprocess.run([sys.executable, "-m", "chalicelib", "playbooks", "--json"], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    listing = json.loads(result.stdout)
    assert [item["id"] for item in listing] == sorted(REGISTRY)
    assert all(set(item) == {"id", "permissions", "summary"} for item in listing)
    rollback = next(item for item in listing if item["id"] == "deploy-rollback")
    assert "ecs:UpdateService" in rollback["permissions"]
