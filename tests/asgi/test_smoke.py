from __future__ import annotations

from collections.abc import Callable

from support import client


async def test_two_clients_receive_a_publication(
    server: str, make_token: Callable[..., str]
) -> None:
    async with (
        client(server, token=make_token("alice")) as a,
        client(server, token=make_token("bob")) as b,
    ):
        assert a.welcome["user"] == "alice"
        await a.ok("subscribe", channel="chat:lobby")
        await b.ok("subscribe", channel="chat:lobby")
        ack = await a.ok("publish", channel="chat:lobby", data={"text": "hi"})
        assert ack["offset"] == 1
        for c in (a, b):
            msg = await c.next("message")
            assert msg["data"] == {"text": "hi"}
            assert msg["offset"] == 1
            assert msg["info"]["user"] == "alice"
