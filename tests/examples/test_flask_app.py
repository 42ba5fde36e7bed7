"""examples/flask_app: a WSGI app publishing to a standalone hub with hubbub.Publisher."""

from __future__ import annotations

import threading

import httpx
import pytest
from helpers import load

from hubbub.hub import Hub
from support import SECRET, client, require, serve

KEY = "flask-example-key"


async def test_view_notifies_the_user(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        from werkzeug.serving import make_server
    except ImportError:
        require(False, "flask is not installed (pip install -e '.[dev]')")

    hub = Hub(secret=SECRET, api_key=KEY)
    try:
        async with serve(hub.asgi, hub) as hub_address:
            monkeypatch.setenv("HUBBUB_URL", f"http://{hub_address}")
            monkeypatch.setenv("HUBBUB_SECRET", SECRET)
            monkeypatch.setenv("HUBBUB_API_KEY", KEY)
            example = load("flask_app")
            server = make_server("127.0.0.1", 0, example.app, threaded=True)
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            try:
                base = f"http://127.0.0.1:{server.server_port}"
                async with httpx.AsyncClient(base_url=base, headers={"X-User": "alice"}) as http:
                    token = (await http.get("/hubbub-token")).json()["token"]
                    async with client(hub_address, token=token) as ws:
                        response = await http.post("/orders/42/ship")
                        assert response.json()["notified"] is True
                        message = await ws.next("message")
                        assert message["channel"] == "#alice"
                        assert message["data"] == {"order": 42, "status": "shipped"}
                    assert (
                        await http.get("/hubbub-token", headers={"X-User": ""})
                    ).status_code == 401
            finally:
                server.shutdown()
                thread.join(5)
                server.server_close()
                example.publisher.close()
    finally:
        await hub.close()
