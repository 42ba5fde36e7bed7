"""examples/tornado_app: Tornado handlers publishing with hubbub.AsyncPublisher."""

from __future__ import annotations

import httpx
from helpers import load

import hubbub
from hubbub.auth import issue_token
from hubbub.hub import Hub
from support import SECRET, client, require, serve

KEY = "tornado-example-key"


async def test_alert_reaches_a_subscriber() -> None:
    try:
        import tornado.httpserver
        import tornado.netutil
    except ImportError:
        require(False, "tornado is not installed (pip install -e '.[dev]')")
    example = load("tornado_app")
    hub = Hub(secret=SECRET, api_key=KEY)
    try:
        async with (
            serve(hub.asgi, hub) as hub_address,
            hubbub.AsyncPublisher(f"http://{hub_address}", KEY) as publisher,
        ):
            server = tornado.httpserver.HTTPServer(example.make_app(publisher))
            [sock] = tornado.netutil.bind_sockets(0, "127.0.0.1")
            server.add_sockets([sock])
            port = sock.getsockname()[1]
            try:
                async with (
                    client(hub_address, token=issue_token(SECRET, "ops")) as ws,
                    httpx.AsyncClient() as http,
                ):
                    await ws.ok("subscribe", channel="alerts:ops")
                    response = await http.post(
                        f"http://127.0.0.1:{port}/alerts/ops", data={"text": "disk full"}
                    )
                    assert response.status_code == 200, response.text
                    message = await ws.next("message")
                    assert message["data"] == {"text": "disk full"}
                    assert message["offset"] == response.json()["offset"]
                    empty = await http.post(f"http://127.0.0.1:{port}/alerts/ops", data={})
                    assert empty.status_code == 400
            finally:
                server.stop()
                await server.close_all_connections()
    finally:
        await hub.close()
