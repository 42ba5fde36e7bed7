"""``hubbub serve``'s HTTP protocol hands a parsed upgrade request to hubbub's
WebSocket protocol: the app must see exactly what uvicorn's own hand-over (the
request serialised and parsed again) gives it, and refused handshakes must be
refused the same way. Real uvicorn servers, real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.client import connect

from hubbub.asgi.httpserver import HubbubHttpProtocol
from hubbub.asgi.wsserver import HubbubWebSocketProtocol
from support import serve

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: uvicorn's own HTTP protocol (raw hand-over) and hubbub's (parsed hand-over).
HTTP = [
    pytest.param("httptools", id="uvicorn-handover"),
    pytest.param(HubbubHttpProtocol, id="parsed"),
]


def recording_app(scopes: list[Message]) -> Any:
    async def app(scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            return
        scopes.append(scope)
        await receive()
        chosen = "chat.v2" if "chat.v2" in scope["subprotocols"] else None
        await send({"type": "websocket.accept", "subprotocol": chosen})
        message = await receive()
        if message["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": message["text"]})
            await receive()

    return app


def lean(app: Any, http: Any) -> Any:
    return serve(
        app,
        http=http,
        ws=HubbubWebSocketProtocol,
        ws_ping_interval=None,
        ws_per_message_deflate=False,
    )


async def scope_through(http: Any) -> Message:
    scopes: list[Message] = []
    async with (
        lean(recording_app(scopes), http) as address,
        connect(
            f"ws://{address}/a%20b/c?x=1&token=t%2Bt",
            subprotocols=["chat.v1", "chat.v2"],  # type: ignore[list-item]
            additional_headers={"X-Custom": "välue", "Origin": "http://example.com"},
            user_agent_header="hubbub-test",
        ) as ws,
    ):
        assert ws.subprotocol == "chat.v2"
        await ws.send("round trip")
        assert await ws.recv() == "round trip"
    (scope,) = scopes
    return scope


async def test_the_app_sees_the_same_scope_either_way() -> None:
    via_uvicorn = await scope_through("httptools")
    parsed = await scope_through(HubbubHttpProtocol)
    for scope in (via_uvicorn, parsed):
        assert scope["path"] == "/a b/c"
        assert scope["raw_path"] == b"/a%20b/c"
        assert scope["query_string"] == b"x=1&token=t%2Bt"
        assert scope["subprotocols"] == ["chat.v1", "chat.v2"]
        assert scope["scheme"] == "ws"
        assert (b"x-custom", "välue".encode("latin-1")) in scope["headers"]
    ignored = {"client", "server", "headers", "extensions"}
    assert {k: v for k, v in parsed.items() if k not in ignored} == {
        k: v for k, v in via_uvicorn.items() if k not in ignored
    }

    # Header names arrive lower-cased in both; the Sec-WebSocket-Key differs per connection.
    def comparable(scope: Message) -> list[tuple[bytes, bytes]]:
        return [(k, v) for k, v in scope["headers"] if k not in (b"sec-websocket-key", b"host")]

    assert comparable(parsed) == comparable(via_uvicorn)
    assert parsed["client"][0] == via_uvicorn["client"][0] == "127.0.0.1"
    assert parsed["server"][0] == "127.0.0.1"
    assert set(parsed["extensions"]) == set(via_uvicorn["extensions"])


async def test_the_parsed_request_is_not_parsed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    upgrades: list[bytes] = []
    original = HubbubWebSocketProtocol.upgrade

    def spy(self: HubbubWebSocketProtocol, http_scope: Any, target: bytes) -> None:
        upgrades.append(target)
        original(self, http_scope, target)

    monkeypatch.setattr(HubbubWebSocketProtocol, "upgrade", spy)
    await scope_through(HubbubHttpProtocol)
    assert upgrades == [b"/a%20b/c?x=1&token=t%2Bt"]


async def raw_reply(address: str, request: bytes) -> bytes:
    host, port = address.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    try:
        return await asyncio.wait_for(reader.read(4096), 5)
    finally:
        writer.close()


def upgrade_request(
    *extra: str, version: str = "13", key: str = "dGhlIHNhbXBsZSBub25jZQ=="
) -> bytes:
    lines = [
        "GET /ws HTTP/1.1",
        "Host: test",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        f"Sec-WebSocket-Version: {version}",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.parametrize("http", HTTP)
@pytest.mark.parametrize(
    ("request_bytes", "status_line"),
    [
        (upgrade_request(version="8"), b"HTTP/1.1 400"),
        (upgrade_request(key="short"), b"HTTP/1.1 400"),
        (upgrade_request("X-Big: " + "b" * 9000), b"HTTP/1.1 431"),
        (upgrade_request(*(f"X-{i}: v" for i in range(130))), b"HTTP/1.1 431"),
        (upgrade_request("X-Big: " + "b" * 8000), b"HTTP/1.1 101"),
        (upgrade_request(), b"HTTP/1.1 101"),
    ],
    ids=["old-version", "bad-key", "header-too-long", "too-many-headers", "long-header", "valid"],
)
async def test_handshakes_are_validated_the_same_way(
    http: Any, request_bytes: bytes, status_line: bytes
) -> None:
    scopes: list[Message] = []
    async with lean(recording_app(scopes), http) as address:
        reply = await raw_reply(address, request_bytes)
        assert reply.startswith(status_line), reply[:80]
        # the server is still up for a well-formed client
        async with connect(f"ws://{address}/ws") as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"


@pytest.mark.parametrize("http", HTTP)
async def test_an_upgrade_request_with_a_body_is_refused(http: Any) -> None:
    """websockets refuses a handshake with a body; the parsed hand-over leaves such
    requests to it (uvicorn's raw hand-over) rather than judging them itself. The
    refusal is a 400 and the socket is closed (it used to stay open, unanswered)."""
    scopes: list[Message] = []
    async with lean(recording_app(scopes), http) as address:
        reply = await raw_reply(address, upgrade_request("Content-Length: 5") + b"hello")
        assert reply.startswith(b"HTTP/1.1 400"), reply[:80]
        assert b"did not receive a valid HTTP request" in reply
        assert scopes == []


async def test_another_websocket_protocol_gets_uvicorns_handover() -> None:
    scopes: list[Message] = []
    app = recording_app(scopes)
    async with (
        serve(app, http=HubbubHttpProtocol, ws="wsproto") as address,
        connect(f"ws://{address}/ws") as ws,
    ):
        await ws.send("hi")
        assert await ws.recv() == "hi"
    assert len(scopes) == 1
