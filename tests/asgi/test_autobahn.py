"""The Autobahn|Testsuite fuzzer (``wstest -m fuzzingclient``, cases 1.* to 10.*)
against an echo app served as ``hubbub serve`` serves: hubbub's HTTP protocol
handing the parsed upgrade to hubbub's WebSocket protocol. ``scripts/autobahn.sh``
runs it (and the compression cases, and uvicorn's own protocols for comparison);
results in ``benchmarks/results/autobahn.md``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from support import require

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_autobahn_fuzzingclient_finds_no_failure() -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "autobahn.sh"), "--worktree", "hubbub-http"],
        capture_output=True,
        text=True,
        timeout=880,
        check=False,
    )
    output = result.stdout + result.stderr
    # the script finds Python 2.7 itself (python2.7, pyenv's 2.7.18 or $PYTHON2)
    require(
        "no Python 2.7 found" not in output,
        "Autobahn|Testsuite needs Python 2.7 (pyenv 2.7.18)",
    )
    assert result.returncode == 0, output[-4000:]
    # 301 cases; none FAILED (7.1.5 used to be), the behaviour line lists every kind
    assert "== hubbub-http: 301 cases" in output, output[-4000:]
    assert "FAILED 0" in output.split("behavior:", 1)[1].splitlines()[0], output[-4000:]
