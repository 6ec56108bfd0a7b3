"""Keep ``.chalice/merge-template.json`` in step with the EventBridge rules the sources declare.

Every rule in ``chalicelib/sources/catalog.py`` is a Lambda function in ``app.py``; each needs,
in the merge template, what ``on_alarm_state_change`` has: an on-failure destination (the
dead-letter queue) and retry budget for asynchronous invocation, EventBridge's own dead-letter
and retry policy for the rule's target, the store/audit/URL environment, and its role in the
key policy. This copies them from that first rule's function to every rule's function:

    python scripts/merge_template_rules.py          # rewrite the template
    python scripts/merge_template_rules.py --check  # exit 1 if it is out of step

``tests/test_source_registry.py`` runs the check.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / ".chalice" / "merge-template.json"
MODEL = "OnAlarmStateChange"  # the function whose blocks every rule's function copies
KEY = "ResponderKey"


def resource_name(name: str) -> str:
    """Chalice's CloudFormation name for a function (``on_rds_event`` → ``OnRdsEvent``)."""
    parts = [p for p in re.split(r"[-_]", name) if p]
    return re.sub(r"[^A-Za-z0-9]+", "", "".join(p[0].upper() + p[1:] for p in parts))


def rule_functions() -> list[str]:
    sys.path.insert(0, str(ROOT))
    from chalicelib.sources import registry

    return [resource_name(rule.name) for rule in registry.eventbridge_rules()]


def synced(template: dict[str, Any], functions: list[str]) -> dict[str, Any]:
    """``template`` with every function in ``functions`` given the model function's blocks."""
    out = copy.deepcopy(template)
    resources = out["Resources"]
    invoke_config, function = resources[f"{MODEL}InvokeConfig"], resources[MODEL]
    roles = _key_principals(resources)
    previous = roles.index({"Fn::GetAtt": [f"{MODEL}Role", "Arn"]})
    for name in functions:
        config = copy.deepcopy(invoke_config)
        config["Properties"]["FunctionName"] = {"Ref": name}
        resources[f"{name}InvokeConfig"] = config
        props = copy.deepcopy(function)
        props["Properties"]["Events"] = {f"{name}Event": props["Properties"]["Events"][f"{MODEL}Event"]}
        resources[name] = props
        role = {"Fn::GetAtt": [f"{name}Role", "Arn"]}  # the key policy names each function's role
        if role in roles:
            previous = roles.index(role)
        else:
            previous += 1
            roles.insert(previous, role)
    return out


def _key_principals(resources: dict[str, Any]) -> list[Any]:
    statements = resources[KEY]["Properties"]["KeyPolicy"]["Statement"]
    [uses] = [s for s in statements if s.get("Sid") == "FunctionsUseItThroughTheirStores"]
    principals: list[Any] = uses["Principal"]["AWS"]
    return principals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether the template is in step")
    args = parser.parse_args(argv)
    template = json.loads(TEMPLATE.read_text())
    wanted = synced(template, rule_functions())
    if args.check:
        if wanted != template:
            print(f"{TEMPLATE.relative_to(ROOT)} is out of step with the sources' EventBridge rules: "
                  "run python scripts/merge_template_rules.py", file=sys.stderr)
            return 1
        return 0
    TEMPLATE.write_text(json.dumps(wanted, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
