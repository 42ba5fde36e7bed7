"""Several hubbub nodes on one private redis-server, for the scaling and fault tests.

Two kinds of node:

* in-process: ``Hub(engine=...)`` under its own uvicorn (:func:`nodes`), cheap and
  inspectable (``hub.publish``, ``hub.disconnect_user``);
* subprocess: ``hubbub serve --engine redis://…`` (:func:`hubbub_serve`), the real
  command, which a test can SIGKILL; its stderr goes to a file the test can read.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from hubbub.auth import issue_token
from hubbub.engines.redis import RedisEngine
from hubbub.hub import Hub
from support import SECRET, free_port, serve

HUBBUB = str(Path(sys.executable).with_name("hubbub"))
API_KEY = "test-api-key"


def token(user: str, **claims: Any) -> str:
    return issue_token(SECRET, user, **claims)


def fast_engine(url: str, **options: Any) -> RedisEngine:
    """A Redis engine that notices a dead Redis and reconnects within about a second."""
    options.setdefault("min_backoff", 0.05)
    options.setdefault("max_backoff", 0.3)
    options.setdefault("ping_interval", 1.0)
    options.setdefault("command_timeout", 1.0)
    return RedisEngine(url, **options)


@dataclass
class Node:
    hub: Hub
    address: str

    @property
    def http(self) -> str:
        return f"http://{self.address}"


@contextlib.asynccontextmanager
async def nodes(
    url: str, count: int, *, fast: bool = False, **options: Any
) -> AsyncIterator[list[Node]]:
    """``count`` in-process hubs on the Redis at ``url``, each under its own uvicorn."""
    async with contextlib.AsyncExitStack() as stack:
        started: list[Node] = []
        for _ in range(count):
            engine: Any = fast_engine(url) if fast else url
            hub = Hub(engine=engine, secret=SECRET, api_key=API_KEY, **options)
            stack.push_async_callback(hub.close)
            address = await stack.enter_async_context(serve(hub.asgi, hub))
            started.append(Node(hub, address))
        yield started


async def ready(node: Node | str) -> int:
    """``GET /ready``'s status code (0 when the node does not answer)."""
    base = node.http if isinstance(node, Node) else f"http://{node}"
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            return (await http.get(f"{base}/ready")).status_code
    except httpx.HTTPError:
        return 0


async def wait_ready(node: Node | str, status: int, *, within: float = 10.0) -> float:
    """Wait until ``/ready`` answers ``status``; how long that took."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while (code := await ready(node)) != status:
        if loop.time() - started > within:
            raise AssertionError(f"/ready stayed {code}, expected {status}")
        await asyncio.sleep(0.05)
    return loop.time() - started


@dataclass
class Served:
    """A ``hubbub serve`` subprocess (in its own process group)."""

    process: subprocess.Popen[bytes]
    address: str
    log: Path

    @property
    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole node (with ``--workers``, the supervisor and every worker)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


@contextlib.contextmanager
def hubbub_serve(*args: str, log_dir: Path, wait: str = "/health", **env: str) -> Iterator[Served]:
    """Run ``hubbub serve --port <free> *args``; returns once ``wait`` answers 200."""
    port = free_port()
    log = log_dir / f"hubbub-{port}.log"
    environment = {
        **os.environ,
        "HUBBUB_SECRET": SECRET,
        "HUBBUB_API_KEY": API_KEY,
        "HUBBUB_DEMO": "false",
        **env,
    }
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [HUBBUB, "serve", "--port", str(port), *args],
            env=environment,
            stdout=stderr,
            stderr=stderr,
            start_new_session=True,  # its own process group: kill() reaches the workers
        )
    served = Served(process, f"127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 15
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"hubbub serve exited:\n{served.stderr}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://{served.address}{wait}", timeout=0.5).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"hubbub serve did not answer {wait}:\n{served.stderr}")
            time.sleep(0.05)
        yield served
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                served.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # orphaned workers, if any
