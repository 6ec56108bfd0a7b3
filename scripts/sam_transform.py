"""The template CloudFormation will actually run: ``chalice package``'s SAM template, transformed.

``chalice package`` writes a SAM template (``Transform: AWS::Serverless-2016-10-31``); on
deploy, CloudFormation expands it with the SAM transform before creating anything. cfn-lint on
the SAM file checks a different document and misses what only the expansion shows (a
circular dependency between the API and a function's environment, for one). This performs the
same expansion offline with aws-sam-translator, the library the transform runs:

    python scripts/sam_transform.py OUT/sam.json OUT/cfn.json [--stage prod]

- ``CodeUri`` points at the local ``deployment.zip``; ``aws cloudformation package`` replaces it
  with an S3 URI before deploying, so a placeholder S3 URI stands in for that upload.
- Managed policies are looked up by name over the network; the packaged template uses none
  (``autogen_policy`` is off), so the loader knows none and makes no call.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

PLACEHOLDER_CODE_URI = "s3://alarm-responder-artifacts/deployment.zip"


class OfflineManagedPolicies:
    """samtranslator's ManagedPolicyLoader without IAM calls (no managed policy is used)."""

    def load(self) -> dict[str, str]:
        return {}


def transform_sam(sam: dict[str, Any], stage: str, region: str = "us-east-1") -> dict[str, Any]:
    """The plain CloudFormation template the SAM transform makes of ``sam`` for ``stage``."""
    from samtranslator.translator.transform import transform

    template = copy.deepcopy(sam)
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = PLACEHOLDER_CODE_URI
    os.environ.setdefault("AWS_DEFAULT_REGION", region)  # the translator resolves pseudo parameters
    parameters = {"Stage": stage} if "Stage" in template.get("Parameters", {}) else {}
    result: dict[str, Any] = transform(template, parameters, OfflineManagedPolicies())
    return result


def dependency_cycles(template: dict[str, Any]) -> list[list[str]]:
    """Every cycle of ``Ref`` / ``Fn::GetAtt`` / ``Fn::Sub`` / ``DependsOn`` edges between resources."""
    resources = template.get("Resources", {})
    edges = {name: _references(body, set(resources)) for name, body in resources.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for name in sorted(resources):
        if name not in state:
            visit(name)
    return cycles


def _references(node: Any, names: set[str]) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str) and value in names:
                found.add(value)
            elif key == "Fn::GetAtt":
                target = value[0] if isinstance(value, list) else str(value).split(".")[0]
                if target in names:
                    found.add(target)
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                found |= {n for n in names if f"${{{n}}}" in text or f"${{{n}." in text}
                if isinstance(value, list):
                    found |= _references(value[1], names)
            elif key == "DependsOn":
                found |= {value} if isinstance(value, str) else set(value)
            else:
                found |= _references(value, names)
    elif isinstance(node, list):
        for item in node:
            found |= _references(item, names)
    return found & names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sam", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--stage", default="dev")
    args = parser.parse_args(argv)
    cfn = transform_sam(json.loads(args.sam.read_text()), args.stage)
    args.out.write_text(json.dumps(cfn, indent=1) + "\n")
    cycles = dependency_cycles(cfn)
    for cycle in cycles:
        print(f"circular dependency: {' -> '.join(cycle)}", file=sys.stderr)
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
