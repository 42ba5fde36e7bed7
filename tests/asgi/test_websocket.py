"""Protocol v1 over real sockets: handshake, auth, commands, batching."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from healthy import bystander, still_delivers
from hubbub.errors import CommandError, ErrorCode
from hubbub.hub import Hub, RpcContext
from support import client

Token = Callable[..., str]


async def test_welcome(server: str, make_token: Token, hub: Hub) -> None:
    async with client(server, token=make_token("alice")) as c:
        welcome = c.welcome  # type: ignore[attr-defined]
        assert welcome["user"] == "alice"
        assert welcome["version"] == "1"
        assert welcome["ping_interval"] == hub.settings.ping_interval
        assert welcome["client"] in hub.connections
        async with client(server, token=make_token("alice")) as other:
            assert other.welcome["client"] != welcome["client"]  # type: ignore[attr-defined]


async def test_subscribe_publish_unsubscribe(server: str, make_token: Token) -> None:
    async with (
        client(server, token=make_token("alice")) as a,
        client(server, token=make_token("bob")) as b,
    ):
        sub = await a.ok("subscribe", channel="chat:lobby")
        assert sub["offset"] == 0
        assert isinstance(sub["epoch"], str)
        assert "recovered" not in sub
        await b.ok("subscribe", channel="chat:lobby")
        again = await a.request("subscribe", channel="chat:lobby")
        assert again["type"] == "error"
        assert again["code"] == ErrorCode.ALREADY_SUBSCRIBED
        ack = await b.ok("publish", channel="chat:lobby", data={"text": "hi"})
        assert ack["offset"] == 1
        assert ack["epoch"] == sub["epoch"]
        for c in (a, b):  # the publisher gets its own publication too
            msg = await c.next("message")
            assert msg["channel"] == "chat:lobby"
            assert msg["data"] == {"text": "hi"}
            assert msg["offset"] == 1
            assert msg["epoch"] == sub["epoch"]
            assert msg["info"]["user"] == "bob"
            assert msg["info"]["client"] == b.welcome["client"]  # type: ignore[attr-defined]
        assert (await a.ok("unsubscribe", channel="chat:lobby")) == {"type": "ack", "id": 3}
        await b.ok("publish", channel="chat:lobby", data=2)
        assert (await b.next("message"))["data"] == 2
        await b.ok("publish", channel="chat:other", data="x")
        # a left chat:lobby: the next message it gets is from a channel it joins now.
        await a.ok("subscribe", channel="chat:lobby")
        await b.ok("publish", channel="chat:lobby", data=3)
        msg = await a.next("message")
        assert msg["data"] == 3
        assert msg["offset"] == 3


async def test_fire_and_forget_has_no_ack(server: str, make_token: Token) -> None:
    async with client(server, token=make_token("alice")) as a:
        await a.send({"type": "subscribe", "channel": "chat:ff"})
        await a.send({"type": "publish", "channel": "chat:ff", "data": 1})
        await a.send({"type": "publish", "channel": "bad channel", "data": 1})
        msg = await a.next("message")
        assert msg["data"] == 1
        error = await a.next("error")
        assert error["code"] == 400
        assert "id" not in error
        assert not [f for f in a.frames if f["type"] == "ack"]


async def test_ping_pong(server: str, make_token: Token) -> None:
    async with client(server, token=make_token("alice")) as a:
        await a.send({"type": "ping", "id": 4})
        assert (await a.next()) == {"type": "pong"}


async def test_rpc(server: str, make_token: Token, hub: Hub) -> None:
    seen: list[RpcContext] = []

    @hub.rpc("echo")
    async def echo(ctx: RpcContext, data: Any) -> Any:
        seen.append(ctx)
        return {"echo": data}

    @hub.rpc("nothing")
    async def nothing(ctx: RpcContext, data: Any) -> None:
        return None

    @hub.rpc("boom")
    async def boom(ctx: RpcContext, data: Any) -> Any:
        raise RuntimeError("secret database password in a traceback")

    @hub.rpc("refuse")
    async def refuse(ctx: RpcContext, data: Any) -> Any:
        raise CommandError(ErrorCode.PERMISSION_DENIED, "not for you")

    async with client(server, token=make_token("alice")) as a:
        reply = await a.ok("rpc", method="echo", data=[1, "x"])
        assert reply["data"] == {"echo": [1, "x"]}
        assert seen[0].user == "alice"
        assert seen[0].client == a.welcome["client"]  # type: ignore[attr-defined]
        assert (await a.ok("rpc", method="nothing"))["data"] is None
        error = await a.request("rpc", method="boom", data=None)
        assert error["type"] == "error"
        assert error["code"] == 500
        assert "ref " in error["message"]
        assert "password" not in error["message"]
        assert "Traceback" not in error["message"]
        refused = await a.request("rpc", method="refuse")
        assert (refused["code"], refused["message"]) == (403, "not for you")
        unknown = await a.request("rpc", method="nope")
        assert unknown["code"] == 400
        assert "nope" in unknown["message"]
        assert (await a.ok("rpc", method="echo", data=2))["data"] == {"echo": 2}


async def test_auth_frame(server: str, make_token: Token) -> None:
    async with client(server, welcome=False) as a:
        await a.send({"type": "auth", "token": make_token("alice")})
        welcome = await a.next()
        assert welcome["type"] == "welcome"
        assert welcome["user"] == "alice"
        await a.ok("subscribe", channel="chat:lobby")


@pytest.mark.parametrize("where", ["query", "bearer", "cookie"])
async def test_token_sources(server: str, make_token: Token, where: str) -> None:
    token = make_token("alice")
    kwargs: dict[str, Any] = {}
    if where == "query":
        kwargs["token"] = token
    elif where == "bearer":
        kwargs["additional_headers"] = {"Authorization": f"Bearer {token}"}
    else:
        kwargs["additional_headers"] = {"Cookie": f"other=1; hubbub_token={token}"}
    async with client(server, **kwargs) as a:
        assert a.welcome["user"] == "alice"  # type: ignore[attr-defined]


async def test_query_token_comes_first(server: str, make_token: Token) -> None:
    headers = {"Authorization": f"Bearer {make_token('bob')}"}
    async with client(server, token=make_token("alice"), additional_headers=headers) as a:
        assert a.welcome["user"] == "alice"  # type: ignore[attr-defined]


def _alg_none(user: str) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'sub': user})}."


@pytest.mark.parametrize("kind", ["invalid", "expired", "alg_none", "wrong_secret"])
@pytest.mark.parametrize("where", ["query", "auth_frame"])
async def test_bad_token_closes_4001(
    server: str, hub: Hub, make_token: Token, kind: str, where: str
) -> None:
    from hubbub.auth import issue_token

    token = {
        "invalid": "not-a-jwt",
        "expired": make_token("mallory", ttl=-30),
        "alg_none": _alg_none("mallory"),
        "wrong_secret": issue_token("x" * 40, "mallory"),
    }[kind]
    async with bystander(server, make_token("bob")) as witness:
        if where == "query":
            async with client(server, token=token, welcome=False) as bad:
                assert await bad.closed() == 4001
        else:
            async with client(server, welcome=False) as bad:
                await bad.send({"type": "auth", "token": token})
                assert await bad.closed() == 4001
        await still_delivers(hub, witness)


async def test_first_frame_not_auth_closes_4001(server: str, hub: Hub, make_token: Token) -> None:
    async with bystander(server, make_token("bob")) as witness:
        async with client(server, welcome=False) as bad:
            await bad.send({"type": "subscribe", "id": 1, "channel": "chat:lobby"})
            assert await bad.closed() == 4001
        await still_delivers(hub, witness)


@pytest.mark.parametrize("hub_options", [{"auth_timeout": 0.3}])
async def test_auth_timeout(server: str, hub: Hub, make_token: Token) -> None:
    async with bystander(server, make_token("bob")) as witness:
        async with client(server, welcome=False) as slow:
            loop = asyncio.get_running_loop()
            started = loop.time()
            assert await slow.closed(timeout=3) == 4001
            assert 0.2 < loop.time() - started < 2.5
        await still_delivers(hub, witness)


async def test_origin(server: str, hub: Hub, make_token: Token) -> None:
    token = make_token("alice")
    async with bystander(server, make_token("bob")) as witness:
        async with client(server, token=token, welcome=False, origin="http://evil.example") as evil:
            assert await evil.closed() == 4003
        async with client(server, token=token, origin=f"http://{server}") as same:
            assert same.welcome["user"] == "alice"  # type: ignore[attr-defined]
        async with client(server, token=token) as no_origin:  # servers, scripts, apps
            assert no_origin.welcome["user"] == "alice"  # type: ignore[attr-defined]
        await still_delivers(hub, witness)


@pytest.mark.parametrize("hub_options", [{"allowed_origins": ["https://app.example.com"]}])
async def test_allowed_origins(server: str, make_token: Token) -> None:
    token = make_token("alice")
    async with client(server, token=token, origin="https://app.example.com") as ok:
        assert ok.welcome["user"] == "alice"  # type: ignore[attr-defined]
    async with client(server, token=token, welcome=False, origin=f"http://{server}") as same:
        assert await same.closed() == 4003
    async with client(server, token=token, welcome=False, origin="https://evil.example") as bad:
        assert await bad.closed() == 4003


@pytest.mark.parametrize("batch", [True, False])
async def test_batching(server: str, hub: Hub, make_token: Token, batch: bool) -> None:
    query = "batch=1" if batch else ""
    async with client(server, token=make_token("alice"), query=query) as a:
        await a.ok("subscribe", channel="chat:batch")
        await asyncio.gather(*(hub.publish("chat:batch", i) for i in range(50)))
        objects: list[dict[str, Any]] = []
        frames = 0
        while len(objects) < 50:
            raw = await asyncio.wait_for(a.ws.recv(), 5)
            frames += 1
            objects.extend(json.loads(line) for line in str(raw).split("\n"))
        assert [o["data"] for o in objects] == list(range(50))
        assert [o["offset"] for o in objects] == list(range(1, 51))
        if batch:
            assert frames < 50
        else:
            assert frames == 50
