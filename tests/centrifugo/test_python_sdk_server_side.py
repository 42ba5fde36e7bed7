"""The real Centrifugo Python SDK and what the server does on its own: the server
API's unsubscribe, the personal channel as a recoverable server-side subscription
(recovered through ``connect.subs``), and an unrecoverable position (112 when the
SDK asks for it with ``get_state``, ``recovered: false`` otherwise)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from hubbub.hub import Hub
from support import LiveServer

from .cfsdk import Events, need_sdk, sdk_client, subscription, until


@pytest.fixture(autouse=True)
def _sdk() -> None:
    need_sdk()


@pytest.fixture
def hub_options() -> dict[str, Any]:
    return {
        "namespaces": {
            "default": {"history_size": 1000, "history_ttl": 600},  # "#user" channels
            "chat": {"history_size": 1000, "history_ttl": 600},
            "small": {"history_size": 3, "history_ttl": 600},
        }
    }


async def test_server_unsubscribe_push(
    server: str, hub: Hub, make_token: Callable[..., str]
) -> None:
    ev = Events()
    c = sdk_client(server, make_token("erin"), ev)
    await c.connect()
    sub = subscription(c, "chat:room", ev)
    await sub.subscribe()
    await sub.ready()
    try:
        await hub.unsubscribe_user("erin", "chat:room")
        await until(lambda: bool(ev.unsubscribed))
        assert (ev.unsubscribed[0].code, ev.unsubscribed[0].reason) == (2000, "server unsubscribe")
        assert str(sub.state.value) == "unsubscribed"  # code < 2500: no resubscribe
        assert "chat:room" not in hub.registry
        await asyncio.sleep(0.2)
        assert len(ev.subscribed) == 1
        assert str(c.state.value) == "connected"
    finally:
        await c.disconnect()


async def test_personal_channel_is_recovered_through_connect_subs(
    hub: Hub, make_token: Callable[..., str]
) -> None:
    """The personal channel is a recoverable server-side subscription: the server
    restarts while the backend keeps publishing to ``#frank``; the SDK reconnects
    with ``connect.subs`` and gets every personal publication exactly once."""
    live = LiveServer(hub)
    await live.start()
    ev = Events()
    c = sdk_client(live.address, make_token("frank"), ev)
    await c.connect()
    total = 150
    done = asyncio.Event()

    async def publisher() -> None:
        for n in range(1, total + 1):
            await hub.publish("#frank", {"n": n})
            await asyncio.sleep(0.005)
        done.set()

    try:
        await until(lambda: bool(ev.server_subscribed))
        first = ev.server_subscribed[0]
        assert (first.channel, first.recoverable) == ("#frank", True)
        assert first.stream_position.offset == 0
        assert first.stream_position.epoch
        assert first.was_recovering is False
        task = asyncio.create_task(publisher())
        await until(lambda: len(ev.server_publications) >= 20)
        await live.stop()
        await asyncio.sleep(0.3)  # down while publishing goes on
        await live.start()
        await asyncio.wait_for(done.wait(), 20)
        await until(lambda: len(ev.server_publications) >= total, timeout=15)
        offsets = [p.offset for p in ev.server_publications]
        assert offsets == list(range(1, total + 1))
        assert [p.data["n"] for p in ev.server_publications] == offsets
        assert ev.connecting, "the SDK saw the restart"
        again = ev.server_subscribed[-1]
        assert (again.was_recovering, again.recovered) == (True, True)
        assert again.stream_position.epoch == first.stream_position.epoch
        await task
    finally:
        await c.disconnect()
        await live.stop()


async def test_unrecoverable_position(hub: Hub, make_token: Callable[..., str]) -> None:
    """History keeps 3 publications and 10 are missed. A subscription with
    ``get_state`` asks for 112 (flag bit 2): the SDK calls ``get_state`` again and
    subscribes from the position it returns. One without gets Centrifugo's
    default: ``recovered: false`` and the current position."""
    live = LiveServer(hub)
    await live.start()
    states: list[int] = []

    async def get_state(channel: str) -> Any:
        from centrifuge import StreamPosition

        top = await hub.engine.history(channel, limit=0)
        states.append(top.offset)
        return StreamPosition(offset=top.offset, epoch=top.epoch)

    strict_ev, plain_ev = Events(), Events()
    c = sdk_client(live.address, make_token("gina"), strict_ev)
    strict = subscription(c, "small:strict", strict_ev, get_state=get_state)
    plain = subscription(c, "small:plain", plain_ev)
    await c.connect()
    try:
        for sub in (strict, plain):
            await sub.subscribe()
            await sub.ready()
        assert states == [0]
        for channel in ("small:strict", "small:plain"):
            await hub.publish(channel, {"n": 1})
        await until(lambda: len(strict_ev.publications) == len(plain_ev.publications) == 1)
        await live.stop()
        for n in range(2, 12):
            for channel in ("small:strict", "small:plain"):
                await hub.publish(channel, {"n": n})
        await live.start()
        await until(lambda: len(states) == 2 and len(plain_ev.subscribed) == 2)
        assert states == [0, 11]  # get_state again, after the 112
        await until(lambda: len(strict_ev.subscribed) == 2)
        assert strict_ev.subscribed[-1].recovered is True  # from get_state's position
        resumed = plain_ev.subscribed[-1]
        assert (resumed.was_recovering, resumed.recovered) == (True, False)
        assert resumed.stream_position.offset == 11
        # both go on from the current position
        for channel in ("small:strict", "small:plain"):
            await hub.publish(channel, {"n": 12})
        await until(lambda: len(strict_ev.publications) == len(plain_ev.publications) == 2)
        assert [p.offset for p in strict_ev.publications] == [1, 12]
        assert [p.offset for p in plain_ev.publications] == [1, 12]
        presence = await hub.engine.presence("small:strict")
        assert [info.user for info in presence.values()] == ["gina"]
    finally:
        await c.disconnect()
        await live.stop()
