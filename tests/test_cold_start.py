"""The first event of a cold start pays only for what it uses (bench/coldstart.py measures it).

Each probe is a fresh interpreter, because what matters is what an import does the first time.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

PLAYBOOK_MODULES = """
import json, sys
from chalicelib import handlers, playbooks
before = sorted(m for m in sys.modules if m.rsplit(".", 1)[-1] in playbooks.NAMES)
found = playbooks.get("deploy-rollback") is not None
after = sorted(m.rsplit(".", 1)[-1] for m in sys.modules if m.rsplit(".", 1)[-1] in playbooks.NAMES)
print(json.dumps({"before": before, "found": found, "after": after}))
"""

MODELS_BUILT = """
import json
from chalicelib import handlers, models
from chalicelib.sources import sns
classes = {"Signal": models.Signal, "Incident": models.Incident, "SnsNotification": sns.SnsNotification}
before = {name: cls.__pydantic_complete__ for name, cls in classes.items()}
models.Classification(severity=2, owner="founder-primary", response_minutes=15, playbook=None, rule="r")
print(json.dumps({"before": before, "classification": models.Classification.__pydantic_complete__,
                  "incident_after": models.Incident.__pydantic_complete__}))
"""


def _probe(code: str) -> dict[str, object]:
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return dict(json.loads(result.stdout))


def test_importing_the_handlers_loads_no_playbook_until_one_is_asked_for() -> None:
    probe = _probe(PLAYBOOK_MODULES)
    assert probe["before"] == []
    assert probe["found"] is True
    assert probe["after"] == sorted(__import__("chalicelib.playbooks", fromlist=["NAMES"]).NAMES)


def test_model_classes_build_their_validators_on_first_use_not_at_import() -> None:
    probe = _probe(MODELS_BUILT)
    assert probe["before"] == {"Signal": False, "Incident": False, "SnsNotification": False}
    assert probe["classification"] is True
    assert probe["incident_after"] is False  # only what was used was built
