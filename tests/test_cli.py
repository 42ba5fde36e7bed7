"""The ``hubbub`` command: token, serve's refusals, and one real server process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from hubbub.auth import TokenVerifier, issue_token
from hubbub.cli import main
from hubbub.core.protocol import parse_raw
from support import client, free_port

SECRET = "cli-test-secret-that-is-long-enough-for-hs256"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("HUBBUB_"):
            monkeypatch.delenv(name)


def test_token() -> None:
    result = CliRunner().invoke(
        main,
        [
            "token",
            "--user",
            "alice",
            "--ttl",
            "60",
            "--channels",
            "chat:*, news:*",
            "--info",
            '{"n":1}',
        ],
        env={"HUBBUB_SECRET": SECRET},
    )
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    credentials = TokenVerifier(secret=SECRET).connection(token)
    assert credentials.user == "alice"
    assert credentials.channels == ("chat:*", "news:*")
    assert credentials.info is not None
    assert parse_raw(credentials.info) == {"n": 1}
    assert credentials.expires_at is not None
    assert abs(credentials.expires_at - (time.time() + 60)) < 5


def test_token_secret_from_config_file(tmp_path: Path) -> None:
    config = tmp_path / "hubbub.toml"
    config.write_text(f'[hub]\nsecret = "{SECRET}"\n')
    result = CliRunner().invoke(main, ["token", "--user", "bob", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert TokenVerifier(secret=SECRET).connection(result.stdout.strip()).user == "bob"


def test_token_without_secret() -> None:
    result = CliRunner().invoke(main, ["token", "--user", "alice"])
    assert result.exit_code != 0
    assert "no secret configured" in result.output
    assert "HUBBUB_SECRET" in result.output
    assert "Traceback" not in result.output


def test_token_bad_info() -> None:
    result = CliRunner().invoke(
        main, ["token", "--user", "a", "--info", "{nope"], env={"HUBBUB_SECRET": SECRET}
    )
    assert result.exit_code != 0
    assert "--info" in result.output
    assert "not JSON" in result.output


def test_serve_refuses_workers_with_memory_engine() -> None:
    result = CliRunner().invoke(main, ["serve", "--workers", "2"])
    assert result.exit_code != 0
    assert "memory engine" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "env", "words"),
    [
        (["serve", "--port", "70000"], {}, "port"),
        (["serve"], {"HUBBUB_RATE_LIMIT": "fast"}, "rate_limit"),
        (["serve", "--engine", "kafka://x"], {}, "kafka"),
        (["token", "--user", "a"], {"HUBBUB_MAX_QUEUE_BYTES": "1"}, "max_queue_bytes"),
    ],
)
def test_config_errors_are_one_line(args: list[str], env: dict[str, str], words: str) -> None:
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    assert words in lines[0]


def test_bad_config_file_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "hubbub.toml"
    config.write_text("[namespaces.news]\nhistory_size = -1.5\n")
    result = CliRunner().invoke(main, ["serve", "--config", str(config)])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "namespaces.news" in lines[0]
    assert "history_size" in lines[0]


@pytest.mark.slow
async def test_serve_process_development_mode_and_sigterm(tmp_path: Path) -> None:
    port = free_port()
    hubbub = Path(sys.executable).parent / "hubbub"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUBBUB_")}
    process = await asyncio.create_subprocess_exec(
        str(hubbub),
        "serve",
        "--port",
        str(port),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    assert process.stderr is not None
    stderr: list[str] = []

    async def drain() -> None:
        assert process.stderr is not None
        async for line in process.stderr:
            stderr.append(line.decode())

    draining = asyncio.create_task(drain())
    try:
        address = f"127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            async with asyncio.timeout(8):
                while True:
                    assert process.returncode is None, "".join(stderr)
                    with contextlib.suppress(httpx.TransportError):
                        if (await http.get("/health")).status_code == 200:
                            break
                    await asyncio.sleep(0.05)
        banner = "".join(stderr)
        assert "DEVELOPMENT MODE" in banner
        assert "[hub] secret/api_key" in banner  # not eaten as console markup
        secret = re.search(r"secret\s+=\s+(\S+)", banner)
        api_key = re.search(r"api_key\s+=\s+(\S+)", banner)
        assert secret is not None, banner
        assert api_key is not None, banner
        async with client(address, token=issue_token(secret.group(1), "alice")) as c:
            assert c.welcome["user"] == "alice"  # type: ignore[attr-defined]
            await c.ok("subscribe", channel="chat:lobby")
            await c.ok("publish", channel="chat:lobby", data={"hello": "world"})
            assert (await c.next("message"))["data"] == {"hello": "world"}
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            assert await c.closed(timeout=5) == 1012
        assert await asyncio.wait_for(process.wait(), 8) == 0, "".join(stderr)
        assert time.monotonic() - started < 6
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await draining
