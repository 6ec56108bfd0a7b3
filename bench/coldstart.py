"""Cold-start benchmark: import costs that every Lambda function of this app pays.

1. In the development venv (bytecode cached): ``import app`` against the floor
   ``import boto3; boto3.client("dynamodb")``, wall time of fresh interpreters, median of N.
2. From the shipped deployment zips (``bash scripts/package`` first), extracted with every
   mtime set to 1980-01-01 as Lambda sees them, run with ``-S -E -B`` so nothing but the zip
   and the standard library is importable: the zip Chalice makes (no .pyc) against the zip
   with unchecked-hash bytecode, for ``import app`` and for the first event's imports
   (``from chalicelib import handlers`` and the store's DynamoDB client, which ``chalicelib.aws``
   builds from the trimmed botocore data the zip carries; the floor's client is stock boto3's).
3. Side by side in one run, runs interleaved so machine load hits both alike: the floor against
   the first event's imports from the shipped zip, wall and CPU time (the child's user + sys:
   steadier than wall on a busy machine), and their ratio; beside them the floor built the way the
   app builds its clients (``FLOOR_AS_SHIPPED``), so the ratio to stock boto3 is not mistaken for
   our own code being light. Then where the first event's CPU goes, step by step in one
   interpreter (median of the runs).
4. The honest figure: import + the first event handled, end to end, from the shipped zip, side by
   side with the floor. A fresh interpreter takes one new alarm through the SNS function's Lambda
   entry (``app.app.handler_map["on_alarm_sns"]``) on the prod stage's settings: DynamoDB, the
   ack-link secret from Secrets Manager and the audit trail on S3, all on a moto server on
   loopback (its CPU is another process's, not counted). Every run opens a new incident and
   pages it, as the first event of a cold start does for a new alarm.

The zip is built for arm64: its native extensions (pydantic-core, PyYAML's libyaml binding) are
aarch64 builds. To run it here each one is replaced by this interpreter's build of the same
file from the venv (same package versions: requirements.txt pins them); everything else, the
bytecode included, is the zip's. The report lists the swapped files.

    bash scripts/package prod out && python bench/coldstart.py --zips out
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FLOOR = "import boto3; boto3.client('dynamodb', region_name='us-east-1')"
IMPORT_APP = "import app"
# The floor built the way the app builds its clients (chalicelib/aws.py: the shipped AWS data, the collector
# paused): what the same two measures make of a function that only makes a DynamoDB client.
FLOOR_AS_SHIPPED = "from chalicelib import aws; aws.new_client('dynamodb')"
# What every Lambda function's environment has; app.py only adapts chalice local's gateway without it.
LAMBDA_ENV = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_LAMBDA_FUNCTION_NAME": "alarm-responder-bench"}
# The first event's imports: app.py, the handlers as app.py loads them, and the DynamoDB client the store
# makes (from the AWS data the zip ships, chalicelib/aws.py; stock boto3 where there is none, as in the venv).
FIRST_EVENT = ("import app; app._handlers(); "
               "from chalicelib.store.dynamodb import DynamoStore; DynamoStore('alarm-responder').client")
# Import and handle one SNS delivery (the event file named by COLDSTART_EVENT); print the answer.
FIRST_EVENT_HANDLED = """
import json, os
import app
class Context:
    function_name = "alarm-responder-prod-on_alarm_sns"
    aws_request_id = "coldstart"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + function_name
    def get_remaining_time_in_millis(self):
        return 30000
with open(os.environ["COLDSTART_EVENT"]) as f:
    event = json.load(f)
print(json.dumps(app.app.handler_map["on_alarm_sns"](event, Context())))
"""
TABLE, AUDIT_BUCKET = "alarm-responder-coldstart", "coldstart-audit"
# The floor that also makes one DynamoDB call (a GetItem on the same table): a first event that reads
# and writes the store pays botocore's first-call costs (endpoint rules, signing, parsing) anyway.
FLOOR_ONE_CALL = (f"import boto3; boto3.client('dynamodb', region_name='us-east-1')"
                  f".get_item(TableName={TABLE!r}, Key={{'pk': {{'S': 'coldstart'}}}})")
LINK_KEY_ID = "alarm-responder/prod/ack-link-secret"  # the Secrets Manager name, not a value


# The first event's imports, one step at a time in one interpreter: CPU ms per step, as JSON.
STEPS = """
import json, sys, time
steps = {}
def step(name, action):
    start = time.process_time()
    action()
    steps[name] = (time.process_time() - start) * 1000
step("import app (chalice, observability, gateway)", lambda: __import__("app"))
step("pydantic (the package)", lambda: __import__("pydantic"))
step("pydantic BaseModel and Field (its model machinery)", lambda: __import__("pydantic.fields"))
step("chalicelib.models (the core model classes built)", lambda: __import__("chalicelib.models"))
step("chalicelib.settings (Settings built)", lambda: __import__("chalicelib.settings"))
step("chalicelib.config (config classes)", lambda: __import__("chalicelib.config"))
step("chalicelib.sources.sns", lambda: __import__("chalicelib.sources.sns"))
step("chalicelib.pipeline (decisions, notify, store, playbook executor)", lambda: __import__("chalicelib.pipeline"))
step("chalicelib.handlers (wiring, secrets)", lambda: __import__("chalicelib.handlers"))
from chalicelib import config
step("config.load() (YAML, validation; at the first event)", config.load)
step("botocore (its session module)", lambda: __import__("botocore.session"))
step("the store's DynamoDB client (chalicelib.aws: the shipped data, no boto3)",
     lambda: __import__("chalicelib.store.dynamodb", fromlist=["DynamoStore"]).DynamoStore("t").client)
step("not the first event's: boto3 and a stock DynamoDB client (the floor's)",
     lambda: __import__("boto3").client("dynamodb", region_name="us-east-1"))
print(json.dumps(steps))
"""


def run_once(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall ms, CPU ms) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = (time.perf_counter() - start) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    return wall, cpu


def wall_ms(argv: list[str], runs: int, cwd: Path, env: dict[str, str] | None = None) -> float:
    return round(statistics.median(run_once(argv, cwd, env)[0] for _ in range(runs)), 1)


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


def extract(zip_path: Path, into: Path, swapped: list[str] | None = None) -> Path:
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(into)
    for name in swap_native_extensions(into):
        if swapped is not None and name not in swapped:
            swapped.append(name)
    stamp = 315532800  # 1980-01-01, what Lambda sees for a Chalice zip
    for path in into.rglob("*"):
        os.utime(path, (stamp, stamp))
    return into


def swap_native_extensions(folder: Path) -> list[str]:
    """Replace extension modules built for another machine (the zip's aarch64 ones) by this
    interpreter's build of the same module from the venv; return the zip paths replaced."""
    here = sysconfig.get_config_var("EXT_SUFFIX")  # ".cpython-311-x86_64-linux-gnu.so"
    site = Path(sysconfig.get_paths()["purelib"])
    swapped = []
    for native in sorted(folder.rglob("*.so")):
        if native.name.endswith(here) or f"-{platform.machine()}-" in native.name:
            continue
        stem = native.name.split(".")[0]
        relative = native.parent.relative_to(folder)
        [replacement] = list((site / relative).glob(f"{stem}{here}"))
        shutil.copy2(replacement, native.parent / replacement.name)
        native.unlink()
        swapped.append(str(relative / native.name))
    return swapped


def zip_argv(folder: Path, code: str) -> list[str]:
    return [sys.executable, "-S", "-E", "-B", "-c", f"import sys; sys.path.insert(0, {str(folder)!r}); {code}"]


def zip_env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), **LAMBDA_ENV}


def zip_case(folder: Path, code: str, runs: int) -> float:
    return wall_ms(zip_argv(folder, code), runs, folder, zip_env())


def side_by_side(folder: Path, runs: int) -> dict[str, float]:
    """Floor and first event alternately, so the machine's load falls on both alike."""
    floor, first, shipped = [], [], []
    for _ in range(runs):
        floor.append(run_once(zip_argv(folder, FLOOR), folder, zip_env()))
        first.append(run_once(zip_argv(folder, FIRST_EVENT), folder, zip_env()))
        if (folder / "chalicelib" / "aws_data").is_dir():  # a zip built before chalicelib.aws.new_client has none
            shipped.append(run_once(zip_argv(folder, FLOOR_AS_SHIPPED), folder, zip_env()))
    med = {name: [round(statistics.median(x[i] for x in runs_), 1) for i in (0, 1)]
           for name, runs_ in (("floor", floor), ("first", first), ("shipped", shipped)) if runs_}
    report = {"floor_wall_ms": med["floor"][0], "first_event_wall_ms": med["first"][0],
              "ratio_wall": round(med["first"][0] / med["floor"][0], 3),
              "floor_cpu_ms": med["floor"][1], "first_event_cpu_ms": med["first"][1],
              "ratio_cpu": round(med["first"][1] / med["floor"][1], 3)}
    if "shipped" in med:
        report |= {"floor_as_shipped_cpu_ms": med["shipped"][1],
                   "ratio_cpu_to_floor_as_shipped": round(med["first"][1] / med["shipped"][1], 3)}
    return report


def handled_env(endpoint: str, event: Path) -> dict[str, str]:
    """The prod stage's settings (.chalice/config.json and the merge template), every AWS
    service at ``endpoint``."""
    return {**zip_env(), "AWS_LAMBDA_FUNCTION_NAME": "alarm-responder-prod-on_alarm_sns",
            "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
            "RESPONDER_STAGE": "prod", "RESPONDER_STORE": f"dynamodb://{TABLE}",
            "RESPONDER_LINK_SECRET_ARN": LINK_KEY_ID, "RESPONDER_AUDIT": f"s3://{AUDIT_BUCKET}/audit/",
            "RESPONDER_PUBLIC_URL": "https://abc123.execute-api.us-east-1.amazonaws.com/api",
            "COLDSTART_EVENT": str(event)}


def handled_side_by_side(folder: Path, runs: int) -> dict[str, Any]:
    """Floor and import + first event handled, alternately; each first event a new alarm."""
    import boto3
    import storm  # the sibling benchmark: moto server, table definition, alarm events

    server, endpoint = storm.start_moto()
    try:
        def client(name: str) -> Any:
            return boto3.client(name, endpoint_url=endpoint, region_name="us-east-1")  # storm's fake keys
        storm.create_table(client("dynamodb"), TABLE)
        client("secretsmanager").create_secret(Name=LINK_KEY_ID, SecretString="coldstart-link-key-" + "k" * 32)
        client("s3").create_bucket(Bucket=AUDIT_BUCKET)
        floor: list[tuple[float, float]] = []
        floor_call: list[tuple[float, float]] = []
        first: list[tuple[float, float]] = []
        pages = 0
        with tempfile.TemporaryDirectory() as tmp:
            for n in range(runs):
                event = Path(tmp) / f"event-{n}.json"
                event.write_text(json.dumps(storm.alarm_event(n, f"coldstart-{n}")))
                floor.append(run_once(zip_argv(folder, FLOOR), folder, zip_env()))
                floor_call.append(run_once(zip_argv(folder, FLOOR_ONE_CALL), folder, handled_env(endpoint, event)))
                wall, cpu, out = run_checked(zip_argv(folder, FIRST_EVENT_HANDLED), folder,
                                             handled_env(endpoint, event))
                first.append((wall, cpu))
                answer = json.loads(out.strip().splitlines()[-1])
                pages += sum(int(o.get("pages") or 0) for o in answer["outcomes"])
    finally:
        server.terminate()
        server.wait()
    med = {name: [round(statistics.median(x[i] for x in runs_), 1) for i in (0, 1)]
           for name, runs_ in (("floor", floor), ("floor_call", floor_call), ("first", first))}
    return {"floor_wall_ms": med["floor"][0], "first_event_handled_wall_ms": med["first"][0],
            "ratio_wall": round(med["first"][0] / med["floor"][0], 3),
            "floor_cpu_ms": med["floor"][1], "first_event_handled_cpu_ms": med["first"][1],
            "ratio_cpu": round(med["first"][1] / med["floor"][1], 3),
            "floor_with_one_call_cpu_ms": med["floor_call"][1],
            "ratio_cpu_to_floor_with_one_call": round(med["first"][1] / med["floor_call"][1], 3),
            "runs": runs, "pages_sent": pages}


def run_checked(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """(wall ms, CPU ms, stdout) of one child process that must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    wall = (time.perf_counter() - start) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode:
        raise SystemExit(f"first event failed: {result.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    return wall, cpu, result.stdout


def steps(folder: Path, runs: int) -> dict[str, float]:
    """CPU ms of each step of the first event's imports (median over runs), in import order."""
    results = []
    for _ in range(runs):
        out = subprocess.run(zip_argv(folder, STEPS), cwd=folder, env=zip_env(), check=True,
                             capture_output=True, text=True).stdout
        results.append(json.loads(out))
    return {name: round(statistics.median(r[name] for r in results), 1) for name in results[0]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--zips", type=Path, help="folder with deployment.zip and deployment-no-pyc.zip")
    parser.add_argument("--only", choices=("side-by-side", "handled"),
                        help="only this part, from the shipped zip (needs --zips; the others are skipped)")
    args = parser.parse_args()
    report: dict[str, object] = {}
    if args.only is None:
        report["venv"] = venv_report(args.runs)
    if args.zips:
        with tempfile.TemporaryDirectory() as tmp:
            swapped: list[str] = []
            compiled = extract(args.zips / "deployment.zip", Path(tmp) / "compiled", swapped)
            if args.only is None:
                plain = extract(args.zips / "deployment-no-pyc.zip", Path(tmp) / "plain", swapped)
                for name, folder in (("zip_without_pyc", plain), ("zip_with_unchecked_hash_pyc", compiled)):
                    report[name] = {"import_app_ms": zip_case(folder, IMPORT_APP, args.runs),
                                    "first_event_imports_ms": zip_case(folder, FIRST_EVENT, args.runs),
                                    "boto3_client_floor_ms": zip_case(folder, FLOOR, args.runs)}
            report["native_extensions_swapped_for_this_machine"] = swapped
            if args.only in (None, "side-by-side"):
                report["side_by_side"] = side_by_side(compiled, args.runs)
                report["first_event_cpu_ms_by_step"] = steps(compiled, args.runs)
            if args.only in (None, "handled"):
                report["first_event_handled"] = handled_side_by_side(compiled, args.runs)
    print(json.dumps(report, indent=2))


def venv_report(runs: int) -> dict[str, float]:
    env = dict(os.environ, **LAMBDA_ENV)
    subprocess.run([sys.executable, "-c", FIRST_EVENT], cwd=ROOT, env=env, check=True)  # warm the .pyc cache
    bare = wall_ms([sys.executable, "-c", "pass"], runs, ROOT, env)
    floor = wall_ms([sys.executable, "-c", FLOOR], runs, ROOT, env)
    app = wall_ms([sys.executable, "-c", IMPORT_APP], runs, ROOT, env)
    return {"bare_python_ms": bare, "boto3_client_floor_ms": floor, "import_app_ms": app,
            "ratio_import_app_to_floor": round(app / floor, 3),
            "importtime_import_app_ms": importtime_ms(IMPORT_APP, ROOT),
            "importtime_floor_ms": importtime_ms(FLOOR, ROOT)}


if __name__ == "__main__":
    main()
