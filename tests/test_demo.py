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
from tests.test_http_local import _free_port, _http, _start_chalice_local, _stop


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
    return re.sub(r"ack link [0-9a-f]+", "ack link <id>", re.sub(r"/ack/[A-Za-z0-9_.-]+", "/ack/<link>", output))


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


def test_your_turn_hints_give_a_working_ack_link(tmp_path: Path) -> None:
    """Paste the demo's exports, replay without --now, open the printed link in `chalice local`."""
    clone = _clone(tmp_path)
    demo = _demo(clone)
    assert demo.returncode == 0, demo.stderr[-3000:]
    exports = [line.strip() for line in demo.stdout.splitlines() if line.startswith("  export ")]
    assert len(exports) == 4
    (clone / "exports.sh").write_text("\n".join(exports) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RESPONDER_", "AWS_", "SENTRY_"))}
    bash = shutil.which("bash") or "/bin/bash"
    shell = (f'set -e; source exports.sh; "{sys.executable}" -m chalicelib replay '
             "examples/events/rds-db-instance-event-failover.json; env | grep -E '^(RESPONDER|SENTRY)_' > exported.env")
    replayed = subprocess.run([bash, "-c", shell], cwd=clone, env=env, capture_output=True, text=True, timeout=120)
    assert replayed.returncode == 0, replayed.stderr
    [link] = re.findall(r"ack: (http://127\.0\.0\.1:8000/ack/\S+)", replayed.stderr)
    exported = dict(line.split("=", 1) for line in (clone / "exported.env").read_text().splitlines())
    # the hints' `chalice local --stage local`, on a free port instead of 8000
    port = _free_port()
    process = _start_chalice_local(clone, {**env, **exported, "PYTHONPATH": str(clone)}, port,
                                   tmp_path / "chalice.log", "--stage", "local")
    try:
        here = link.replace("http://127.0.0.1:8000", f"http://127.0.0.1:{port}")
        status, page = _http(here)
        assert status == 200 and "Acknowledge this incident?" in page
        status, page = _http(here, form=True)
        assert status == 200 and "<h1>Acknowledged</h1>" in page, page
    finally:
        _stop(process)
