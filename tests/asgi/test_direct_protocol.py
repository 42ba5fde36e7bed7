"""hubbub's own WebSocket protocol for uvicorn (``hubbub.asgi.direct``) as a plain
ASGI WebSocket server: over real sockets with small ASGI apps, and, for what a
client cannot see (reading paused, what an open connection keeps), with a fake
transport."""

from __future__ import annotations

import asyncio
import base64
import gc
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.http11 import Request

from hubbub.asgi.direct import DirectWriter
from hubbub.asgi.websocket import DIRECT_EXTENSION
from hubbub.asgi.wsserver import HubbubWebSocketProtocol
from support import serve

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def lean(app: Any, **options: Any) -> Any:
    return serve(
        app,
        ws=HubbubWebSocketProtocol,
        ws_ping_interval=None,
        ws_per_message_deflate=False,
        **options,
    )


async def echo(scope: Message, receive: Receive, send: Send) -> None:
    """Accepts, echoes every message, closes with 4000 on the text ``bye``."""
    if scope["type"] != "websocket":
        return
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept", "subprotocol": (scope["subprotocols"] or [None])[0]})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "bye":
            await send({"type": "websocket.close", "code": 4000, "reason": "bye"})
            assert (await receive())["type"] == "websocket.disconnect"
            return
        await send({"type": "websocket.send", **{k: v for k, v in message.items() if k != "type"}})


async def test_echo_text_binary_fragments_ping(echo_server: str) -> None:
    async with connect(f"ws://{echo_server}/x", subprotocols=["echo.v1"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "echo.v1"
        await ws.send("héllo")
        assert await ws.recv() == "héllo"
        await ws.send(b"\x00\x01")
        assert await ws.recv() == b"\x00\x01"
        await ws.send(["frag", "mented"])
        assert await ws.recv() == "fragmented"
        await asyncio.wait_for(await ws.ping(), 5)
        await ws.send("bye")
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4000, "bye")


@pytest.fixture
async def echo_server() -> AsyncIterator[str]:
    async with lean(echo, ws_max_size=1024) as address:
        yield address


async def test_message_over_max_size_closes_1009(echo_server: str) -> None:
    async with connect(f"ws://{echo_server}/x") as ws:
        await ws.send("x" * 1000)
        assert await ws.recv() == "x" * 1000
        await ws.send("x" * 2000)
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1009


async def test_shutdown_while_idle_closes_1012() -> None:
    disconnects: list[Message] = []

    async def idle(scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        await send({"type": "websocket.accept"})
        disconnects.append(await receive())

    async with lean(idle) as address:
        ws = await connect(f"ws://{address}/x")
    # The server has stopped: it closed the idle connection with 1012.
    with pytest.raises(ConnectionClosed) as closed:
        await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1012
    assert disconnects == [{"type": "websocket.disconnect", "code": 1012}]


async def test_close_before_accept_is_403_and_denial_response() -> None:
    async def refuse(scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        if scope["path"] == "/close":
            await send({"type": "websocket.close"})
            return
        await send(
            {"type": "websocket.http.response.start", "status": 418, "headers": [(b"x-a", b"b")]}
        )
        await send({"type": "websocket.http.response.body", "body": b"tea", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"pot"})

    async with lean(refuse) as address:
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"ws://{address}/close")
        assert refused.value.response.status_code == 403
        with pytest.raises(InvalidStatus) as denied:
            await connect(f"ws://{address}/deny")
        assert denied.value.response.status_code == 418
        assert denied.value.response.body == b"teapot"
        assert denied.value.response.headers["x-a"] == "b"


async def test_app_error_before_accept_is_500() -> None:
    async def broken(scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            raise RuntimeError("boom")

    async with lean(broken) as address:
        with pytest.raises(InvalidStatus) as failed:
            await connect(f"ws://{address}/x")
        assert failed.value.response.status_code == 500


async def test_client_gone_mid_handshake() -> None:
    """The peer hangs up while the app is still deciding: the app is told
    (1006), accepting raises, and the server carries on."""
    deciding = asyncio.Event()
    decided: list[Any] = []

    async def slow(scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        if scope["path"] == "/ok":
            await send({"type": "websocket.accept"})
            await receive()
            return
        deciding.set()
        decided.append(await receive())
        try:
            await send({"type": "websocket.accept"})
        except OSError as exc:  # uvicorn's ClientDisconnected
            decided.append(type(exc).__name__)
            raise

    async with lean(slow) as address:
        host, port = address.split(":")
        _reader, writer = await asyncio.open_connection(host, int(port))
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /x HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        await asyncio.wait_for(deciding.wait(), 5)
        writer.transport.abort()
        for _ in range(200):
            if len(decided) == 2:
                break
            await asyncio.sleep(0.01)
        assert decided == [{"type": "websocket.disconnect", "code": 1006}, "ClientDisconnected"]
        async with connect(f"ws://{address}/ok"):  # still serving
            pass


HANDSHAKE = (
    b"GET /lean-handshake-path?token=t HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\nX-Big: " + b"b" * 500 + b"\r\n\r\n"
)


def masked(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """A client frame with an all-zero mask (so the payload stays readable)."""
    assert len(payload) < 126
    return bytes([(0x80 if fin else 0) | opcode, 0x80 | len(payload)]) + b"\x00" * 4 + payload


async def upgraded(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = address.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(HANDSHAKE.replace(b"Host: h", f"Host: {address}".encode()))
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    return reader, writer


async def test_a_close_frame_between_fragments_closes_normally(echo_server: str) -> None:
    """RFC 6455 5.4: control frames may come between the fragments of a message, close
    included (Autobahn 7.1.5): the unfinished message is dropped and the close echoed,
    not answered with 1002 as websockets' parser alone would."""
    reader, writer = await upgraded(echo_server)
    writer.write(masked(0x1, b"frag", fin=False) + masked(0x8, b"\x03\xe8"))
    assert await asyncio.wait_for(reader.read(), 5) == b"\x88\x02\x03\xe8"  # 1000, then EOF
    writer.close()


async def test_invalid_utf8_fails_at_the_fragment_that_has_it(echo_server: str) -> None:
    """A fragmented text message is checked as its fragments arrive: 1007 at once,
    without waiting for the final fragment (Autobahn 6.4.1/6.4.2)."""
    reader, writer = await upgraded(echo_server)
    writer.write(masked(0x1, "κόσμε".encode() + b"\xed\xa0\x80", fin=False))
    reply = await asyncio.wait_for(reader.read(), 5)
    assert reply[:4] == b"\x88\x02\x03\xef"  # close 1007, and the socket closed
    writer.close()
    async with connect(f"ws://{echo_server}/x") as ws:  # still serving
        await ws.send(["κό", "σμε"])
        assert await ws.recv() == "κόσμε"


# -- with a fake transport --------------------------------------------------------


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closing = False
        self.reading = True
        self.aborted = False

    def write(self, data: Any) -> None:
        self.written += data

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.aborted = self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_write_buffer_size(self) -> int:
        return 7

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 80)}.get(name, default)


class Harness:
    def __init__(self, app: Any) -> None:
        config = uvicorn.Config(
            app, ws=HubbubWebSocketProtocol, log_level="warning", ws_per_message_deflate=False
        )
        config.load()
        self.state = ServerState()
        self.protocol = HubbubWebSocketProtocol(
            config=config, server_state=self.state, app_state={}
        )
        self.transport = FakeTransport()
        self.protocol.connection_made(self.transport)


async def test_reading_pauses_until_the_app_takes_messages() -> None:
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    take = asyncio.Event()
    scopes: list[Message] = []

    async def app(scope: Message, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            await take.wait()
            take.clear()
            message = await receive()
            await inbox.put(message)
            if message["type"] == "websocket.disconnect":
                return

    h = Harness(app)
    h.protocol.data_received(HANDSHAKE)
    assert list(h.state.connections) == [h.protocol]
    assert len(h.state.tasks) == 1
    await asyncio.sleep(0.01)
    assert h.transport.written.startswith(b"HTTP/1.1 101")
    assert isinstance(scopes[0]["extensions"][DIRECT_EXTENSION], DirectWriter)
    assert scopes[0]["path"] == "/lean-handshake-path"
    assert scopes[0]["query_string"] == b"token=t"
    assert (b"x-big", b"b" * 500) in scopes[0]["headers"]
    scopes.clear()

    # Two messages in one read: the app has taken neither, so reading pauses.
    h.protocol.data_received(masked(0x1, b"one") + masked(0x1, b"two"))
    assert not h.transport.reading
    take.set()
    assert (await inbox.get())["text"] == "one"
    assert not h.transport.reading  # "two" still waits
    take.set()
    assert (await inbox.get())["text"] == "two"
    assert h.transport.reading

    # The app waiting: a message goes straight to it, reading carries on.
    await asyncio.sleep(0.01)
    take.set()
    await asyncio.sleep(0.01)
    h.protocol.data_received(masked(0x1, b"three"))
    assert h.transport.reading
    assert (await inbox.get())["text"] == "three"

    h.protocol.connection_lost(None)
    take.set()
    assert await inbox.get() == {"type": "websocket.disconnect", "code": 1005}
    assert not h.state.connections
    await asyncio.sleep(0.01)
    assert h.state.tasks == set()


async def test_an_open_connection_keeps_nothing_of_the_handshake() -> None:
    accepted = asyncio.Event()

    async def app(scope: Message, receive: Receive, send: Send) -> None:
        await receive()
        del scope
        await send({"type": "websocket.accept"})
        accepted.set()
        await receive()

    h = Harness(app)
    h.protocol.data_received(HANDSHAKE)
    await asyncio.wait_for(accepted.wait(), 5)
    gc.collect()
    leftovers = [
        o
        for o in gc.get_objects()
        if (isinstance(o, Request) and o.path.startswith("/lean-handshake-path"))
        or (isinstance(o, dict) and o.get("path") == "/lean-handshake-path")
    ]
    assert leftovers == []
    h.protocol.connection_lost(None)
    await asyncio.sleep(0.01)


async def test_direct_writer() -> None:
    accepted = asyncio.Event()
    writers: list[DirectWriter] = []

    async def app(scope: Message, receive: Receive, send: Send) -> None:
        writers.append(scope["extensions"][DIRECT_EXTENSION])
        await receive()
        await send({"type": "websocket.accept"})
        accepted.set()
        await receive()
        await send({"type": "websocket.close", "code": 4008})

    h = Harness(app)
    h.protocol.data_received(HANDSHAKE)
    await asyncio.wait_for(accepted.wait(), 5)
    (writer,) = writers
    start = len(h.transport.written)
    writer.write(b"\x81\x02hi")
    assert h.transport.written[start:] == b"\x81\x02hi"
    assert writer.buffered() == 7
    writer.abort_after(0.01)
    h.protocol.data_received(masked(0x1, b"x"))  # the app closes
    await asyncio.sleep(0.005)
    assert h.protocol.close_sent
    start = len(h.transport.written)
    writer.write(b"\x81\x02no")  # nothing after the close frame
    assert len(h.transport.written) == start
    await asyncio.sleep(0.05)
    assert h.transport.aborted  # the peer never answered the close frame


async def test_real_socket_accepts_after_upgrade(echo_server: str) -> None:
    """uvicorn's HTTP protocol hands the upgraded socket over (sanity, raw socket)."""
    reader, writer = await upgraded(echo_server)
    writer.write(masked(0x1, b"ping me"))
    assert await asyncio.wait_for(reader.readexactly(9), 5) == b"\x81\x07ping me"
    writer.close()


async def test_shutdown_after_the_peer_closed() -> None:
    """The peer's close frame was answered, the socket is closing: shutting down
    does not try to send a second close frame."""
    accepted = asyncio.Event()

    async def app(scope: Message, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        accepted.set()
        await receive()

    h = Harness(app)
    h.protocol.data_received(HANDSHAKE)
    await asyncio.wait_for(accepted.wait(), 5)
    h.protocol.data_received(b"\x88\x82\x00\x00\x00\x00\x03\xe8")  # close 1000
    assert h.transport.closing
    written = len(h.transport.written)
    h.protocol.shutdown()
    assert len(h.transport.written) == written
    h.protocol.connection_lost(None)
    await asyncio.sleep(0.01)
    assert not h.state.tasks


async def test_a_send_after_the_protocol_failed_the_connection_is_a_disconnect() -> None:
    """A message arrives together with a bad frame: by the time the app answers the
    message, the protocol has failed the connection (1002). The app's send raises
    ClientDisconnected, as on any connection that went away, not a RuntimeError that
    would be logged as an application error."""
    outcome: list[str] = []

    async def app(scope: Message, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        message = await receive()
        try:
            await send({"type": "websocket.send", "text": message["text"]})
        except Exception as exc:
            outcome.append(type(exc).__name__)
            raise

    h = Harness(app)
    h.protocol.data_received(HANDSHAKE)
    await asyncio.sleep(0.01)
    h.protocol.data_received(masked(0x1, b"hello") + masked(0x3, b""))  # opcode 3 is reserved
    for _ in range(100):
        if outcome:
            break
        await asyncio.sleep(0.01)
    assert outcome == ["ClientDisconnected"]
    assert h.transport.closing
    assert b"\x88\x10\x03\xeainvalid opcode" in h.transport.written  # close 1002
    h.protocol.connection_lost(None)
    await asyncio.sleep(0.01)
