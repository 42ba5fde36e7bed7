"""Test support: a real uvicorn server on a free port and a real WebSocket client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from hubbub.asgi.serve import uvicorn_options
from hubbub.hub import Hub

SECRET = "test-secret-with-at-least-32-bytes!!"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def require(condition: bool, reason: str) -> None:
    """Skip when a dependency is missing, except in CI, where that is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"missing dependency in CI: {reason}")
    pytest.skip(reason)


async def start_uvicorn(
    app: Any, options: dict[str, Any]
) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    """Start uvicorn in this event loop; return it, its task and the bound port."""
    server = uvicorn.Server(uvicorn.Config(app, **options))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server stopped during start-up")
        await asyncio.sleep(0.01)
    port: int = server.servers[0].sockets[0].getsockname()[1]
    return server, task, port


@contextlib.asynccontextmanager
async def serve(app: Any, hub: Hub | None = None, **overrides: Any) -> AsyncIterator[str]:
    """Run ``app`` under uvicorn on 127.0.0.1:<free port>; yields ``host:port``."""
    options = uvicorn_options(hub.settings) if hub is not None else {"lifespan": "on"}
    options.update(host="127.0.0.1", port=0, log_level="warning", **overrides)
    server, task, port = await start_uvicorn(app, options)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


class LiveServer:
    """uvicorn serving one hub, which can be stopped and started again on the same
    port while the hub (and its memory engine's history) lives on."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    async def start(self) -> None:
        options = uvicorn_options(self.hub.settings)
        # lifespan off: stopping uvicorn must not close the hub (it is "restarted")
        options.update(host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server, self._task, self.port = await start_uvicorn(self.hub.asgi, options)

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await asyncio.wait_for(self._task, 15)
        self._server = self._task = None


class Client:
    """A protocol v1 test client over a real ``websockets`` connection."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self._ids = 0

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def _read(self, timeout: float) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        frames = [json.loads(line) for line in str(raw).split("\n")]
        self.frames.extend(frames[1:])
        return frames[0]  # type: ignore[no-any-return]

    async def next(self, kind: str | None = None, *, timeout: float = 5.0) -> dict[str, Any]:
        """The next frame (of ``kind``), keeping others for later calls."""
        for i, frame in enumerate(self.frames):
            if kind is None or frame.get("type") == kind:
                return self.frames.pop(i)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self._read(max(0.01, deadline - loop.time()))
            if kind is None or frame.get("type") == kind:
                return frame
            self.frames.append(frame)

    async def request(self, kind: str, *, timeout: float = 5.0, **fields: Any) -> dict[str, Any]:
        """Send a command with a fresh id; return its ack or error."""
        self._ids += 1
        my_id = self._ids
        await self.send({"type": kind, "id": my_id, **fields})
        for i, frame in enumerate(self.frames):
            if frame.get("id") == my_id:
                return self.frames.pop(i)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self._read(max(0.01, deadline - loop.time()))
            if frame.get("id") == my_id and frame.get("type") in ("ack", "error"):
                return frame
            self.frames.append(frame)

    async def ok(self, kind: str, **fields: Any) -> dict[str, Any]:
        reply = await self.request(kind, **fields)
        assert reply["type"] == "ack", reply
        return reply

    async def closed(self, *, timeout: float = 5.0) -> int | None:
        """Read until the server closes; the close code."""
        with contextlib.suppress(ConnectionClosed):
            async with asyncio.timeout(timeout):
                while True:
                    await self.ws.recv()
        return self.ws.close_code

    async def close(self) -> None:
        await self.ws.close()


@contextlib.asynccontextmanager
async def client(
    address: str,
    *,
    token: str | None = None,
    path: str = "/ws",
    query: str = "",
    welcome: bool = True,
    **kwargs: Any,
) -> AsyncIterator[Client]:
    """Connect to ``ws://address{path}``; waits for ``welcome`` unless told not to."""
    params = [p for p in (f"token={token}" if token else "", query) if p]
    url = f"ws://{address}{path}" + ("?" + "&".join(params) if params else "")
    kwargs.setdefault("max_queue", None)  # never pause reading: close() must see the close frame
    async with connect(url, max_size=None, **kwargs) as ws:
        c = Client(ws)
        if welcome:
            frame = await c.next()
            assert frame["type"] == "welcome", frame
            c.welcome = frame  # type: ignore[attr-defined]
        yield c


async def publish_paced(address: str, token: str, channel: str, count: int) -> None:
    """Publish ``count`` messages (about 2 s for 1,000), then one acknowledged publish:
    when it is acked, every earlier one was accepted. ``count + 1`` publications."""
    async with client(address, token=token) as c:
        for i in range(count):
            await c.send({"type": "publish", "channel": channel, "data": {"n": i}})
            if i % 10 == 0:
                await asyncio.sleep(0.02)
        await c.ok("publish", channel=channel, data={"last": True})


async def read_across_reconnects(
    addresses: list[str],
    token: Callable[[], str],
    channel: str,
    *,
    total: int,
    publishers: Callable[[], Awaitable[object]],
    rng: random.Random,
) -> tuple[list[int], int]:
    """The exact-recovery property as a reader sees it.

    Subscribe on ``addresses[0]``, start ``publishers``, then keep leaving after a
    random number of messages and subscribing again with ``since`` (on the next
    address in turn) until ``total`` offsets were seen. Every resubscribe must say
    ``recovered: true``. Returns the offsets in the order seen and the number of
    reconnects."""
    seen: list[int] = []
    async with client(addresses[0], token=token()) as c:
        ack = await c.ok("subscribe", channel=channel)
        position = {"offset": ack["offset"], "epoch": ack["epoch"]}
        running = asyncio.ensure_future(publishers())
        for _ in range(rng.randint(20, 60)):
            msg = await c.next("message")
            seen.append(msg["offset"])
            position = {"offset": msg["offset"], "epoch": msg["epoch"]}
    reconnects = 0
    while len(seen) < total:
        reconnects += 1
        address = addresses[reconnects % len(addresses)]
        async with client(address, token=token()) as c:
            ack = await c.ok("subscribe", channel=channel, since=position)
            assert ack["recovered"] is True, ack
            assert ack["epoch"] == position["epoch"]
            seen.extend(p["offset"] for p in ack["publications"])
            if ack["publications"]:
                position["offset"] = ack["publications"][-1]["offset"]
            for _ in range(rng.randint(50, 250)):
                if len(seen) >= total:
                    break
                try:
                    msg = await c.next("message", timeout=2)
                except TimeoutError:
                    break
                seen.append(msg["offset"])
                position = {"offset": msg["offset"], "epoch": msg["epoch"]}
    await asyncio.wait_for(running, 30)
    return seen, reconnects
