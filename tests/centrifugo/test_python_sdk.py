"""The real Centrifugo Python SDK (``centrifuge-python``) against ``/connection/websocket``.

No mocks: the SDK from PyPI, a real uvicorn server, the hub's real engine. Each
test using ``server`` runs on both transports (direct writes and ASGI sends).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from hubbub.hub import Hub, RpcContext
from support import LiveServer, client

from .cfsdk import Events, need_sdk, sdk_client, subscription, until

CHANNEL = "chat:sdk"


@pytest.fixture(autouse=True)
def _sdk() -> None:
    need_sdk()


@pytest.fixture
def hub_options() -> dict[str, Any]:
    return {"namespaces": {"chat": {"history_size": 1000, "history_ttl": 600}}}


async def test_connect_subscribe_publish_presence_history_rpc(
    server: str, hub: Hub, make_token: Callable[..., str]
) -> None:
    @hub.rpc("double")
    async def double(ctx: RpcContext, data: Any) -> Any:
        return {"n": data["n"] * 2, "user": ctx.user}

    ev = Events()
    c = sdk_client(server, make_token("alice", info={"name": "Alice"}), ev)
    await c.connect()
    await c.ready()
    try:
        assert ev.connected[0].client
        assert ev.connected[0].version.startswith("hubbub")
        # the personal channel is a server-side subscription
        await until(lambda: bool(ev.server_subscribed))
        assert ev.server_subscribed[0].channel == "#alice"

        sub = subscription(c, CHANNEL, ev)
        await sub.subscribe()
        await sub.ready()
        assert ev.subscribed[0].recoverable is True
        assert ev.subscribed[0].was_recovering is False

        position = await hub.publish(CHANNEL, {"from": "server"})
        await sub.publish({"from": "sdk"})
        await until(lambda: len(ev.publications) == 2)
        first, second = ev.publications
        assert (first.data, first.offset) == ({"from": "server"}, position.offset)
        assert (second.data, second.offset) == ({"from": "sdk"}, position.offset + 1)
        assert second.info.user == "alice"
        assert second.info.conn_info == {"name": "Alice"}

        presence = await sub.presence()
        assert [info.user for info in presence.clients.values()] == ["alice"]
        stats = await sub.presence_stats()
        assert (stats.num_clients, stats.num_users) == (1, 1)

        history = await sub.history(limit=-1)
        assert [p.data for p in history.publications] == [{"from": "server"}, {"from": "sdk"}]
        assert history.offset == position.offset + 1
        assert history.epoch == position.epoch
        top = await sub.history()  # limit 0: the stream position only
        assert (top.publications, top.offset) == ([], position.offset + 1)
        newest = await sub.history(limit=1, reverse=True)
        assert [p.data for p in newest.publications] == [{"from": "sdk"}]

        result = await c.rpc("double", {"n": 21})
        assert result.data == {"n": 42, "user": "alice"}

        await hub.publish("#alice", {"note": "personal"})
        await until(lambda: bool(ev.server_publications))
        assert ev.server_publications[0].data == {"note": "personal"}
    finally:
        await c.disconnect()


async def test_errors_map_to_centrifugo_codes(
    server: str, hub: Hub, make_token: Callable[..., str]
) -> None:
    from centrifuge import ReplyError

    ev = Events()
    c = sdk_client(server, make_token("bob"), ev)
    await c.connect()
    await c.ready()
    try:
        with pytest.raises(ReplyError) as unknown:
            await c.rpc("nope", None)
        assert unknown.value.code == 104  # method not found
        with pytest.raises(ReplyError) as denied:
            await c.publish("#someone-else", {"x": 1})
        assert denied.value.code == 103  # permission denied
    finally:
        await c.disconnect()


async def test_invalid_token_is_terminal(server: str, hub: Hub) -> None:
    ev = Events()
    c = sdk_client(server, "not-a-jwt", ev)
    await c.connect()
    await until(lambda: bool(ev.disconnected))
    assert ev.disconnected[0].code == 3500  # invalid token: the SDK does not reconnect
    await asyncio.sleep(0.5)
    assert len(ev.disconnected) == 1
    assert ev.connected == []
    assert str(c.state.value) == "disconnected"
    assert hub.connections == {}


async def test_v1_and_sdk_clients_share_a_channel(
    server: str, hub: Hub, make_token: Callable[..., str]
) -> None:
    ev = Events()
    c = sdk_client(server, make_token("sdk-user"), ev)
    await c.connect()
    sub = subscription(c, CHANNEL, ev)
    await sub.subscribe()
    await sub.ready()
    try:
        async with client(server, token=make_token("v1-user")) as v1:
            await v1.ok("subscribe", channel=CHANNEL)
            await until(lambda: len(ev.joins) == 1)
            assert ev.joins[0].user == "v1-user"
            ack = await v1.ok("publish", channel=CHANNEL, data={"from": "v1"})
            await sub.publish({"from": "sdk"})
            mine = await v1.next("message")
            theirs = await v1.next("message")
            await until(lambda: len(ev.publications) == 2)
            assert [(p.data, p.offset) for p in ev.publications] == [
                ({"from": "v1"}, ack["offset"]),
                ({"from": "sdk"}, ack["offset"] + 1),
            ]
            assert (mine["data"], mine["offset"]) == ({"from": "v1"}, ack["offset"])
            assert (theirs["data"], theirs["offset"]) == ({"from": "sdk"}, ack["offset"] + 1)
            assert theirs["info"]["user"] == "sdk-user"
        await until(lambda: len(ev.leaves) == 1)
    finally:
        await c.disconnect()


def _offsets_exactly_once(ev: Events, first: int, last: int) -> None:
    offsets = [p.offset for p in ev.publications]
    assert offsets == list(range(first, last + 1))
    assert [p.data["n"] for p in ev.publications] == offsets


async def test_recovery_after_a_server_restart(hub: Hub, make_token: Callable[..., str]) -> None:
    """uvicorn is stopped and started again on the same port (same hub, same
    history) while the server keeps publishing: the SDK reconnects, reports
    ``recovered`` and sees every offset exactly once."""
    live = LiveServer(hub)
    await live.start()
    ev = Events()
    c = sdk_client(live.address, make_token("carol"), ev)
    await c.connect()
    sub = subscription(c, CHANNEL, ev)
    await sub.subscribe()
    await sub.ready()
    total = 300
    stop = asyncio.Event()

    async def publisher() -> None:
        for n in range(1, total + 1):
            await hub.publish(CHANNEL, {"n": n})
            await asyncio.sleep(0.005)
        stop.set()

    task = asyncio.create_task(publisher())
    try:
        await until(lambda: len(ev.publications) >= 30)
        await live.stop()
        await asyncio.sleep(0.3)  # down while publishing goes on
        await live.start()
        await asyncio.wait_for(stop.wait(), 20)
        await until(lambda: len(ev.publications) >= total, timeout=15)
        _offsets_exactly_once(ev, 1, total)
        assert ev.connecting, "the SDK saw the restart"
        assert ev.subscribed[-1].was_recovering is True
        assert ev.subscribed[-1].recovered is True
        assert ev.disconnected == []
    finally:
        task.cancel()
        await c.disconnect()
        await live.stop()


@pytest.mark.parametrize("hub_options", [{"max_queue_bytes": 64 * 1024}])
async def test_slow_consumer_reconnects_and_recovers(
    hub: Hub, make_token: Callable[..., str]
) -> None:
    """The SDK's socket stops being read, so the server's buffer for it overflows:
    closed 4008, which reaches the SDK as Centrifugo's 3008 ("slow", reconnect).
    It reconnects, recovers, and has every offset exactly once. Direct transport
    (``hubbub serve``): there the recovery reply is written to a fresh socket;
    with queued ASGI sends a reply larger than ``max_queue_bytes`` would not fit."""
    live = LiveServer(hub)
    await live.start()
    ev = Events()
    c = sdk_client(live.address, make_token("dave"), ev)
    await c.connect()
    sub = subscription(c, CHANNEL, ev)
    await sub.subscribe()
    await sub.ready()
    try:
        for n in range(1, 4):
            await hub.publish(CHANNEL, {"n": n})
        await until(lambda: len(ev.publications) == 3)
        first = next(iter(hub.users["dave"]))
        c._conn.transport.pause_reading()  # the SDK stops reading its socket
        pad = "x" * 8192
        n = 3
        while first.client_id in hub.connections:
            assert n < 5000, "the slow consumer was never closed"
            n += 1
            await hub.publish(CHANNEL, {"n": n, "pad": pad})
            await asyncio.sleep(0)
        assert first.close_code == 4008
        for _ in range(5):
            n += 1
            await hub.publish(CHANNEL, {"n": n})
        c._conn.transport.resume_reading()
        await until(lambda: len(ev.publications) >= n, timeout=15)
        _offsets_exactly_once(ev, 1, n)
        assert [ctx.code for ctx in ev.connecting][-1] == 3008
        assert ev.subscribed[-1].recovered is True
    finally:
        await c.disconnect()
        await live.stop()
