"""`bash scripts/demo` in a clean clone: it runs, the same input gives the same output, it uses
its own store and says so, and a rerun keeps (not deletes) what the last run left."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def _clone(into: Path) -> Path:
    skip = shutil.ignore_patterns(".git", ".venv", ".venv-demo", ".responder", "test-artifacts", "__pycache__",
                                  ".*_cache", "out", "build")
    return Path(shutil.copytree(ROOT, into / "clone", ignore=skip))


def _demo(clone: Path) -> subprocess.CompletedProcess[str]:
    # The test's interpreter has requirements.txt; the demo would otherwise install .venv-demo.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RESPONDER_", "AWS_"))}
    env |= {"DEMO_PYTHON": sys.executable, "RESPONDER_STORE": "sqlite:///somewhere-else.db"}
    bash = shutil.which("bash") or "/bin/bash"
    return subprocess.run([bash, "scripts/demo"], cwd=clone, env=env, capture_output=True, text=True, timeout=600)


def _comparable(output: str) -> str:
    """The output without what differs by design: ack-link tokens (a random nonce each)."""
    return re.sub(r"/ack/[A-Za-z0-9_.-]+", "/ack/<link>", output)


def test_demo_twice_same_output_own_store_nothing_lost(tmp_path: Path) -> None:
    clone = _clone(tmp_path)
    mine = clone / ".responder" / "state.db"
    mine.parent.mkdir()
    mine.write_bytes(b"the user's own store")
    first = _demo(clone)
    assert first.returncode == 0, first.stderr[-3000:]
    out = first.stdout
    assert "== Store: sqlite:///.responder/demo/state.db (the demo's own; .responder/state.db is not touched)" in out
    assert "SEV1  open" in out and "acknowledged by" in out and "\npages (" in out and "\ntimeline\n" in out
    assert "export RESPONDER_STAGE=local RESPONDER_STORE=sqlite:///.responder/demo/state.db" in out
    assert "export RESPONDER_PUBLIC_URL=http://127.0.0.1:8000" in out
    assert 'export RESPONDER_LINK_SECRET="$(cat .responder/demo/link-secret)"' in out
    assert not (clone / "somewhere-else.db").exists()  # the shell's RESPONDER_STORE does not leak in

    (clone / ".responder" / "demo" / "my-notes").write_text("what I did after the demo")
    second = _demo(clone)
    assert second.returncode == 0, second.stderr[-3000:]
    moved = "   the last demo run's store, with anything you did in it, is now in .responder/demo.previous/\n"
    assert moved in second.stdout
    assert (clone / ".responder" / "demo.previous" / "my-notes").read_text() == "what I did after the demo"
    assert _comparable(second.stdout.replace(moved, "")) == _comparable(out)
    assert _comparable(second.stderr) == _comparable(first.stderr)
    assert mine.read_bytes() == b"the user's own store"
