"""Cold-start benchmark: import costs that every Lambda function of this app pays.

1. In the development venv (bytecode cached): ``import app`` against the floor
   ``import boto3; boto3.client("dynamodb")``, wall time of fresh interpreters, median of N.
2. From the shipped deployment zips (``bash scripts/package`` first), extracted with every
   mtime set to 1980-01-01 as Lambda sees them, run with ``-S -E -B`` so nothing but the zip
   and the standard library is importable: the zip Chalice makes (no .pyc) against the zip
   with unchecked-hash bytecode, for ``import app`` and for the first event's imports
   (``from chalicelib import handlers`` and a boto3 DynamoDB client).

    bash scripts/package prod out && python bench/coldstart.py --zips out
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLOOR = "import boto3; boto3.client('dynamodb', region_name='us-east-1')"
IMPORT_APP = "import app"
# What every Lambda function's environment has; app.py only adapts chalice local's gateway without it.
LAMBDA_ENV = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_LAMBDA_FUNCTION_NAME": "alarm-responder-bench"}
FIRST_EVENT = ("import app; from chalicelib import handlers; import boto3; "
               "boto3.client('dynamodb', region_name='us-east-1')")


def wall_ms(argv: list[str], runs: int, cwd: Path, env: dict[str, str] | None = None) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 1)


def importtime_ms(code: str, cwd: Path) -> float:
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=cwd, capture_output=True,
                            env=dict(os.environ, **LAMBDA_ENV),
                            text=True, check=True)
    total = 0
    for line in result.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit() and not parts[2].startswith("  "):
            total += int(parts[1])  # cumulative µs of top-level imports
    return round(total / 1000, 1)


def extract(zip_path: Path, into: Path) -> Path:
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(into)
    stamp = 315532800  # 1980-01-01, what Lambda sees for a Chalice zip
    for path in into.rglob("*"):
        os.utime(path, (stamp, stamp))
    return into


def zip_case(folder: Path, code: str, runs: int) -> float:
    env = {"PATH": os.environ.get("PATH", ""), **LAMBDA_ENV}
    argv = [sys.executable, "-S", "-E", "-B", "-c", f"import sys; sys.path.insert(0, {str(folder)!r}); {code}"]
    return wall_ms(argv, runs, folder, env)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--zips", type=Path, help="folder with deployment.zip and deployment-no-pyc.zip")
    args = parser.parse_args()
    env = dict(os.environ, **LAMBDA_ENV)
    report: dict[str, object] = {}
    subprocess.run([sys.executable, "-c", FIRST_EVENT], cwd=ROOT, env=env, check=True)  # warm the .pyc cache
    bare = wall_ms([sys.executable, "-c", "pass"], args.runs, ROOT, env)
    floor = wall_ms([sys.executable, "-c", FLOOR], args.runs, ROOT, env)
    app = wall_ms([sys.executable, "-c", IMPORT_APP], args.runs, ROOT, env)
    report["venv"] = {"bare_python_ms": bare, "boto3_client_floor_ms": floor, "import_app_ms": app,
                      "ratio_import_app_to_floor": round(app / floor, 3),
                      "importtime_import_app_ms": importtime_ms(IMPORT_APP, ROOT),
                      "importtime_floor_ms": importtime_ms(FLOOR, ROOT)}
    if args.zips:
        with tempfile.TemporaryDirectory() as tmp:
            plain = extract(args.zips / "deployment-no-pyc.zip", Path(tmp) / "plain")
            compiled = extract(args.zips / "deployment.zip", Path(tmp) / "compiled")
            for name, folder in (("zip_without_pyc", plain), ("zip_with_unchecked_hash_pyc", compiled)):
                report[name] = {"import_app_ms": zip_case(folder, IMPORT_APP, args.runs),
                                "first_event_imports_ms": zip_case(folder, FIRST_EVENT, args.runs),
                                "boto3_client_floor_ms": zip_case(folder, FLOOR, args.runs)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
