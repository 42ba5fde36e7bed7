"""examples/fastapi_app: cookie login shared by HTTP and WebSocket, rooms, notifications."""

from __future__ import annotations

import httpx
from helpers import load

from support import client, serve


async def test_chat_room_and_notifications() -> None:
    example = load("fastapi_app")
    async with (
        serve(example.app, ws="wsproto") as address,
        httpx.AsyncClient(base_url=f"http://{address}") as alice_http,
        httpx.AsyncClient(base_url=f"http://{address}") as bob_http,
    ):
        for http, name in ((alice_http, "alice"), (bob_http, "bob")):
            assert (await http.post("/login", json={"name": name})).status_code == 200
        alice_cookie = f"session={alice_http.cookies['session']}"
        bob_cookie = f"session={bob_http.cookies['session']}"
        async with (
            client(
                address, path="/realtime/ws", additional_headers={"Cookie": alice_cookie}
            ) as alice,
            client(address, path="/realtime/ws", additional_headers={"Cookie": bob_cookie}) as bob,
        ):
            assert alice.welcome["user"] == "alice"
            for ws in (alice, bob):
                await ws.ok("subscribe", channel="chat:lobby")
            # clients read rooms; writing goes through the app
            refused = await alice.request("publish", channel="chat:lobby", data="x")
            assert refused["code"] == 403
            response = await alice_http.post("/rooms/lobby/messages", json={"text": "hi all"})
            assert response.status_code == 200, response.text
            for ws in (alice, bob):
                message = await ws.next("message")
                assert message["data"] == {"user": "alice", "text": "hi all"}
            assert (await bob_http.post("/notify/alice", json={"text": "ping"})).status_code == 200
            note = await alice.next("message")
            assert note["channel"] == "#alice"
            assert note["data"] == {"from": "bob", "text": "ping"}
        # no session cookie: the endpoint refuses, the handshake closes with 4001
        alice_http.cookies.clear()
        response = await alice_http.post("/rooms/lobby/messages", json={"text": "x"})
        assert response.status_code == 401
        async with client(address, path="/realtime/ws", welcome=False) as anonymous:
            assert await anonymous.closed() == 4001
