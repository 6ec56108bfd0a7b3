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
"""

from __future__ import annotations

import compileall
import fnmatch
import py_compile
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

# Never deployed: bytecode from the work tree, and what editors, merges and macOS leave behind.
LITTER_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", ".git"}
LITTER_FILES = ("*.pyc", "*.pyo", "*~", "*.swp", "*.swo", "*.orig", "*.rej", ".DS_Store", "*.bak")


def is_litter(name: str) -> bool:
    path = PurePosixPath(name)
    return bool(LITTER_DIRS & set(path.parts[:-1])) or any(fnmatch.fnmatch(path.name, p) for p in LITTER_FILES)


def compile_config(config_dir: Path) -> None:
    """Validate the zip's config files with this project's code (the zip's own native modules are
    built for Lambda's architecture and may not load here) and write them beside the files."""
    project = str(Path(__file__).resolve().parent.parent)
    if project not in sys.path:
        sys.path.insert(0, project)
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
