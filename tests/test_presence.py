"""Presence, presence_stats and join/leave over real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from support import client

CHANNEL = "room:blue"


@pytest.fixture
def hub_options() -> dict[str, Any]:
    return {
        "namespaces": {
            "quiet": {"presence": False, "join_leave": False},
            "private": {"subscribe": False},
        },
        "ping_interval": 0.3,
        "pong_timeout": 0.3,
    }


async def test_presence_lists_subscribers_with_token_info(
    server: str, make_token: Callable[..., str]
) -> None:
    async with (
        client(server, token=make_token("alice", info={"name": "Alice"})) as a,
        client(server, token=make_token("bob")) as b,
    ):
        await a.ok("subscribe", channel=CHANNEL)
        await b.ok("subscribe", channel=CHANNEL)
        reply = await a.ok("presence", channel=CHANNEL)
        clients = reply["clients"]
        assert set(clients) == {a.welcome["client"], b.welcome["client"]}
        assert clients[a.welcome["client"]] == {
            "client": a.welcome["client"],
            "user": "alice",
            "info": {"name": "Alice"},
        }
        assert clients[b.welcome["client"]]["user"] == "bob"
        stats = await b.ok("presence_stats", channel=CHANNEL)
        assert (stats["num_clients"], stats["num_users"]) == (2, 2)


async def test_join_and_leave_go_to_the_others_only(
    server: str, make_token: Callable[..., str]
) -> None:
    async with client(server, token=make_token("alice")) as a:
        await a.ok("subscribe", channel=CHANNEL)
        async with client(server, token=make_token("bob")) as b:
            await b.ok("subscribe", channel=CHANNEL)
            join = await a.next("join")
            assert join == {
                "type": "join",
                "channel": CHANNEL,
                "info": {"client": b.welcome["client"], "user": "bob"},
            }
            await b.ok("unsubscribe", channel=CHANNEL)
            leave = await a.next("leave")
            assert leave["info"]["client"] == b.welcome["client"]
            await b.ok("subscribe", channel=CHANNEL)
            await a.next("join")
        # bob disconnected without unsubscribing: a leave all the same
        leave = await a.next("leave")
        assert leave["info"]["user"] == "bob"
        stats = await a.ok("presence_stats", channel=CHANNEL)
        assert stats["num_clients"] == 1
        # alice never saw her own join or leave
        assert not [f for f in a.frames if f["info"]["user"] == "alice"]


async def test_presence_off_gives_403_and_no_join_events(
    server: str, make_token: Callable[..., str]
) -> None:
    async with (
        client(server, token=make_token("alice")) as a,
        client(server, token=make_token("bob")) as b,
    ):
        await a.ok("subscribe", channel="quiet:x")
        await b.ok("subscribe", channel="quiet:x")
        reply = await a.request("presence", channel="quiet:x")
        assert (reply["type"], reply["code"]) == ("error", 403)
        reply = await a.request("presence_stats", channel="quiet:x")
        assert reply["code"] == 403
        await b.ok("publish", channel="quiet:x", data=1)
        await a.next("message")
        assert not [f for f in a.frames if f["type"] in ("join", "leave")]


async def test_presence_of_a_channel_one_may_not_subscribe_is_403(
    server: str, make_token: Callable[..., str]
) -> None:
    async with client(server, token=make_token("alice")) as a:
        reply = await a.request("presence", channel="private:board")
        assert (reply["type"], reply["code"]) == ("error", 403)
        reply = await a.request("presence", channel="#bob")
        assert reply["code"] == 403
        assert (await a.ok("presence", channel=CHANNEL))["clients"] == {}


async def test_a_silent_client_leaves_presence_within_the_heartbeat_timeout(
    server: str, make_token: Callable[..., str]
) -> None:
    async with client(server, token=make_token("watcher")) as w:
        await w.ok("subscribe", channel=CHANNEL)
        async with client(server, token=make_token("ghost")) as ghost:
            await ghost.ok("subscribe", channel=CHANNEL)
            assert len((await w.ok("presence", channel=CHANNEL))["clients"]) == 2
            # The watcher answers pings; the ghost never does.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 3
            leave = None
            while loop.time() < deadline and leave is None:
                frame = await w.next(timeout=deadline - loop.time())
                if frame["type"] == "ping":
                    await w.send({"type": "pong"})
                elif frame["type"] == "leave":
                    leave = frame
            assert leave is not None
            assert leave["info"]["user"] == "ghost"
            assert await ghost.closed() == 4009
        clients = (await w.ok("presence", channel=CHANNEL))["clients"]
        assert [c["user"] for c in clients.values()] == ["watcher"]
