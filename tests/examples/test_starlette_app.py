"""examples/starlette_app: token from the app, publish from an endpoint."""

from __future__ import annotations

import httpx
from helpers import load

from support import client, serve


async def test_announcement_reaches_a_subscriber() -> None:
    example = load("starlette_app")
    async with (
        serve(example.app, ws="wsproto") as address,
        httpx.AsyncClient(base_url=f"http://{address}") as http,
    ):
        token = (await http.get("/token", params={"user": "alice"})).json()["token"]
        async with client(address, path="/realtime/ws", token=token) as ws:
            await ws.ok("subscribe", channel="news")
            response = await http.post("/announce", json={"headline": "hubbub 0.1"})
            assert response.status_code == 200
            message = await ws.next("message")
            assert message["data"] == {"headline": "hubbub 0.1"}
            assert message["offset"] == response.json()["offset"]
        assert (await http.get("/token", params={"user": "a b"})).status_code == 400
