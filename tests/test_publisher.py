"""hubbub.Publisher, hubbub.AsyncPublisher and `hubbub publish` against a real server."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import uvicorn
from click.testing import CliRunner

from hubbub.asgi.serve import uvicorn_options
from hubbub.cli import main
from hubbub.hub import Hub
from hubbub.publisher import (
    AsyncPublisher,
    PublishCommand,
    Publisher,
    PublishError,
    _Calls,
)
from support import client, free_port

KEY = "test-api-key"


@contextlib.asynccontextmanager
async def serve_on(port: int, hub: Hub) -> AsyncIterator[None]:
    """Like ``support.serve``, on a given port."""
    options = {**uvicorn_options(hub.settings), "port": port, "log_level": "warning"}
    server = uvicorn.Server(uvicorn.Config(hub.asgi, **options))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done()
            await asyncio.sleep(0.01)
        yield
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def test_async_publisher_every_call(
    server: str, hub: Hub, make_token: Callable[..., str]
) -> None:
    async with (
        AsyncPublisher(f"http://{server}", KEY) as pub,
        client(server, token=make_token("alice", info={"n": 1})) as ws,
    ):
        await ws.ok("subscribe", channel="chat:lobby")
        first = await pub.publish("chat:lobby", {"text": "hi"})
        assert (first.offset, first.epoch) == (1, (await ws.next("message"))["epoch"])
        broadcast = await pub.broadcast(["chat:lobby", "#alice"], "all")
        assert [r.channel for r in broadcast.results] == ["chat:lobby", "#alice"]
        assert all(r.error is None for r in broadcast.results)
        batch = await pub.batch([PublishCommand("chat:lobby", i) for i in range(3)])
        assert [r.offset for r in batch.results] == [3, 4, 5]
        history = await pub.history("chat:lobby", limit=2, reverse=True)
        assert [p.data for p in history.publications] == [2, 1]
        since = await pub.history("chat:lobby", since_offset=4, epoch=first.epoch)
        assert [p.offset for p in since.publications] == [5]
        channels = await pub.channels()
        assert channels.channels["chat:lobby"].num_clients == 1
        assert set((await pub.channels("#*")).channels) == {"#alice"}
        presence = await pub.presence("chat:lobby")
        [entry] = presence.clients.values()
        assert (entry.user, entry.info) == ("alice", {"n": 1})
        stats = await pub.presence_stats("chat:lobby")
        assert (stats.num_clients, stats.num_users) == (1, 1)
        info = await pub.info()
        assert (info.node, info.connections) == (hub.node_id, 1)
        await pub.disconnect("alice")
        assert await ws.closed() == 4003


async def test_sync_publisher_every_call(
    server: str, hub: Hub, make_token: Callable[..., str]
) -> None:
    async with client(server, token=make_token("42")) as ws:

        def work() -> dict[str, Any]:
            with Publisher(f"http://{server}", KEY) as pub:
                return {
                    "publish": pub.publish("#42", {"order": 7}),
                    "broadcast": pub.broadcast(["#42", "x"], 1),
                    "batch": pub.batch([PublishCommand("x", 2)]),
                    "history": pub.history("x"),
                    "channels": pub.channels(),
                    "presence": pub.presence("x"),
                    "stats": pub.presence_stats("x"),
                    "info": pub.info(),
                    "disconnect": pub.disconnect("42"),
                }

        results = await asyncio.to_thread(work)
        assert (await ws.next("message"))["data"] == {"order": 7}
        assert results["publish"].offset == 1
        assert [r.offset for r in results["broadcast"].results] == [2, 1]
        assert results["batch"].results[0].offset == 2
        assert [p.data for p in results["history"].publications] == [1, 2]
        assert results["channels"].channels["#42"].num_clients == 1
        assert results["presence"].clients == {}
        assert results["stats"].num_clients == 0
        assert results["info"].node == hub.node_id
        assert results["disconnect"] is None
        assert await ws.closed() == 4003


async def test_errors_carry_status_code_and_message(server: str) -> None:
    async with AsyncPublisher(f"http://{server}", "wrong") as bad:
        with pytest.raises(PublishError) as info:
            await bad.publish("a", 1)
    assert (info.value.status, info.value.code) == (401, "unauthorized")
    assert "invalid API key" in info.value.message

    async with AsyncPublisher(f"http://{server}", KEY) as pub:
        with pytest.raises(PublishError) as info:
            await pub.publish("not valid!", 1)
        assert (info.value.status, info.value.code) == (400, "bad_request")
        assert "invalid characters" in info.value.message

    def sync_bad() -> PublishError:
        with Publisher(f"http://{server}", KEY) as pub:
            try:
                pub.history("a", limit=-1)
            except PublishError as exc:
                return exc
        raise AssertionError("no error")

    error = await asyncio.to_thread(sync_bad)
    assert (error.status, error.code) == (400, "bad_request")
    assert "limit" in error.message


async def test_unreachable_server_after_retries() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    async with AsyncPublisher(url, KEY, retries=2) as pub:
        with pytest.raises(PublishError) as info:
            await pub.publish("a", 1)
    assert info.value.status is None
    assert info.value.code == "unreachable"
    assert "after 3 attempts" in info.value.message
    assert isinstance(info.value.__cause__, httpx.ConnectError)

    def sync_call() -> PublishError:
        with Publisher(url, KEY, retries=0) as pub:
            try:
                pub.info()
            except PublishError as exc:
                return exc
        raise AssertionError("no error")

    error = await asyncio.to_thread(sync_call)
    assert error.code == "unreachable"
    assert "attempts" not in error.message
    assert time.monotonic() - started < 5


async def test_retry_reaches_a_server_that_comes_up(make_token: Callable[..., str]) -> None:
    """The publisher keeps retrying while nothing listens, then publishes once."""
    port = free_port()
    hub = Hub(secret="s" * 32, api_key=KEY)

    def publish() -> Any:
        with Publisher(f"http://127.0.0.1:{port}", KEY, retries=10) as pub:
            return pub.publish("jobs", {"done": True})

    try:
        pending = asyncio.create_task(asyncio.to_thread(publish))
        await asyncio.sleep(0.3)
        assert not pending.done()
        async with serve_on(port, hub):
            result = await asyncio.wait_for(pending, 10)
            assert result.offset == 1
            history = await hub.engine.history("jobs")
            assert [p.offset for p in history.publications] == [1]
    finally:
        await hub.close()


class LoseFirstAnswer(httpx.AsyncBaseTransport):
    """Delivers each request, but drops the first answer as a broken connection."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        response = await self.inner.handle_async_request(request)
        if self.calls == 1:
            await response.aclose()
            raise httpx.ReadError("connection reset after the server answered")
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_retried_publish_happens_exactly_once(
    server: str, hub: Hub, make_token: Callable[..., str]
) -> None:
    async with (
        AsyncPublisher(f"http://{server}", KEY) as pub,
        client(server, token=make_token("alice")) as ws,
    ):
        await ws.ok("subscribe", channel="orders")
        lossy = LoseFirstAnswer(pub._client._transport)
        pub._client._transport = lossy
        result = await pub.publish("orders", {"id": 1})
        assert lossy.calls == 2  # the first publish landed; its answer was lost
        assert result.offset == 1
        assert (await ws.next("message"))["offset"] == 1
        history = await hub.engine.history("orders")
        assert len(history.publications) == 1
        with pytest.raises(asyncio.TimeoutError):
            await ws.next("message", timeout=0.3)


def test_idempotency_keys_are_generated_only_when_retrying() -> None:
    with_retries, without = _Calls(3), _Calls(0)
    assert with_retries.publish("a", 1, None).body["idempotency_key"]  # type: ignore[index]
    assert "idempotency_key" not in without.publish("a", 1, None).body  # type: ignore[operator]
    assert with_retries.publish("a", 1, "mine").body["idempotency_key"] == "mine"  # type: ignore[index]
    batch = with_retries.batch([PublishCommand("a", 1), PublishCommand("b", 2, "k")]).body
    keys = [c.idempotency_key for c in batch["commands"]]  # type: ignore[index]
    assert keys[0]
    assert keys[1] == "k"
    # channels and users are one path segment each
    assert with_retries.history("#42", None, None, None, False).path == (
        "/api/channels/%2342/history"
    )
    assert with_retries.disconnect("a/b").path == "/api/users/a%2Fb/disconnect"


async def test_cli_publish(server: str, make_token: Callable[..., str]) -> None:
    runner = CliRunner()
    async with client(server, token=make_token("7")) as ws:
        result = await asyncio.to_thread(
            runner.invoke,
            main,
            ["publish", "#7", '{"hello": "cli"}', "--url", f"http://{server}"],
            env={"HUBBUB_API_KEY": KEY},
        )
        assert result.exit_code == 0, result.output
        assert '"offset": 1' in result.output
        assert (await ws.next("message"))["data"] == {"hello": "cli"}
    env_url = await asyncio.to_thread(
        runner.invoke,
        main,
        ["publish", "x", "1"],
        env={"HUBBUB_API_KEY": KEY, "HUBBUB_URL": f"http://{server}"},
    )
    assert env_url.exit_code == 0, env_url.output
    bad_json = runner.invoke(main, ["publish", "x", "{nope", "--api-key", KEY])
    assert bad_json.exit_code == 2
    assert "not JSON" in bad_json.output
    no_key = runner.invoke(main, ["publish", "x", "1"], env={"HUBBUB_API_KEY": ""})
    assert no_key.exit_code == 2
    assert "HUBBUB_API_KEY" in no_key.output
    refused = await asyncio.to_thread(
        runner.invoke, main, ["publish", "x", "1", "--url", f"http://{server}", "--api-key", "no"]
    )
    assert refused.exit_code == 1
    assert "invalid API key" in refused.output
