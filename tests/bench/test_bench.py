"""``hubbub bench`` against a real server: it counts deliveries, sees no loss
where there is none, and its ``--json`` output parses. Never asserts speed."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest

from hubbub.bench import BenchConfig, run_scenarios
from hubbub.bench.report import QuietUi
from support import SECRET

# small enough for the default per-connection rate limit (20 frames/s, burst 50)
TINY = {"connections": 6, "rates": [10.0], "duration": 1.0, "drain": 2.0, "sample": 2}


def config(server: str, **extra: object) -> BenchConfig:
    options = {**TINY, **extra}
    return BenchConfig(url=f"ws://{server}/ws", secret=SECRET, **options)  # type: ignore[arg-type]


async def test_fanout_counts_every_delivery(server: str) -> None:
    cfg = config(server, fixed_deliveries=30.0, server_pids=[os.getpid()])
    results = await run_scenarios(cfg, ["s1"], QuietUi())
    s1 = results["s1"]
    assert "error" not in s1, s1
    steps = [s1["fixed"], *s1["steps"]]
    for step in steps:
        published = round(step["published_rate"] * cfg.duration)
        assert step["delivered"] >= cfg.connections * (published - 1)
        assert step["lost"] == 0
        assert step["duplicated"] == 0
        assert step["closed"] == 0
        assert step["samples"] > 0
        assert step["server_us_per_delivery"] is not None
    assert s1["steps"][0]["delivered"] > 0


async def test_chat_idle_and_connect(server: str) -> None:
    cfg = config(server, rooms=2, room_size=3, rates=[6.0], server_pids=[os.getpid()])
    results = await run_scenarios(cfg, ["s2", "s3", "s4"], QuietUi())
    assert all("error" not in r for r in results.values()), results
    step = results["s2"]["steps"][0]
    assert step["delivered"] > 0
    assert step["lost"] == 0
    assert step["duplicated"] == 0
    assert results["s3"]["open_after_settle"] == cfg.connections
    assert "server_rss_kb_per_connection" in results["s3"]
    assert results["s4"]["succeeded"] == cfg.connections
    assert results["s4"]["latency_ms"]["p99"] is not None


@pytest.mark.slow
async def test_cli_json_output_parses(server: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hubbub.cli", "bench",
        "--url", f"ws://{server}/ws", "--scenario", "s1,s4",
        "-n", "4", "--rates", "5", "--duration", "1", "--fixed", "20",
        "--server-pid", str(os.getpid()), "--json",
        env={**os.environ, "HUBBUB_SECRET": SECRET},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode == 0, err.decode()
    document = json.loads(out)
    assert document["config"]["authenticated"] is True
    assert "secret" not in document["config"]
    s1 = document["results"]["s1"]
    assert s1["steps"][0]["delivered"] > 0
    assert s1["steps"][0]["lost"] == 0
    assert document["results"]["s4"]["succeeded"] == 4


def test_help() -> None:
    from click.testing import CliRunner

    from hubbub.cli import main

    result = CliRunner().invoke(main, ["bench", "--help"])
    assert result.exit_code == 0
    assert "--server-pid" in result.output
