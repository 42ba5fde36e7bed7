"""A private ``redis-server`` for tests: a free port, a temp dir, no persistence.

Tests never touch a shared Redis (such as the one on 6379): each server here
is started by the test session (or by one test that kills and restarts it)
with ``--save "" --appendonly no``, so a restart loses every key, exactly like
a production Redis without persistence.

When ``redis-server`` is not installed the tests that need it are skipped,
except in CI (``CI=true``), where a missing server is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from support import free_port

__all__ = ["RedisServer", "redis_server_binary", "running_redis"]

STARTUP_TIMEOUT = 10.0


def redis_server_binary() -> str:
    """Path of ``redis-server``; skips the test (fails it in CI) when missing."""
    path = shutil.which("redis-server")
    if path is None:
        reason = "redis-server is not installed"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"missing dependency in CI: {reason}")
        pytest.skip(reason)
    return path


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process on ``port`` that can be stopped, killed and
    started again on the same port (with an empty dataset)."""

    def __init__(self, binary: str, port: int, directory: Path) -> None:
        self.binary = binary
        self.port = port
        self.directory = directory
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        assert not self.running, "already running"
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        self._process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.directory
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _ping(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                log = self.directory / "redis.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                self.stop()
                pytest.fail(f"redis-server did not start on port {self.port}:\n{tail}")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL: the process dies at once, like a crashed Redis."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait(timeout=10)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@contextmanager
def running_redis(port: int | None = None, *, start: bool = True) -> Iterator[RedisServer]:
    """A server on ``port`` (a free one by default) in its own temp dir,
    stopped on exit. ``start=False`` only reserves the port and directory."""
    binary = redis_server_binary()
    with tempfile.TemporaryDirectory(prefix="hubbub-redis-") as directory:
        server = RedisServer(binary, port or free_port(), Path(directory))
        if start:
            server.start()
        try:
            yield server
        finally:
            server.stop()
