"""Exact recovery over real sockets: every offset exactly once, under concurrent publishers."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import pytest

from hubbub.hub import Hub
from support import client, publish_paced, read_across_reconnects

CHANNEL = "chat:recovery"


@pytest.fixture
def hub_options() -> dict[str, Any]:
    return {
        "namespaces": {"chat": {"history_size": 5000, "history_ttl": 600}},
        "rate_limit": 10_000,
        "rate_burst": 10_000,
    }


async def test_every_offset_exactly_once_across_reconnects(
    server: str, make_token: Callable[..., str]
) -> None:
    per_publisher = 1000
    seen, reconnects = await read_across_reconnects(
        [server],
        lambda: make_token("reader"),
        CHANNEL,
        total=2 * (per_publisher + 1),
        publishers=lambda: asyncio.gather(
            *(publish_paced(server, make_token(f"w{i}"), CHANNEL, per_publisher) for i in range(2))
        ),
        rng=random.Random(7),
    )
    assert reconnects >= 3
    assert seen == list(range(1, 2 * (per_publisher + 1) + 1))


async def test_recovery_edge_cases_give_recovered_false(
    server: str, hub: Hub, make_token: Callable[..., str]
) -> None:
    for i in range(3):
        await hub.publish(CHANNEL, {"i": i})
    async with client(server, token=make_token("u")) as c:
        ack = await c.ok("subscribe", channel=CHANNEL, since={"offset": 1, "epoch": "other"})
        assert ack["recovered"] is False
        assert ack["publications"] == []
        epoch = ack["epoch"]
        assert ack["offset"] == 3
        await c.ok("unsubscribe", channel=CHANNEL)
        ahead = await c.ok("subscribe", channel=CHANNEL, since={"offset": 9, "epoch": epoch})
        assert ahead["recovered"] is False
        await c.ok("unsubscribe", channel=CHANNEL)
        exact = await c.ok("subscribe", channel=CHANNEL, since={"offset": 1, "epoch": epoch})
        assert exact["recovered"] is True
        assert [p["data"] for p in exact["publications"]] == [{"i": 1}, {"i": 2}]


async def test_offset_older_than_history_is_not_recovered(
    make_token: Callable[..., str],
) -> None:
    from support import SECRET, serve

    hub = Hub(secret=SECRET, namespaces={"chat": {"history_size": 2}})
    try:
        async with serve(hub.asgi, hub) as server:
            for i in range(5):
                await hub.publish(CHANNEL, i)
            async with client(server, token=make_token("u")) as c:
                probe = await c.ok("history", channel=CHANNEL)
                assert [p["offset"] for p in probe["publications"]] == [4, 5]
                ack = await c.ok(
                    "subscribe", channel=CHANNEL, since={"offset": 1, "epoch": probe["epoch"]}
                )
                assert ack["recovered"] is False
                ok = await c.request(
                    "history", channel=CHANNEL, since={"offset": 3, "epoch": probe["epoch"]}
                )
                assert [p["offset"] for p in ok["publications"]] == [4, 5]
    finally:
        await hub.close()
