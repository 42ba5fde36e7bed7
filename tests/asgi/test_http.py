"""Health, readiness and Prometheus metrics over HTTP."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx

from hubbub.hub import Hub
from support import client

Token = Callable[..., str]


def sample(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match is not None, f"{name} not in metrics"
    return float(match.group(1))


async def test_health_and_ready(server: str) -> None:
    async with httpx.AsyncClient(base_url=f"http://{server}") as http:
        health = await http.get("/health")
        assert health.status_code == 200
        assert health.json() == {"status": "ok"}
        ready = await http.get("/ready")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready"}


async def test_metrics(server: str, hub: Hub, make_token: Token) -> None:
    async with (
        client(server, token=make_token("alice")) as a,
        client(server, token=make_token("bob")) as b,
    ):
        await a.ok("subscribe", channel="chat:m")
        await b.ok("subscribe", channel="chat:m")
        await a.ok("publish", channel="chat:m", data=1)
        await a.next("message")
        await b.next("message")
        await a.send("not json")
        await a.next("error")
        assert (await b.request("subscribe", channel="#alice"))["code"] == 403
        async with client(server, token="bad", welcome=False) as bad:
            assert await bad.closed() == 4001
        async with httpx.AsyncClient(base_url=f"http://{server}") as http:
            response = await http.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        text = response.text
        assert sample(text, "hubbub_connections") == 2
        assert sample(text, "hubbub_subscriptions") == 4  # two channels + two personal
        assert sample(text, 'hubbub_messages_in_total{type="subscribe"}') == 3
        assert sample(text, 'hubbub_messages_in_total{type="publish"}') == 1
        assert sample(text, 'hubbub_messages_out_total{type="message"}') == 2
        assert sample(text, 'hubbub_errors_total{code="400"}') == 1
        assert sample(text, 'hubbub_errors_total{code="403"}') == 1
        assert sample(text, 'hubbub_errors_total{code="4001"}') == 1
        assert "hubbub_publish_seconds_bucket" in text
        assert "hubbub_queue_overflows_total 0.0" in text
