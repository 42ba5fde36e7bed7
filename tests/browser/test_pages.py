"""The routes behind the demo and the dashboard (plain HTTP, no browser)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from hubbub.hub import Hub
from support import SECRET

pytestmark = pytest.mark.timeout(20)

PRODUCTION = {"secret": SECRET}


@pytest.fixture
async def http(hub: Hub) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=hub.asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub.test") as client:
        yield client


async def test_pages_and_client_module(http: httpx.AsyncClient) -> None:
    js = await http.get("/hubbub.js")
    assert js.status_code == 200
    assert js.headers["content-type"].startswith("text/javascript")
    assert "export class Hubbub" in js.text
    for path in ("/", "/dashboard"):
        page = await http.get(path)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
    for asset in ("demo.js", "demo.css", "dashboard.js", "dashboard.css"):
        assert (await http.get(f"/static/{asset}")).status_code == 200
    assert (await http.get("/static/../asgi/pages.py")).status_code == 404


async def test_demo_token_in_development_mode(hub: Hub, http: httpx.AsyncClient) -> None:
    assert (await http.get("/demo/config")).json() == {"development": True}
    reply = await http.post("/demo/token", json={"nickname": "  Ada   Lovelace "})
    assert reply.status_code == 200
    body = reply.json()
    credentials = hub.verifier.connection(body["token"])
    assert credentials.user == body["user"]
    assert body["user"].startswith("demo-")
    assert credentials.info is not None
    assert bytes(credentials.info) == b'{"name":"Ada Lovelace"}'
    again = (await http.post("/demo/token", json={"nickname": "Ada", "user": body["user"]})).json()
    assert again["user"] == body["user"]  # a refreshed token keeps the identity
    forged = (await http.post("/demo/token", json={"nickname": "Ada", "user": "admin"})).json()
    assert forged["user"].startswith("demo-")


@pytest.mark.parametrize(
    "body",
    [None, [], {}, {"nickname": ""}, {"nickname": "   "}, {"nickname": 3}, {"nickname": "x" * 33}],
)
async def test_demo_token_rejects_bad_input(http: httpx.AsyncClient, body: Any) -> None:
    if body is None:
        reply = await http.post("/demo/token", content=b"{not json")
    else:
        reply = await http.post("/demo/token", json=body)
    assert reply.status_code == 400
    assert "error" in reply.json()


async def test_dashboard_stats_in_development_mode(http: httpx.AsyncClient) -> None:
    stats = (await http.get("/dashboard/stats")).json()
    assert stats["connections"] == 0
    assert stats["top_channels"] == []
    assert stats["development"] is True
    assert {"messages_in", "messages_out", "channels", "subscriptions", "uptime"} <= set(stats)


@pytest.mark.parametrize("hub_options", [PRODUCTION])
async def test_outside_development_mode(http: httpx.AsyncClient) -> None:
    assert (await http.get("/demo/config")).json() == {"development": False}
    assert (await http.post("/demo/token", json={"nickname": "Ada"})).status_code == 404
    assert (await http.get("/dashboard")).status_code == 200  # the page asks for the key
    assert (await http.get("/dashboard/stats")).status_code == 401
    bad = await http.get("/dashboard/stats", headers={"Authorization": "apikey nope"})
    assert bad.status_code == 401
    good = await http.get("/dashboard/stats", headers={"Authorization": "apikey test-api-key"})
    assert good.status_code == 200
    assert (await http.get("/dashboard/stats?api_key=test-api-key")).status_code == 200


@pytest.mark.parametrize("hub_options", [{**PRODUCTION, "demo": False}])
async def test_demo_off(http: httpx.AsyncClient) -> None:
    assert (await http.get("/hubbub.js")).status_code == 200  # the client is always served
    for path in ("/", "/dashboard", "/dashboard/stats", "/static/demo.js"):
        assert (await http.get(path)).status_code == 404
    assert (await http.post("/demo/token", json={"nickname": "Ada"})).status_code == 404
