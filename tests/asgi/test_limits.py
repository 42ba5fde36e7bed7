"""Abusive and broken clients: each is answered or closed, and nobody else notices."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from healthy import bystander, still_delivers
from hubbub.hub import Hub
from support import Client, client

Token = Callable[..., str]


@pytest.mark.parametrize(
    ("frame", "words"),
    [
        ("this is not json", ["not valid JSON"]),
        ('[{"type": "ping"}]', ["JSON object", "array"]),
        ('{"type": "dance", "id": 1}', ["unknown command type", "dance"]),
        ('{"id": 1, "channel": "chat:x"}', ["missing required field", "type"]),
        ('{"type": "subscribe", "id": 1}', ["missing required field", "channel"]),
        ('{"type": "publish", "id": 1, "channel": "chat:x"}', ["missing", "data"]),
        ('{"type": "subscribe", "id": 1, "channel": 42}', ["Expected `str`", "channel"]),
        ('{"type": "history", "id": 1, "channel": "a", "limit": "x"}', ["limit"]),
        ('{"type": "subscribe", "id": 1, "channel": "' + "c" * 256 + '"}', ["255 bytes"]),
        ('{"type": "subscribe", "id": 1, "channel": "chat lobby"}', ["invalid characters"]),
        ('{"type": "publish", "id": 1, "channel": "a/b", "data": 1}', ["invalid characters"]),
        ('{"type": "subscribe", "id": 1, "channel": ""}', ["empty"]),
    ],
)
async def test_bad_input_gets_400(
    server: str, hub: Hub, make_token: Token, frame: str, words: list[str]
) -> None:
    async with (
        bystander(server, make_token("bob")) as witness,
        client(server, token=make_token("mallory")) as bad,
    ):
        await bad.send(frame)
        error = await bad.next("error")
        assert error["code"] == 400
        for word in words:
            assert word in error["message"], error
        if '"id": 1' in frame:
            assert error["id"] == 1
        await bad.ok("subscribe", channel="chat:after")  # still works
        await still_delivers(hub, witness)


async def test_binary_frame_is_parsed_like_text(server: str, make_token: Token) -> None:
    async with client(server, token=make_token("alice")) as a:
        await a.ws.send(json.dumps({"type": "subscribe", "id": 7, "channel": "c"}).encode())
        assert (await a.next("ack"))["id"] == 7
        await a.ws.send(b"\xff\xfe")
        assert (await a.next("error"))["code"] == 400


@pytest.mark.parametrize("hub_options", [{"max_message_size": 1024}])
@pytest.mark.parametrize("payload", ["x" * 1100, "é" * 600])
async def test_frame_over_max_message_size_closes_1009(
    server: str, hub: Hub, make_token: Token, payload: str
) -> None:
    async with bystander(server, make_token("bob")) as witness:
        async with client(server, token=make_token("mallory")) as bad:
            await bad.ok("publish", channel="chat:x", data="y" * 900)  # under: fine
            frame = json.dumps({"type": "publish", "channel": "chat:x", "data": payload})
            await bad.send(frame.replace("\\u00e9", "é"))
            assert await bad.closed() == 1009
        await still_delivers(hub, witness)


@pytest.mark.parametrize("hub_options", [{"rate_limit": 4, "rate_burst": 5}])
async def test_rate_limit_429_then_recovers(server: str, hub: Hub, make_token: Token) -> None:
    async with client(server, token=make_token("alice")) as a:
        for i in range(10):
            await a.send({"type": "publish", "id": i, "channel": "chat:r", "data": i})
        replies = [await a.next() for _ in range(10)]
        assert [r["type"] for r in replies].count("ack") >= 5
        limited = [r for r in replies if r["type"] == "error"]
        assert limited
        assert all(r["code"] == 429 for r in limited)
        await asyncio.sleep(0.3)  # refills more than one token
        await a.ok("subscribe", channel="chat:r")


@pytest.mark.parametrize("hub_options", [{"rate_limit": 10, "rate_burst": 5}])
async def test_flood_closes_4029(server: str, hub: Hub, make_token: Token) -> None:
    async with bystander(server, make_token("bob")) as witness:
        async with client(server, token=make_token("mallory")) as bad:
            with contextlib.suppress(ConnectionClosed):
                for i in range(150):
                    await bad.send({"type": "ping", "id": i})
            frames: list[dict[str, Any]] = []
            with contextlib.suppress(ConnectionClosed):
                while True:
                    frames.extend(
                        json.loads(line)
                        for line in str(await asyncio.wait_for(bad.ws.recv(), 5)).split("\n")
                    )
            assert bad.ws.close_code == 4029
            errors = [f for f in frames if f["type"] == "error"]
            assert all(f["code"] == 429 for f in errors)
            # Error frames still queued when the close comes are dropped with the
            # queue (abort), so how many arrive depends on scheduling; count them here:
        metrics = hub.metrics.render().decode()
        # The 101st rejection within 10 s closes: 100 frames got a 429.
        assert 'hubbub_errors_total{code="429"} 100.0' in metrics
        assert 'hubbub_errors_total{code="4029"} 1.0' in metrics
        await still_delivers(hub, witness)


async def _read_all(c: Client, into: list[dict[str, Any]], arrived: asyncio.Event) -> None:
    with contextlib.suppress(ConnectionClosed):
        while True:
            frame = await c.next()
            if frame["type"] == "message":
                into.append(frame)
                arrived.set()


@pytest.mark.parametrize("hub_options", [{"max_queue_bytes": 64 * 1024}])
async def test_slow_consumer_closes_4008(server: str, hub: Hub, make_token: Token) -> None:
    channel = "chat:firehose"
    async with (
        client(server, token=make_token("bob")) as healthy,
        client(server, token=make_token("slow"), max_queue=1) as slow,
    ):
        await healthy.ok("subscribe", channel=channel)
        await slow.ok("subscribe", channel=channel)
        slow_id = slow.welcome["client"]  # type: ignore[attr-defined]
        received: list[dict[str, Any]] = []
        arrived = asyncio.Event()
        reader = asyncio.create_task(_read_all(healthy, received, arrived))
        chunk = "x" * (32 * 1024)
        published = 0

        async def publish_one() -> None:
            # At the healthy client's pace: its queue never holds more than one.
            nonlocal published
            published += 1
            await hub.publish(channel, {"n": published, "pad": chunk})
            while len(received) < published:
                arrived.clear()
                await asyncio.wait_for(arrived.wait(), 5)

        # The slow client stops reading (max_queue=1); the kernel buffers a few MB
        # before hubbub's queue fills, so publish until it is cut off.
        while slow_id in hub.connections:
            assert published < 3000, "the slow consumer was never closed"
            await publish_one()
        for _ in range(5):  # and a few more after it is gone
            await publish_one()
        reader.cancel()
        assert [m["data"]["n"] for m in received] == list(range(1, published + 1))
        offsets = [m["offset"] for m in received]
        assert offsets == list(range(offsets[0], offsets[0] + published))
        assert await slow.closed(timeout=8) == 4008
        assert healthy.ws.close_code is None
        assert len(hub.connections) == 1
        assert "hubbub_queue_overflows_total 1.0" in hub.metrics.render().decode()


@pytest.mark.parametrize("hub_options", [{"ping_interval": 0.2, "pong_timeout": 0.5}])
async def test_heartbeat_timeout_4009(server: str, hub: Hub, make_token: Token) -> None:
    async with (
        client(server, token=make_token("deaf")) as deaf,
        client(server, token=make_token("bob")) as alive,
    ):
        assert alive.welcome["ping_interval"] == 0.2  # type: ignore[attr-defined]
        await alive.ok("subscribe", channel="chat:hb")
        messages: list[Any] = []
        got_message = asyncio.Event()
        pings = 0

        async def answer() -> None:
            nonlocal pings
            while True:
                frame = await alive.next()
                if frame["type"] == "ping":
                    pings += 1
                    await alive.send({"type": "pong"})
                elif frame["type"] == "message":
                    messages.append(frame["data"])
                    got_message.set()

        answering = asyncio.create_task(answer())
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert (await deaf.next())["type"] == "ping"
        assert await deaf.closed(timeout=3) == 4009
        assert loop.time() - started < 2
        await asyncio.sleep(1.0)  # several more heartbeat rounds for the live one
        await hub.publish("chat:hb", "still here")
        await asyncio.wait_for(got_message.wait(), 3)
        assert messages == ["still here"]
        answering.cancel()
        assert pings >= 4
        assert len(hub.connections) == 1
