"""`hubbub serve --data-dir`: acknowledged history survives SIGKILL and SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hubbub.auth import issue_token
from support import SECRET, client, free_port

pytestmark = pytest.mark.slow

HUBBUB = str(Path(sys.executable).with_name("hubbub"))


@contextlib.contextmanager
def hubbub_serve(*args: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    env = {**os.environ, "HUBBUB_SECRET": SECRET}
    proc = subprocess.Popen(
        [HUBBUB, "serve", "--port", str(port), "--log-level", "warning", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "exited")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://{address}/health", timeout=0.5).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError("hubbub serve did not start")
            time.sleep(0.05)
        yield proc, address
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if proc.stderr:
            proc.stderr.close()


async def publish_and_read(address: str, count: int) -> tuple[list[int], str]:
    async with client(address, token=issue_token(SECRET, "writer")) as c:
        acked = [
            (await c.ok("publish", channel="log", data={"n": i}))["offset"] for i in range(count)
        ]
        history = await c.ok("history", channel="log")
        assert [p["offset"] for p in history["publications"]][-count:] == acked
        return acked, history["epoch"]


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM])
async def test_history_survives_a_restart(tmp_path: Path, stop: signal.Signals) -> None:
    data_dir = str(tmp_path / "data")
    with hubbub_serve("--data-dir", data_dir) as (proc, address):
        acked, epoch = await publish_and_read(address, 20)
        proc.send_signal(stop)
        assert proc.wait(10) == (0 if stop == signal.SIGTERM else -signal.SIGKILL)
    with hubbub_serve("--data-dir", data_dir) as (_, address):
        async with client(address, token=issue_token(SECRET, "reader")) as c:
            history = await c.ok("history", channel="log")
            assert history["epoch"] == epoch
            assert [p["offset"] for p in history["publications"]] == acked
            assert [p["data"]["n"] for p in history["publications"]] == list(range(20))
            assert history["publications"][0]["info"]["user"] == "writer"
            assert (await c.ok("publish", channel="log", data={}))["offset"] == 21


async def test_without_data_dir_a_restart_gives_a_new_epoch() -> None:
    with hubbub_serve() as (proc, address):
        _, epoch = await publish_and_read(address, 3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    with hubbub_serve() as (_, address):
        async with client(address, token=issue_token(SECRET, "reader")) as c:
            ack = await c.ok("subscribe", channel="log", since={"offset": 3, "epoch": epoch})
            assert ack["recovered"] is False
            assert ack["epoch"] != epoch
            assert ack["offset"] == 0


def test_a_corrupt_data_dir_refuses_to_start(tmp_path: Path) -> None:
    (tmp_path / "history.sqlite3").write_bytes(b"this is not a database" * 100)
    env = {**os.environ, "HUBBUB_SECRET": SECRET}
    proc = subprocess.run(
        [HUBBUB, "serve", "--port", str(free_port()), "--data-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        timeout=30,
    )
    assert proc.returncode != 0
    assert "history.sqlite3" in proc.stderr.decode()
