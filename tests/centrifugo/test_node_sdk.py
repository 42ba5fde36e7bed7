"""The real npm ``centrifuge`` SDK (Node 20 + ``ws``) against ``/connection/websocket``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from hubbub.hub import Hub, RpcContext
from support import LiveServer

from .node_sdk import NodeSdk, ensure_node_sdk

CHANNEL = "chat:node"

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _node() -> None:
    ensure_node_sdk()


@pytest.fixture
def hub_options() -> dict[str, Any]:
    return {"namespaces": {"chat": {"history_size": 1000, "history_ttl": 600}}}


async def test_connect_subscribe_publish_history_presence_rpc(
    server: str, hub: Hub, make_token: Callable[..., str]
) -> None:
    @hub.rpc("echo")
    async def echo(ctx: RpcContext, data: Any) -> Any:
        return {"echo": data, "user": ctx.user}

    await hub.publish(CHANNEL, {"from": "server"})
    sdk = await NodeSdk.start(
        "basic", f"ws://{server}/connection/websocket", make_token("nina"), CHANNEL
    )
    try:
        await sdk.next("connected")
        publication = await sdk.next("publication")
        assert publication == {"event": "publication", "offset": 2, "data": {"from": "node"}}
        history = await sdk.next("history")
        assert history["offsets"] == [1, 2]
        assert history["data"] == [{"from": "server"}, {"from": "node"}]
        assert (await sdk.next("presence"))["users"] == ["nina"]
        stats = await sdk.next("stats")
        assert (stats["clients"], stats["users"]) == (1, 1)
        assert (await sdk.next("rpc"))["data"] == {"echo": {"hello": "node"}, "user": "nina"}
        assert (await sdk.next("rpc_error"))["code"] == 104
        await sdk.next("done")
    finally:
        await sdk.stop()


async def test_invalid_token_does_not_reconnect(server: str, hub: Hub) -> None:
    sdk = await NodeSdk.start("badtoken", f"ws://{server}/connection/websocket", "bad", CHANNEL)
    try:
        disconnected = await sdk.next("disconnected")
        assert disconnected["code"] == 3500
        await sdk.next("done")
        assert sdk.seen("connected") == []
        assert len(sdk.seen("disconnected")) == 1
        assert len(sdk.seen("connecting")) <= 1  # the initial one only
    finally:
        await sdk.stop()


async def test_recovery_after_a_server_restart(hub: Hub, make_token: Callable[..., str]) -> None:
    live = LiveServer(hub)
    await live.start()
    sdk = await NodeSdk.start(
        "listen", f"ws://{live.address}/connection/websocket", make_token("otto"), CHANNEL
    )
    total = 200
    publisher: asyncio.Task[None] | None = None
    try:
        first = await sdk.next("subscribed")
        assert first["wasRecovering"] is False

        async def publish() -> None:
            for n in range(1, total + 1):
                await hub.publish(CHANNEL, {"n": n})
                await asyncio.sleep(0.005)

        publisher = asyncio.create_task(publish())
        for _ in range(20):
            await sdk.next("publication")
        await live.stop()
        await asyncio.sleep(0.3)
        await live.start()
        again = await sdk.next("subscribed")
        assert again == {"event": "subscribed", "wasRecovering": True, "recovered": True}
        await publisher
        while len(sdk.seen("publication")) < total:
            await sdk.next("publication")
        offsets = [e["offset"] for e in sdk.seen("publication")]
        assert offsets == list(range(1, total + 1))
        assert [e["data"]["n"] for e in sdk.seen("publication")] == offsets
        assert sdk.seen("connecting")
    finally:
        if publisher is not None:
            publisher.cancel()
        await sdk.stop()
        await live.stop()
