"""Hub behaviour end to end: personal channels, namespaces, authorizer, limits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from healthy import bystander, still_delivers
from hubbub.auth import issue_token
from hubbub.config import load_settings
from hubbub.hub import Hub
from support import SECRET, client, serve

Token = Callable[..., str]


async def test_personal_channel(server: str, hub: Hub, make_token: Token) -> None:
    async with (
        client(server, token=make_token("alice")) as a1,
        client(server, token=make_token("alice")) as a2,
        client(server, token=make_token("bob")) as b,
    ):
        position = await hub.publish("#alice", {"note": 1})
        for c in (a1, a2):
            msg = await c.next("message")
            assert msg["channel"] == "#alice"
            assert msg["data"] == {"note": 1}
            assert msg["offset"] == position.offset
            assert msg["epoch"] == position.epoch
            assert "info" not in msg  # published by the server
        denied = await b.request("subscribe", channel="#alice")
        assert denied["code"] == 403
        denied = await b.request("publish", channel="#alice", data=1)
        assert denied["code"] == 403
        # Already subscribed automatically.
        assert (await a1.request("subscribe", channel="#alice"))["code"] == 409
        await hub.publish("#bob", "for bob")
        assert (await b.next("message"))["data"] == "for bob"
        await hub.publish("#alice", {"note": 2})
        for c in (a1, a2):
            assert (await c.next("message"))["data"] == {"note": 2}
        assert not [f for f in a1.frames + a2.frames if f["type"] == "message"]


CONFIG = f"""
[hub]
secret = "{SECRET}"
allow_anonymous = true

[namespaces.news]
publish = false

[namespaces.private]
subscribe = false

[namespaces.anon]
anonymous = true
"""


@pytest.fixture
async def config_server(tmp_path: Path) -> AsyncIterator[tuple[Hub, str]]:
    path = tmp_path / "hubbub.toml"
    path.write_text(CONFIG)
    hub = Hub(load_settings(path, environ={}))
    async with serve(hub.asgi, hub) as address:
        yield hub, address
    await hub.close()


async def test_server_only_publish(config_server: tuple[Hub, str]) -> None:
    hub, address = config_server
    async with client(address, token=issue_token(SECRET, "alice")) as a:
        await a.ok("subscribe", channel="news:today")
        denied = await a.request("publish", channel="news:today", data="spam")
        assert denied["code"] == 403
        assert "server" in denied["message"]
        await hub.publish("news:today", {"headline": "x"})
        msg = await a.next("message")
        assert msg["data"] == {"headline": "x"}
        assert msg["offset"] == 1  # the refused publish never reached the engine
        await a.ok("publish", channel="chat:lobby", data="fine elsewhere")


async def test_private_namespace(config_server: tuple[Hub, str]) -> None:
    hub, address = config_server
    plain = issue_token(SECRET, "alice")
    claims = issue_token(SECRET, "carol", channels=["private:team-*"])
    async with client(address, token=plain) as a, client(address, token=claims) as c:
        denied = await a.request("subscribe", channel="private:team-1")
        assert denied["code"] == 403
        assert "token" in denied["message"]
        for wrong in (
            issue_token(SECRET, "alice", channel="private:team-2"),  # another channel
            issue_token(SECRET, "bob", channel="private:team-1"),  # another user
            issue_token("y" * 40, "alice", channel="private:team-1"),  # bad signature
        ):
            reply = await a.request("subscribe", channel="private:team-1", token=wrong)
            assert reply["code"] == 403, reply
        sub_token = issue_token(SECRET, "alice", channel="private:team-1")
        await a.ok("subscribe", channel="private:team-1", token=sub_token)
        await c.ok("subscribe", channel="private:team-1")  # `channels` claim glob
        assert (await c.request("subscribe", channel="private:other"))["code"] == 403
        await hub.publish("private:team-1", "secret")
        assert (await a.next("message"))["data"] == "secret"
        assert (await c.next("message"))["data"] == "secret"


async def test_anonymous(config_server: tuple[Hub, str]) -> None:
    _, address = config_server
    async with client(address) as anon:
        assert anon.welcome["user"] == ""  # type: ignore[attr-defined]
        await anon.ok("subscribe", channel="anon:lobby")
        await anon.ok("publish", channel="anon:lobby", data="hello")
        msg = await anon.next("message")
        assert msg["info"]["user"] == ""
        for command in ("subscribe", "publish"):
            reply = await anon.request(command, channel="chat:lobby", data=1)
            assert reply["code"] == 403
            assert "anonymous" in reply["message"]
        assert (await anon.request("subscribe", channel="#"))["code"] in (400, 403)


@pytest.mark.parametrize("hub_options", [{"strict_namespaces": True, "namespaces": {"chat": {}}}])
async def test_strict_namespaces(server: str, hub: Hub, make_token: Token) -> None:
    async with client(server, token=make_token("alice")) as a:
        await a.ok("subscribe", channel="chat:lobby")
        await a.ok("subscribe", channel="lobby")
        for command in ("subscribe", "publish"):
            reply = await a.request(command, channel="games:x", data=1)
            assert reply["code"] == 404
            assert "games" in reply["message"]
        await a.ok("publish", channel="chat:lobby", data=1)


async def test_authorizer(server: str, hub: Hub, make_token: Token) -> None:
    calls: list[tuple[str, str, str]] = []

    async def authorizer(user: str, action: str, channel: str) -> bool:
        calls.append((user, action, channel))
        return not channel.startswith("vip:")

    hub.authorizer = authorizer
    async with (
        bystander(server, make_token("bob")) as witness,
        client(server, token=make_token("alice")) as a,
    ):
        for command in ("subscribe", "publish", "history", "presence"):
            reply = await a.request(command, channel="vip:room", data=1)
            assert reply["code"] == 403, (command, reply)
        assert ("alice", "subscribe", "vip:room") in calls
        assert ("alice", "publish", "vip:room") in calls
        await a.ok("subscribe", channel="chat:ok")
        await still_delivers(hub, witness)


@pytest.mark.parametrize("hub_options", [{"max_connections": 2}])
async def test_connection_limit_per_node(server: str, hub: Hub, make_token: Token) -> None:
    async with (
        bystander(server, make_token("bob")) as witness,
        client(server, token=make_token("carol")),
    ):
        async with client(server, token=make_token("dave"), welcome=False) as third:
            assert await third.closed() == 4003
        await still_delivers(hub, witness)
    async with client(server, token=make_token("dave")) as later:  # room again
        assert later.welcome["user"] == "dave"  # type: ignore[attr-defined]


@pytest.mark.parametrize("hub_options", [{"max_connections_per_user": 1}])
async def test_connection_limit_per_user(server: str, hub: Hub, make_token: Token) -> None:
    async with (
        bystander(server, make_token("bob")) as witness,
        client(server, token=make_token("alice")),
    ):
        async with client(server, token=make_token("alice"), welcome=False) as second:
            assert await second.closed() == 4003
        async with client(server, welcome=False) as by_frame:
            await by_frame.send({"type": "auth", "token": make_token("alice")})
            assert await by_frame.closed() == 4003
        async with client(server, token=make_token("carol")) as other_user:
            assert other_user.welcome["user"] == "carol"  # type: ignore[attr-defined]
        await still_delivers(hub, witness)
