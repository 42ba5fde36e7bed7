"""hubbub.Client against a real hub (uvicorn on a free port) and against a
scripted fake hub for the close codes and broken frames a real hub never sends."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

import hubbub
from hubbub import Client
from hubbub.client import Forbidden, Recovery, ServerError, Unauthorized, Unsubscribed
from hubbub.core.protocol import StreamPosition
from hubbub.errors import CloseCode
from hubbub.hub import Hub, RpcContext

pytestmark = pytest.mark.timeout(20)

FEED = "feed:numbers"


def url(server: str) -> str:
    return f"ws://{server}/ws"


async def until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` (state reached by background tasks) until it holds."""
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


@pytest.fixture
def hub_options() -> dict[str, Any]:
    return {"namespaces": {"feed": {"history_size": 5000}}}


async def test_exports() -> None:
    assert hubbub.Client is Client
    assert "Client" in hubbub.__all__


async def test_subscribe_publish_and_queries(
    hub: Hub, server: str, make_token: Callable[..., str]
) -> None:
    @hub.rpc("echo")
    async def echo(ctx: RpcContext, data: Any) -> Any:
        return {"user": ctx.user, "data": data}

    async with (
        Client(url(server), token=make_token("alice", info={"name": "Alice"})) as a,
        Client(url(server), token=make_token("bob")) as b,
    ):
        assert a.state == "connected"
        assert a.user == "alice"
        joined: list[str] = []
        sub_a = await a.subscribe("chat:lobby", on_join=lambda info: joined.append(info.user))
        sub_b = await b.subscribe("chat:lobby")
        position = await a.publish("chat:lobby", {"text": "hi"})
        assert position.offset == 1
        for sub in (sub_a, sub_b):
            msg = await asyncio.wait_for(anext(sub), 5)
            assert msg.data == {"text": "hi"}
            assert msg.offset == 1
            assert msg.epoch == position.epoch
            assert msg.info is not None
            assert msg.info.user == "alice"
        assert joined == ["bob"]

        clients = await b.presence("chat:lobby")
        assert sorted(info.user for info in clients.values()) == ["alice", "bob"]
        stats = await b.presence_stats("chat:lobby")
        assert (stats.num_clients, stats.num_users) == (2, 2)
        history = await b.history("chat:lobby", limit=10)
        assert [m.data for m in history.publications] == [{"text": "hi"}]
        assert await a.rpc("echo", [1, 2]) == {"user": "alice", "data": [1, 2]}

        with pytest.raises(ServerError) as refused:
            await a.publish("bad channel!", 1)
        assert refused.value.code == 400
        with pytest.raises(ServerError) as missing:
            await a.rpc("nope")
        assert missing.value.code in (400, 404)


async def test_iterate_subscribe_directly(
    hub: Hub, server: str, make_token: Callable[..., str]
) -> None:
    async with Client(url(server), token=make_token("alice")) as c:
        sub = c.subscribe("chat:direct")

        async def publish() -> None:
            await sub  # the ack: from here on nothing is missed
            for i in range(3):
                await hub.publish("chat:direct", i)

        task = asyncio.create_task(publish())
        got = []
        async for msg in sub:
            got.append(msg.data)
            if len(got) == 3:
                await sub.unsubscribe()
        assert got == [0, 1, 2]
        await task


async def test_refused_subscription_raises(
    hub: Hub, server: str, make_token: Callable[..., str]
) -> None:
    async with Client(url(server), token=make_token("alice")) as c:
        with pytest.raises(ServerError) as refused:
            await c.subscribe("#bob")
        assert refused.value.code == 403
        sub = await c.subscribe("chat:ok")  # the client keeps working
        assert sub.subscribed


async def test_recovery_under_a_concurrent_publisher(
    hub: Hub, server: str, make_token: Callable[..., str]
) -> None:
    """1,000 publications while the hub drops the client's connection again and
    again (4008, 1012, 4009, a dead TCP link): every offset is seen
    exactly once, in order."""
    total = 1000
    recoveries: list[Recovery] = []
    codes: list[int | None] = []
    c = Client(url(server), token=make_token("alice"), min_delay=0.02, max_delay=0.2)
    c.on("disconnected", codes.append)
    await c.connect()
    sub = await c.subscribe(FEED, on_recover=recoveries.append)
    published = asyncio.Event()

    async def publisher() -> None:
        for i in range(1, total + 1):
            await hub.publish(FEED, {"n": i})
            if i % 10 == 0:
                await asyncio.sleep(0.002)
        published.set()

    async def disrupt() -> None:
        kinds = ["slow", "restart", "heartbeat", "network"] * 2
        for kind in kinds:
            await asyncio.sleep(random.uniform(0.05, 0.12))
            await until(lambda: c.state == "connected")
            if kind == "network":
                ws = c._ws
                assert ws is not None
                ws.transport.abort()
            else:
                code = {
                    "slow": CloseCode.SLOW_CONSUMER,
                    "restart": CloseCode.SERVER_RESTART,
                    "heartbeat": CloseCode.HEARTBEAT_TIMEOUT,
                }[kind]
                for conn in list(hub.users.get("alice", ())):
                    conn.abort(code, "test")

    tasks = [asyncio.create_task(publisher()), asyncio.create_task(disrupt())]
    seen: list[int] = []
    try:
        async with asyncio.timeout(15):
            async for msg in sub:
                assert msg.data == {"n": msg.offset}
                seen.append(msg.offset)
                if msg.offset == total:
                    break
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await c.close()
    assert seen == list(range(1, total + 1))
    assert published.is_set()
    assert len(codes) >= 7, codes
    assert {4008, 1012, 4009, 1006} <= set(codes)
    assert recoveries
    assert all(r.recovered for r in recoveries)
    assert sum(r.missed or 0 for r in recoveries) > 0


async def test_resume_from_a_saved_position(
    hub: Hub, server: str, make_token: Callable[..., str]
) -> None:
    for i in range(5):
        await hub.publish(FEED, i)
    history = await hub.engine.history(FEED, limit=0)
    saved = StreamPosition(offset=2, epoch=history.epoch)
    recoveries: list[Recovery] = []
    async with Client(url(server), token=make_token("alice")) as c:
        sub = await c.subscribe(FEED, since=saved, on_recover=recoveries.append)
        got = [(await asyncio.wait_for(anext(sub), 5)).data for _ in range(3)]
    assert got == [2, 3, 4]
    assert recoveries == [Recovery(True, 3, 5, history.epoch)]


async def test_lost_history_is_reported(
    hub: Hub, server: str, make_token: Callable[..., str]
) -> None:
    recoveries: list[Recovery] = []
    async with Client(url(server), token=make_token("alice")) as c:
        await c.subscribe(
            FEED, since=StreamPosition(offset=3, epoch="another"), on_recover=recoveries.append
        )
    assert len(recoveries) == 1
    assert recoveries[0].recovered is False


async def test_calls_wait_for_the_reconnect(
    hub: Hub, server: str, make_token: Callable[..., str]
) -> None:
    async with Client(url(server), token=make_token("alice"), min_delay=0.05) as c:
        # Listened to rather than polled: with full jitter the reconnect may take
        # less than one poll.
        states: list[str] = []
        c.on("state", states.append)
        for conn in list(hub.users["alice"]):
            conn.abort(CloseCode.SERVER_RESTART, "test")
        await until(lambda: any(state != "connected" for state in states))
        position = await c.publish("chat:lobby", "after")  # waits for the reconnect
        assert position.offset == 1
        assert c.state == "connected"


# --------------------------------------------------------------------------- fake hub

WELCOME = {"type": "welcome", "client": "c1", "user": "u1", "ping_interval": 25, "version": "1"}
Script = Callable[[ServerConnection, int], Awaitable[None]]


@contextlib.asynccontextmanager
async def fake_hub(script: Script) -> AsyncIterator[tuple[str, list[str | None]]]:
    """A WebSocket server running ``script(ws, n)`` for its n-th connection (from 0);
    yields its URL and the tokens the connections came with."""
    tokens: list[str | None] = []

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        query = parse_qs(urlsplit(ws.request.path).query)
        tokens.append(query.get("token", [None])[-1])
        with contextlib.suppress(ConnectionClosed):
            await script(ws, len(tokens) - 1)

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws", tokens


async def serve_commands(ws: ServerConnection) -> None:
    """Answer commands the way a hub would, minimally."""
    async for raw in ws:
        frame = json.loads(raw)
        if frame.get("id") is not None:
            await ws.send(json.dumps({"type": "ack", "id": frame["id"], "offset": 0, "epoch": "e"}))


async def test_4001_without_get_token_stops() -> None:
    async def script(ws: ServerConnection, n: int) -> None:
        await ws.close(4001, "token expired")

    states: list[str] = []
    async with fake_hub(script) as (address, tokens):
        c = Client(address, token="t0", min_delay=0.01)
        c.on("state", states.append)
        with pytest.raises(Unauthorized):
            await c.connect()
        await asyncio.sleep(0.1)
        assert tokens == ["t0"]  # no reconnect loop
        assert c.state == "closed"
        assert states[-1] == "closed"
        with pytest.raises(Unauthorized):
            await c.publish("x", 1)


async def test_4001_asks_for_a_new_token_once() -> None:
    async def script(ws: ServerConnection, n: int) -> None:
        await ws.close(4001, "invalid token")

    issued = 0

    async def get_token() -> str:
        nonlocal issued
        issued += 1
        return f"t{issued}"

    async with fake_hub(script) as (address, tokens):
        c = Client(address, get_token=get_token, min_delay=0.01)
        reasons: list[str] = []
        c.on("unauthorized", reasons.append)
        with pytest.raises(Unauthorized):
            await c.connect()
        assert tokens == ["t1", "t2"]
        assert len(reasons) == 1


async def test_token_expiring_while_connected_is_refreshed() -> None:
    async def script(ws: ServerConnection, n: int) -> None:
        await ws.send(json.dumps(WELCOME))
        if n == 0:
            await ws.close(4001, "token expired")
        else:
            await serve_commands(ws)

    async def get_token() -> str:
        return "fresh"

    async with fake_hub(script) as (address, tokens):
        c = Client(address, token="old", get_token=get_token, min_delay=0.01)
        codes: list[int | None] = []
        c.on("disconnected", codes.append)
        async with c:
            await until(lambda: len(tokens) == 2 and c.state == "connected")
            assert await c.publish("x", 1) == StreamPosition(offset=0, epoch="e")
        assert tokens == ["old", "fresh"]
        assert codes == [4001]


@pytest.mark.parametrize("codes", [[4008, 1012, 4009], [1012, 1011, 4029]])
async def test_reconnects_after_server_closes(codes: list[int]) -> None:
    async def script(ws: ServerConnection, n: int) -> None:
        await ws.send(json.dumps(WELCOME))
        if n < len(codes):
            await ws.close(codes[n], "bye")
        else:
            await serve_commands(ws)

    async with fake_hub(script) as (address, tokens):
        seen: list[int | None] = []
        async with Client(address, token="t", min_delay=0.01, max_delay=0.05) as c:
            c.on("disconnected", seen.append)
            await until(lambda: len(tokens) > len(codes) and c.state == "connected")
            assert seen == codes
            await c.publish("x", 1)
        assert tokens == ["t"] * (len(codes) + 1)


async def test_malformed_frames_are_logged_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    pong = asyncio.Event()

    async def script(ws: ServerConnection, n: int) -> None:
        await ws.send(json.dumps(WELCOME))
        for junk in (
            "not json",
            "[1, 2]",
            '{"no": "type"}',
            '{"type": "message", "channel": "c", "offset": "x", "epoch": "e", "data": 1}',
            '{"type": "ack", "id": 999}',  # an ack nobody waits for
            '{"type": "from-the-future", "x": 1}',
            '{"type": "error", "code": 500, "message": "boom"}',
        ):
            await ws.send(junk)
        await ws.send(b"\x00\x01")
        await ws.send('garbage\n{"type": "ping"}')  # a batch with one broken line
        async for raw in ws:
            frame = json.loads(raw)
            if frame["type"] == "pong":
                pong.set()
            elif frame["type"] == "subscribe":
                ack = {"type": "ack", "id": frame["id"], "offset": 0, "epoch": "e"}
                message = {"type": "message", "channel": "c", "data": "ok", "offset": 1}
                await ws.send(json.dumps(ack) + "\n" + json.dumps({**message, "epoch": "e"}))

    caplog.set_level(logging.WARNING, logger="hubbub.client")
    async with fake_hub(script) as (address, tokens):
        c = Client(address, token="t")
        errors: list[ServerError] = []
        c.on("error", errors.append)
        async with c:
            await asyncio.wait_for(pong.wait(), 5)
            sub = await c.subscribe("c")
            msg = await asyncio.wait_for(anext(sub), 5)
            assert msg.data == "ok"
            assert c.state == "connected"
        assert tokens == ["t"]  # never dropped the connection
    assert [e.code for e in errors] == [500]
    logged = caplog.text
    assert "malformed frame" in logged
    assert "binary frame" in logged


async def test_no_ping_means_a_dead_link(monkeypatch: pytest.MonkeyPatch) -> None:
    async def script(ws: ServerConnection, n: int) -> None:
        await ws.send(json.dumps({**WELCOME, "ping_interval": 0.1}))
        if n == 0:
            await ws.wait_closed()  # silent: no pings
        else:
            await serve_commands(ws)

    monkeypatch.setattr("hubbub.client.client._IDLE_MARGIN", 0.2)
    async with (
        fake_hub(script) as (address, tokens),
        Client(address, token="t", min_delay=0.01) as c,
    ):
        codes: list[int | None] = []
        c.on("disconnected", codes.append)
        await until(lambda: len(tokens) == 2 and c.state == "connected")
        assert codes == [1006]


async def test_server_unsubscribe_ends_the_subscription_for_good(
    hub: Hub, server: str, make_token: Callable[..., str]
) -> None:
    """The server API's unsubscribe ends the iteration with ``Unsubscribed``; the
    client does not resubscribe, not even after a reconnect."""
    c = Client(url(server), token=make_token("alice"), min_delay=0.01, max_delay=0.05)
    await c.connect()
    try:
        sub = await c.subscribe(FEED)
        other = await c.subscribe("feed:other")
        await hub.publish(FEED, 1)
        assert (await anext(aiter(sub))).data == 1
        await hub.unsubscribe_user("alice", FEED)

        async def drain() -> None:
            async with asyncio.timeout(5):
                async for _ in sub:
                    pass

        with pytest.raises(Unsubscribed) as ended:
            await drain()
        assert (ended.value.channel, ended.value.reason) == (FEED, "unsubscribed by the server")
        first = c.client_id
        conn = hub.connections[first]
        await conn.close(CloseCode.SERVER_RESTART, "restart")
        await until(lambda: c.state == "connected" and c.client_id != first)

        def resubscribed() -> bool:
            subs = hub.registry.get("feed:other")
            return subs is not None and c.client_id in subs.live

        await until(resubscribed)
        # resubscribes go out in subscription order: FEED's would have come first
        assert FEED not in hub.connections[c.client_id].session.channels
        assert other.subscribed
        sub = await c.subscribe(FEED)  # the app may subscribe again
        await hub.publish(FEED, 2)
        assert (await anext(aiter(sub))).data == 2
    finally:
        await c.close()


async def test_forbidden_is_final(hub: Hub, server: str, make_token: Callable[..., str]) -> None:
    """4003 (here: the server disconnects the user) stops the client instead of
    reconnecting into the same refusal."""
    states: list[str] = []
    c = Client(url(server), token=make_token("alice"), min_delay=0.01, max_delay=0.05)
    c.on("state", states.append)
    await c.connect()
    sub = await c.subscribe(FEED)
    await hub.disconnect_user("alice")

    async def drain() -> None:
        async with asyncio.timeout(5):
            async for _ in sub:
                pass

    with pytest.raises(Forbidden):
        await drain()
    await until(lambda: c.state == "closed")
    assert "reconnecting" not in states
    assert not hub.users.get("alice")
    await c.close()
