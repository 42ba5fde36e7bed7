"""The HTTP server API over a real server, every answer checked against the
OpenAPI document the server itself serves."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jsonschema
import pytest
from openapi_spec_validator import validate

from hubbub.asgi.api import BODY_ALLOWANCE
from hubbub.errors import EngineUnavailable
from hubbub.hub import Hub
from support import SECRET, client, serve

KEY = "test-api-key"
AUTH = {"Authorization": f"apikey {KEY}"}


@pytest.fixture
def hub_options() -> dict[str, Any]:
    return {"namespaces": {"news": {"publish": False}}, "max_message_size": 1024}


class Api:
    """An httpx client that validates every answer against ``/api/openapi.json``."""

    def __init__(self, http: httpx.AsyncClient, document: dict[str, Any]) -> None:
        self.http = http
        self.document = document
        self._templates = [
            (re.compile("^" + re.sub(r"\{\w+\}", "[^/]+", path) + "$"), path)
            for path in document["paths"]
        ]

    def _template(self, path: str) -> str | None:
        for pattern, template in self._templates:
            if pattern.match(path):
                return template
        return None

    def check(self, response: httpx.Response) -> Any:
        """Assert that ``response`` is documented and matches its schema; its JSON."""
        body = response.json()
        assert "Traceback" not in response.text
        template = self._template(response.request.url.path)
        operation = (self.document["paths"].get(template) or {}).get(
            response.request.method.lower()
        )
        if operation is None:  # unknown route or method: still the documented error shape
            assert response.status_code in (404, 405)
            schema: dict[str, Any] = {"$ref": "#/components/schemas/ErrorResponse"}
        else:
            documented = operation["responses"]
            assert str(response.status_code) in documented, (template, response.status_code)
            media = documented[str(response.status_code)]["content"]["application/json"]
            schema = media["schema"]
        jsonschema.Draft202012Validator(
            {**schema, "components": self.document["components"]}
        ).validate(body)
        return body

    async def call(
        self, method: str, path: str, *, status: int = 200, auth: bool = True, **kwargs: Any
    ) -> Any:
        headers = {**(AUTH if auth else {}), **kwargs.pop("headers", {})}
        response = await self.http.request(method, path, headers=headers, **kwargs)
        assert response.status_code == status, response.text
        return self.check(response)

    async def error(self, method: str, path: str, status: int, **kwargs: Any) -> str:
        """Call expecting an error; its message."""
        body = await self.call(method, path, status=status, **kwargs)
        return str(body["error"]["message"])


@contextlib.asynccontextmanager
async def open_api(address: str) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=f"http://{address}") as http:
        document = (await http.get("/api/openapi.json")).json()
        yield Api(http, document)


@pytest.fixture
async def api(server: str) -> AsyncIterator[Api]:
    async with open_api(server) as api:
        yield api


# ------------------------------------------------------------------- the document


async def test_openapi_document_is_valid_and_covers_every_route(api: Api) -> None:
    response = await api.http.get("/api/openapi.json")  # no key needed
    assert response.status_code == 200
    document = response.json()
    validate(document)  # OpenAPI 3.1 schema + references
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {
        "/api/publish",
        "/api/broadcast",
        "/api/batch",
        "/api/channels",
        "/api/channels/{channel}/history",
        "/api/channels/{channel}/presence",
        "/api/channels/{channel}/presence_stats",
        "/api/users/{user}/disconnect",
        "/api/users/{user}/unsubscribe",
        "/api/info",
        "/api/openapi.json",
    }
    history = document["paths"]["/api/channels/{channel}/history"]["get"]
    assert {p["name"] for p in history["parameters"]} == {
        "channel",
        "limit",
        "since_offset",
        "epoch",
        "reverse",
    }
    assert document["servers"] == [{"url": "/"}]


# ------------------------------------------------------------------------ publish


async def test_publish_reaches_a_websocket_subscriber(
    api: Api, server: str, make_token: Callable[..., str]
) -> None:
    async with client(server, token=make_token("alice")) as ws:
        await ws.ok("subscribe", channel="chat:lobby")
        result = await api.call(
            "POST", "/api/publish", json={"channel": "chat:lobby", "data": {"text": "hi"}}
        )
        assert result["offset"] == 1
        message = await ws.next("message")
        assert message["data"] == {"text": "hi"}
        assert message["offset"] == 1
        assert message["epoch"] == result["epoch"]
        assert "info" not in message  # published by the server, not a client


async def test_publish_to_a_personal_channel(
    api: Api, server: str, make_token: Callable[..., str]
) -> None:
    async with client(server, token=make_token("42")) as ws:
        await api.call("POST", "/api/publish", json={"channel": "#42", "data": [1, 2]})
        assert (await ws.next("message"))["data"] == [1, 2]


async def test_server_publishes_where_clients_may_not(
    api: Api, server: str, make_token: Callable[..., str]
) -> None:
    async with client(server, token=make_token("alice")) as ws:
        await ws.ok("subscribe", channel="news:today")
        refused = await ws.request("publish", channel="news:today", data=1)
        assert refused["type"] == "error"
        assert refused["code"] == 403
        await api.call("POST", "/api/publish", json={"channel": "news:today", "data": 2})
        assert (await ws.next("message"))["data"] == 2


async def test_idempotency_key_publishes_once(
    api: Api, server: str, make_token: Callable[..., str]
) -> None:
    body = {"channel": "orders", "data": {"id": 7}, "idempotency_key": "order-7"}
    async with client(server, token=make_token("alice")) as ws:
        await ws.ok("subscribe", channel="orders")
        first = await api.call("POST", "/api/publish", json=body)
        second = await api.call("POST", "/api/publish", json=body)
        assert second == first
        other = await api.call("POST", "/api/publish", json={**body, "idempotency_key": "x"})
        assert other["offset"] == first["offset"] + 1
        assert (await ws.next("message"))["offset"] == first["offset"]
        assert (await ws.next("message"))["offset"] == other["offset"]
    history = await api.call("GET", "/api/channels/orders/history")
    assert [p["offset"] for p in history["publications"]] == [1, 2]


# ----------------------------------------------------------------------- bad input


async def test_wrong_or_missing_key_is_401_without_side_effect(api: Api) -> None:
    body = {"channel": "chat:a", "data": 1}
    for headers in ({}, {"Authorization": "apikey nope"}, {"Authorization": f"Bearer {KEY}"}):
        message = await api.error(
            "POST", "/api/publish", 401, auth=False, headers=headers, json=body
        )
        assert "key" in message.lower()
    response = await api.http.get("/api/info")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "apikey"
    history = await api.call("GET", "/api/channels/chat:a/history")
    assert history["offset"] == 0
    assert history["publications"] == []


async def test_no_configured_key_refuses_everything() -> None:
    hub = Hub(secret=SECRET)  # no api_key
    try:
        async with serve(hub.asgi, hub) as address, open_api(address) as api:
            for headers in ({}, {"Authorization": "apikey anything"}):
                message = await api.error("GET", "/api/info", 401, auth=False, headers=headers)
                assert "HUBBUB_API_KEY" in message
    finally:
        await hub.close()


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"not json", "not valid JSON"),
        (b"", "empty"),
        (b"[1]", "Expected `object`"),
        (b'{"data": 1}', "`channel`"),
        (b'{"channel": "a"}', "`data`"),
        (b'{"channel": "a", "data": 1, "extra": 2}', "unknown field `extra`"),
        (b'{"channel": 5, "data": 1}', "$.channel"),
        (b'{"channel": "bad channel!", "data": 1}', "invalid characters"),
        (b'{"channel": "", "data": 1}', "must not be empty"),
        (b'{"channel": "a", "data": 1, "idempotency_key": ""}', "idempotency_key"),
    ],
)
async def test_bad_publish_is_400_naming_the_problem(api: Api, body: bytes, named: str) -> None:
    message = await api.error("POST", "/api/publish", 400, content=body)
    assert named in message


async def test_body_over_the_limit_is_413(api: Api, hub: Hub) -> None:
    limit = hub.settings.max_message_size + BODY_ALLOWANCE
    big = b'{"channel": "a", "data": "' + b"x" * limit + b'"}'
    message = await api.error("POST", "/api/publish", 413, content=big)
    assert str(limit) in message

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(4):
            yield b" " * (limit // 2)

    assert "limit" in await api.error("POST", "/api/publish", 413, content=chunks())
    # within the body limit, but data itself is over max_message_size
    data = "y" * hub.settings.max_message_size
    message = await api.error("POST", "/api/publish", 413, json={"channel": "a", "data": data})
    assert "max_message_size" in message
    history = await api.call("GET", "/api/channels/a/history")
    assert history["offset"] == 0


async def test_engine_unavailable_is_503(api: Api, hub: Hub, monkeypatch: Any) -> None:
    async def down(*args: Any, **kwargs: Any) -> Any:
        raise EngineUnavailable("redis is down")

    monkeypatch.setattr(hub.engine, "publish", down)
    monkeypatch.setattr(hub.engine, "history", down)
    assert "redis is down" in await api.error(
        "POST", "/api/publish", 503, json={"channel": "a", "data": 1}
    )
    assert "redis is down" in await api.error("GET", "/api/channels/a/history", 503)
    # every item failed the same way: the whole call says so
    await api.error("POST", "/api/broadcast", 503, json={"channels": ["a", "b"], "data": 1})


async def test_unexpected_failure_is_500_with_a_reference(
    api: Api, hub: Hub, monkeypatch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(hub.engine, "presence", broken)
    message = await api.error("GET", "/api/channels/a/presence", 500)
    assert "secret internals" not in message
    reference = re.search(r"ref (\w+)", message)
    assert reference is not None
    assert reference.group(1) in caplog.text


async def test_unknown_route_and_wrong_method(api: Api) -> None:
    assert "/api/nope" in await api.error("GET", "/api/nope", 404)
    response = await api.http.get("/api/publish", headers=AUTH)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    api.check(response)


async def test_strict_namespaces_unknown_namespace_is_404() -> None:
    hub = Hub(secret=SECRET, api_key=KEY, strict_namespaces=True)
    try:
        async with serve(hub.asgi, hub) as address, open_api(address) as api:
            body = await api.call(
                "POST",
                "/api/publish",
                status=404,
                json={"channel": "nope:x", "data": 1},
            )
            assert body["error"]["code"] == "unknown_namespace"
            assert "nope" in body["error"]["message"]
    finally:
        await hub.close()


# ---------------------------------------------------------------- broadcast, batch


async def test_broadcast(api: Api, server: str, make_token: Callable[..., str]) -> None:
    async with (
        client(server, token=make_token("alice")) as a,
        client(server, token=make_token("bob")) as b,
    ):
        await a.ok("subscribe", channel="room:1")
        await b.ok("subscribe", channel="room:2")
        result = await api.call(
            "POST", "/api/broadcast", json={"channels": ["room:1", "room:2", "#bob"], "data": "x"}
        )
        assert [r["channel"] for r in result["results"]] == ["room:1", "room:2", "#bob"]
        assert all(r["offset"] == 1 for r in result["results"])
        assert (await a.next("message"))["channel"] == "room:1"
        got = {(await b.next("message"))["channel"] for _ in range(2)}
        assert got == {"room:2", "#bob"}
    twice = await api.error("POST", "/api/broadcast", 400, json={"channels": ["a", "a"], "data": 1})
    assert "twice" in twice
    bad = await api.error("POST", "/api/broadcast", 400, json={"channels": ["c", "b d"], "data": 1})
    assert "invalid characters" in bad
    await api.error("POST", "/api/broadcast", 400, json={"channels": [], "data": 1})
    # nothing was published by the refused calls
    assert (await api.call("GET", "/api/channels/c/history"))["offset"] == 0


async def test_broadcast_idempotency(api: Api) -> None:
    body = {"channels": ["p", "q"], "data": 1, "idempotency_key": "k"}
    first = await api.call("POST", "/api/broadcast", json=body)
    assert await api.call("POST", "/api/broadcast", json=body) == first
    assert (await api.call("GET", "/api/channels/q/history"))["offset"] == 1


async def test_batch_runs_in_order(api: Api, server: str, make_token: Callable[..., str]) -> None:
    async with client(server, token=make_token("alice")) as ws:
        await ws.ok("subscribe", channel="feed")
        commands = [{"channel": "feed", "data": i} for i in range(5)]
        commands.append({"channel": "other", "data": "x"})
        result = await api.call("POST", "/api/batch", json={"commands": commands})
        assert [r["offset"] for r in result["results"]] == [1, 2, 3, 4, 5, 1]
        assert [(await ws.next("message"))["data"] for _ in range(5)] == [0, 1, 2, 3, 4]
    message = await api.error(
        "POST",
        "/api/batch",
        400,
        json={"commands": [{"channel": "feed", "data": 9}, {"channel": "x y", "data": 1}]},
    )
    assert message.startswith("commands[1]: ")
    unknown = await api.error(
        "POST", "/api/batch", 400, json={"commands": [{"channel": "a", "data": 1, "x": 1}]}
    )
    assert "unknown field `x`" in unknown
    assert (await api.call("GET", "/api/channels/feed/history"))["offset"] == 5


# ---------------------------------------------------------- reads and disconnect


async def test_channels_lists_this_nodes_subscriptions(
    api: Api, server: str, make_token: Callable[..., str], hub: Hub
) -> None:
    async with (
        client(server, token=make_token("alice")) as a,
        client(server, token=make_token("bob")) as b,
    ):
        await a.ok("subscribe", channel="chat:lobby")
        await b.ok("subscribe", channel="chat:lobby")
        await b.ok("subscribe", channel="news:x")
        result = await api.call("GET", "/api/channels")
        assert result["node"] == hub.node_id
        assert result["channels"]["chat:lobby"] == {"num_clients": 2}
        assert result["channels"]["news:x"] == {"num_clients": 1}
        assert result["channels"]["#alice"] == {"num_clients": 1}
        only_chat = await api.call("GET", "/api/channels", params={"pattern": "chat:*"})
        assert set(only_chat["channels"]) == {"chat:lobby"}
    message = await api.error("GET", "/api/channels", 400, params={"glob": "x"})
    assert "unknown query parameter `glob`" in message


async def test_history_queries(api: Api) -> None:
    commands = [{"channel": "log", "data": i} for i in range(1, 6)]
    await api.call("POST", "/api/batch", json={"commands": commands})
    everything = await api.call("GET", "/api/channels/log/history")
    assert [p["data"] for p in everything["publications"]] == [1, 2, 3, 4, 5]
    assert everything["offset"] == 5
    epoch = everything["epoch"]
    limited = await api.call("GET", "/api/channels/log/history", params={"limit": 2})
    assert [p["offset"] for p in limited["publications"]] == [1, 2]
    newest = await api.call(
        "GET", "/api/channels/log/history", params={"limit": 2, "reverse": "true"}
    )
    assert [p["offset"] for p in newest["publications"]] == [5, 4]
    since = await api.call(
        "GET", "/api/channels/log/history", params={"since_offset": 3, "epoch": epoch}
    )
    assert [p["offset"] for p in since["publications"]] == [4, 5]
    other_epoch = await api.call(
        "GET", "/api/channels/log/history", params={"since_offset": 3, "epoch": "other"}
    )
    assert other_epoch["publications"] == []
    assert other_epoch["epoch"] == epoch
    for params, named in [
        ({"limit": "many"}, "limit"),
        ({"limit": -1}, "limit"),
        ({"epoch": epoch}, "since_offset"),
        ({"since": 1}, "since"),
    ]:
        assert named in await api.error("GET", "/api/channels/log/history", 400, params=params)
    assert "invalid characters" in await api.error("GET", "/api/channels/a%20b/history", 400)


async def test_presence_and_stats(api: Api, server: str, make_token: Callable[..., str]) -> None:
    async with (
        client(server, token=make_token("alice", info={"name": "Alice"})) as a,
        client(server, token=make_token("bob")) as b,
        client(server, token=make_token("bob")) as b2,
    ):
        for c in (a, b, b2):
            await c.ok("subscribe", channel="chat:room")
        presence = await api.call("GET", "/api/channels/chat:room/presence")
        users = sorted(entry["user"] for entry in presence["clients"].values())
        assert users == ["alice", "bob", "bob"]
        alice = next(e for e in presence["clients"].values() if e["user"] == "alice")
        assert alice["info"] == {"name": "Alice"}
        assert alice["client"] == a.welcome["client"]
        stats = await api.call("GET", "/api/channels/chat:room/presence_stats")
        assert stats == {"num_clients": 3, "num_users": 2}
    await api.error("GET", "/api/channels/chat:room/presence", 400, params={"x": 1})


async def test_disconnect_user(api: Api, server: str, make_token: Callable[..., str]) -> None:
    async with (
        client(server, token=make_token("mallory")) as m,
        client(server, token=make_token("mallory")) as m2,
        client(server, token=make_token("alice")) as a,
    ):
        assert await api.call("POST", "/api/users/mallory/disconnect") == {}
        assert await m.closed() == 4003
        assert await m2.closed() == 4003
        assert (await a.ok("presence_stats", channel="x"))["num_clients"] == 0  # still open
    assert "unknown field" in await api.error(
        "POST", "/api/users/x/disconnect", 400, json={"reason": "x"}
    )
    await api.call("POST", "/api/users/x/disconnect", json={})


async def test_unsubscribe_user(
    api: Api, server: str, make_token: Callable[..., str], hub: Hub
) -> None:
    async with (
        client(server, token=make_token("bob")) as b1,
        client(server, token=make_token("bob")) as b2,
        client(server, token=make_token("carol")) as c,
    ):
        for ws in (b1, b2, c):
            await ws.ok("subscribe", channel="room")
            await ws.ok("subscribe", channel="other")
        assert await api.call("POST", "/api/users/bob/unsubscribe", json={"channel": "room"}) == {}
        for ws in (b1, b2):
            frame = await ws.next("unsubscribe")
            assert frame == {
                "type": "unsubscribe",
                "channel": "room",
                "reason": "unsubscribed by the server",
            }
        # presence and leave as for the clients' own unsubscribe
        assert {(await c.next("leave"))["info"]["user"] for _ in range(2)} == {"bob"}
        clients = (await c.ok("presence", channel="room"))["clients"]
        assert [info["user"] for info in clients.values()] == ["carol"]
        # bob no longer gets "room" but keeps "other"; subscribing again works
        await api.call("POST", "/api/publish", json={"channel": "room", "data": 1})
        await api.call("POST", "/api/publish", json={"channel": "other", "data": 2})
        assert (await b1.next("message"))["channel"] == "other"
        await b1.ok("subscribe", channel="room")
        # not subscribed (or no such user): nothing happens
        await api.call("POST", "/api/users/nobody/unsubscribe", json={"channel": "room"})
        assert hub.registry.subscription_count() == 3 + 3 + 2  # personal, other, room
    assert "channel" in await api.error("POST", "/api/users/bob/unsubscribe", 400, json={})
    assert "personal" in await api.error(
        "POST", "/api/users/bob/unsubscribe", 400, json={"channel": "#bob"}
    )


async def test_info(api: Api, server: str, make_token: Callable[..., str], hub: Hub) -> None:
    async with client(server, token=make_token("alice")) as ws:
        await ws.ok("subscribe", channel="a")
        info = await api.call("GET", "/api/info")
    assert info["node"] == hub.node_id
    assert info["engine"] == "memory"
    assert info["connections"] == 1
    assert info["users"] == 1
    assert info["channels"] == 2  # "a" and "#alice"
    assert info["subscriptions"] == 2
    assert info["uptime"] >= 0
    assert info["development"] is False
