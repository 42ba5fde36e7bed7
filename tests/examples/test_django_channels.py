"""examples/django_channels: hubbub beside existing consumers in one asgi.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
from helpers import EXAMPLES, subprocess_server
from websockets.asyncio.client import connect

from hubbub.auth import issue_token
from support import client, free_port, require

SECRET = "example-hubbub-secret-at-least-32-bytes!"


async def test_consumer_publishes_to_hubbub(tmp_path: Path) -> None:
    try:
        import channels  # noqa: F401
    except ImportError:
        require(False, "channels is not installed (pip install -e '.[dev]')")
    port = free_port()
    address = f"127.0.0.1:{port}"
    env = {
        "DJANGO_DB": str(tmp_path / "db.sqlite3"),
        "HUBBUB_SECRET": SECRET,
        "HUBBUB_API_KEY": "channels-example-key",
        "HUBBUB_URL": f"http://{address}/hubbub",
    }
    args = [sys.executable, "-m", "uvicorn", "project.asgi:application", "--port", str(port)]
    origin = {"origin": f"http://{address}"}  # Channels' origin validator wants one
    async with (
        subprocess_server(
            args,
            cwd=EXAMPLES / "django_channels",
            env=env,
            ready_url=f"http://{address}/hubbub/ready",
        ),
        client(address, path="/hubbub/ws", token=issue_token(SECRET, "ops")) as ops,
    ):
        await ops.ok("subscribe", channel="orders")
        async with connect(f"ws://{address}/ws/echo/", **origin) as echo:  # type: ignore[arg-type]
            await echo.send(json.dumps({"hi": 1}))
            assert json.loads(await echo.recv()) == {"echo": {"hi": 1}}
        async with connect(f"ws://{address}/ws/orders/", **origin) as orders:  # type: ignore[arg-type]
            await orders.send(json.dumps({"item": "book"}))
            reply = json.loads(await orders.recv())
        message = await ops.next("message")
        assert message["data"] == {"item": "book"}
        assert message["offset"] == reply["published"]
        async with httpx.AsyncClient() as http:
            response = await http.post(f"http://{address}/restock")
            assert response.status_code == 200, response.text
        assert (await ops.next("message"))["data"] == {"restocked": True}
