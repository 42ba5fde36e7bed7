"""The history command over real sockets: limit, since, reverse, errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hubbub.hub import Hub
from support import client

CHANNEL = "news:today"


@pytest.fixture
def hub_options() -> dict[str, Any]:
    return {"namespaces": {"news": {"history_size": 5}, "live": {"history_size": 0}}}


def offsets(reply: dict[str, Any]) -> list[int]:
    return [p["offset"] for p in reply["publications"]]


async def test_history_limit_since_reverse(
    server: str, hub: Hub, make_token: Callable[..., str]
) -> None:
    for i in range(1, 8):
        await hub.publish(CHANNEL, {"n": i})
    async with client(server, token=make_token("u")) as c:
        everything = await c.ok("history", channel=CHANNEL)
        assert offsets(everything) == [3, 4, 5, 6, 7]  # history_size = 5
        assert everything["offset"] == 7
        assert everything["publications"][0]["data"] == {"n": 3}
        epoch = everything["epoch"]
        assert offsets(await c.ok("history", channel=CHANNEL, limit=2)) == [3, 4]
        assert offsets(await c.ok("history", channel=CHANNEL, limit=2, reverse=True)) == [7, 6]
        since = {"offset": 4, "epoch": epoch}
        assert offsets(await c.ok("history", channel=CHANNEL, since=since)) == [5, 6, 7]
        assert offsets(await c.ok("history", channel=CHANNEL, since=since, limit=1)) == [5]
        backwards = await c.ok("history", channel=CHANNEL, since=since, reverse=True)
        assert offsets(backwards) == [3]
        assert offsets(await c.ok("history", channel=CHANNEL, limit=0)) == []
        other = await c.ok("history", channel=CHANNEL, since={"offset": 4, "epoch": "old"})
        assert offsets(other) == []
        assert other["epoch"] == epoch


@pytest.mark.parametrize(
    ("fields", "code", "words"),
    [
        ({"since": {"offset": -1, "epoch": "e"}}, 400, "since.offset"),
        ({"since": {"offset": 1, "epoch": 5}}, 400, "since.epoch"),
        ({"limit": 10_001}, 400, "limit"),
        ({"limit": -1}, 400, "limit"),
        ({"reverse": "yes"}, 400, "reverse"),
    ],
)
async def test_bad_history_arguments(
    server: str,
    make_token: Callable[..., str],
    fields: dict[str, Any],
    code: int,
    words: str,
) -> None:
    async with client(server, token=make_token("u")) as c:
        reply = await c.request("history", channel=CHANNEL, **fields)
        assert (reply["type"], reply["code"]) == ("error", code)
        assert words in reply["message"]
        assert (await c.ok("history", channel=CHANNEL))["type"] == "ack"  # still open


async def test_history_off_is_refused(server: str, make_token: Callable[..., str]) -> None:
    async with client(server, token=make_token("u")) as c:
        reply = await c.request("history", channel="live:feed")
        assert (reply["type"], reply["code"]) == ("error", 403)
        assert "history" in reply["message"]
        # offsets still advance without history, and subscribe still reports them
        await c.ok("subscribe", channel="live:feed")
        assert (await c.ok("publish", channel="live:feed", data=1))["offset"] == 1
        assert (await c.next("message"))["offset"] == 1
