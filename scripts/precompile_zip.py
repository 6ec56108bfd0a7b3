"""Add precompiled bytecode to a Chalice deployment zip, and drop work-tree litter (run by scripts/package).

Chalice ships no .pyc of its own and stamps every zip entry 1980-01-01, so Lambda would compile
every module on every cold start (timestamp-checked .pyc files never match those mtimes). Bytecode
compiled with ``--invalidation-mode unchecked-hash`` is used without looking at mtimes.
Compile with the Lambda runtime's Python minor version (3.11 here): bytecode is per version.

Chalice copies ``chalicelib/`` as it finds it in the work tree, so its ``__pycache__`` folders
(timestamp .pyc of any Python version, orphans of moved modules) and editor or merge leftovers
ride along. They are dropped before compiling: every .pyc in the result is one this script
compiled from a source beside it.

The shipped config is added pre-validated (``chalicelib.config.COMPILED``): the first event
then skips YAML parsing and building the config classes' validators.

So is the AWS data the app's own clients need (``chalicelib.aws.SHIPPED_OPERATIONS``), cut from the
zip's own ``botocore/data`` so it always matches the shipped botocore: each service's model with
only the operations called and the shapes they reach (no documentation), its endpoint rules, and
endpoints.json with every partition but only those services, all as plain JSON.
"""

from __future__ import annotations

import compileall
import fnmatch
import gzip
import json
import py_compile
import re
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

# Never deployed: bytecode from the work tree, and what editors, merges and macOS leave behind.
LITTER_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", ".git"}
LITTER_FILES = ("*.pyc", "*.pyo", "*~", "*.swp", "*.swo", "*.orig", "*.rej", ".DS_Store", "*.bak")


def is_litter(name: str) -> bool:
    path = PurePosixPath(name)
    return bool(LITTER_DIRS & set(path.parts[:-1])) or any(fnmatch.fnmatch(path.name, p) for p in LITTER_FILES)


def _project_on_path() -> None:
    project = str(Path(__file__).resolve().parent.parent)
    if project not in sys.path:
        sys.path.insert(0, project)


def _read_json(stem: Path) -> Any:
    """botocore's ``name.json`` or ``name.json.gz``."""
    for suffix, opener in ((".json", open), (".json.gz", gzip.open)):
        path = stem.with_name(stem.name + suffix)
        if path.is_file():
            with opener(path, "rb") as f:  # type: ignore[operator]
                return json.loads(f.read())
    raise FileNotFoundError(f"{stem}.json(.gz)")


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")


def _reached_shapes(shapes: dict[str, Any], roots: set[str]) -> set[str]:
    reached: set[str] = set()
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in reached:
            continue
        reached.add(name)
        shape = shapes[name]
        pending += [shape[part]["shape"] for part in ("member", "key", "value") if part in shape]
        pending += [member["shape"] for member in shape.get("members", {}).values()]
    return reached


def trim_service_model(model: dict[str, Any], operations: tuple[str, ...]) -> dict[str, Any]:
    """The model with only ``operations`` and the shapes their input, output and errors reach."""
    kept = {name: _undocumented(model["operations"][name]) for name in operations}  # KeyError: not in this botocore
    roots = {op[part]["shape"] for op in kept.values() for part in ("input", "output") if part in op}
    roots |= {error["shape"] for op in kept.values() for error in op.get("errors", ())}
    shapes = model["shapes"]
    trimmed = {name: _undocumented(shapes[name]) for name in sorted(_reached_shapes(shapes, roots))}
    for shape in trimmed.values():
        if "members" in shape:
            shape["members"] = {name: _undocumented(member) for name, member in shape["members"].items()}
    return {**model, "operations": kept, "shapes": trimmed, "documentation": ""}


def _undocumented(part: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in part.items() if key != "documentation"}


def ship_aws_data(botocore_data: Path, into: Path, boto3_version: str,
                  operations: dict[str, tuple[str, ...]] | None = None) -> list[str]:
    """Write the trimmed data ``chalicelib.aws.new_client`` loads, and the shipped boto3's version
    (its clients' user agent names it); return the services written."""
    if operations is None:
        _project_on_path()
        from chalicelib.aws import SHIPPED_OPERATIONS as operations
    shutil.rmtree(into, ignore_errors=True)  # a copy left in the work tree would ride along, maybe stale
    for service, wanted in sorted(operations.items()):
        version = max(p.name for p in (botocore_data / service).iterdir() if p.is_dir())  # botocore's latest
        folder = botocore_data / service / version
        model = _read_json(folder / "service-2")
        _write_json(into / service / version / "service-2.json", trim_service_model(model, wanted))
        _write_json(into / service / version / "endpoint-rule-set-1.json", _read_json(folder / "endpoint-rule-set-1"))
    endpoints = _read_json(botocore_data / "endpoints")
    for partition in endpoints["partitions"]:
        partition["services"] = {k: v for k, v in partition["services"].items() if k in operations}
    _write_json(into / "endpoints.json", endpoints)
    for name in ("partitions", "sdk-default-configuration", "_retry"):
        _write_json(into / f"{name}.json", _read_json(botocore_data / name))
    (into / "boto3-version").write_text(boto3_version + "\n", encoding="ascii")
    return sorted(operations)


def shipped_version(package: Path) -> str:
    """``__version__`` as the package's ``__init__.py`` assigns it."""
    found = re.search(r"^__version__ = ['\"]([^'\"]+)['\"]", (package / "__init__.py").read_text(), re.MULTILINE)
    if found is None:
        raise SystemExit(f"{package}: no __version__")
    return found.group(1)


def compile_config(config_dir: Path) -> None:
    """Validate the zip's config files with this project's code (the zip's own native modules are
    built for Lambda's architecture and may not load here) and write them beside the files."""
    _project_on_path()
    from chalicelib import config

    config.compile_to(config_dir, config_dir / config.COMPILED)


def precompile(source: Path, target: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with zipfile.ZipFile(source) as archive:
            archive.extractall(root, members=[m for m in archive.namelist() if not is_litter(m)])
        config_dir = root / "chalicelib" / "config"
        if (config_dir / "severity.yaml").exists():
            compile_config(config_dir)
        if (root / "botocore" / "data").is_dir():
            ship_aws_data(root / "botocore" / "data", root / "chalicelib" / "aws_data", shipped_version(root / "boto3"))
        compileall.compile_dir(root, quiet=1, workers=0, legacy=False,
                               invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        count = 0
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    info = zipfile.ZipInfo(str(path.relative_to(root)), date_time=(1980, 1, 1, 0, 0, 0))
                    info.external_attr = (0o755 if path.stat().st_mode & 0o111 else 0o644) << 16
                    info.compress_type = zipfile.ZIP_DEFLATED
                    out.writestr(info, path.read_bytes())
                    count += path.suffix == ".pyc"
        return count


if __name__ == "__main__":
    if sys.version_info[:2] != (3, 11):
        raise SystemExit("compile with Python 3.11, the Lambda runtime's version")
    zip_in = Path(sys.argv[1])
    zip_out = Path(sys.argv[2]) if len(sys.argv) > 2 else zip_in
    temporary = zip_out.with_suffix(".tmp.zip")
    pycs = precompile(zip_in, temporary)
    shutil.move(temporary, zip_out)
    print(f"{zip_out}: {pycs} .pyc files (unchecked-hash)")
