"""The Autobahn|Testsuite fuzzer (``wstest -m fuzzingclient``, cases 1.* to 10.*)
against an echo app served as ``hubbub serve`` serves: hubbub's HTTP protocol
handing the parsed upgrade to hubbub's WebSocket protocol. ``scripts/autobahn.sh``
runs it (and the compression cases, and uvicorn's own protocols for comparison);
results in ``benchmarks/results/autobahn.md``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from support import require

ROOT = Path(__file__).resolve().parents[2]
PYTHON2 = [
    shutil.which("python2.7"),
    os.path.expanduser("~/.pyenv/versions/2.7.18/bin/python"),
]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_autobahn_fuzzingclient_finds_no_failure() -> None:
    python2 = next((p for p in PYTHON2 if p and os.access(p, os.X_OK)), None)
    require(python2 is not None, "Autobahn|Testsuite needs Python 2.7 (pyenv 2.7.18)")
    assert python2 is not None
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "autobahn.sh"), "--worktree", "hubbub-http"],
        env={**os.environ, "PYTHON2": python2},
        capture_output=True,
        text=True,
        timeout=880,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    # 301 cases; none FAILED (7.1.5 used to be), the behaviour line lists every kind
    assert "== hubbub-http: 301 cases" in output, output[-4000:]
    assert "FAILED 0" in output.split("behavior:", 1)[1].splitlines()[0], output[-4000:]
