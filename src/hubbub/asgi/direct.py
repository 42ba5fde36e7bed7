"""uvicorn's WebSocket protocol, plus a direct write path for hubbub's fan-out.

ASGI makes a server frame cost an ``await send({...})`` per subscriber: a task
switch, a message dict and a frame built again for every recipient. For
``hubbub serve`` this protocol (uvicorn's ``websockets-sansio`` implementation,
unchanged for everything else) adds an ASGI scope extension,
``"hubbub.direct"``: a :class:`DirectWriter` that writes an already framed
WebSocket message straight to the socket's transport. The hub frames each
publication once and writes the same bytes to every subscriber, with no await.

Flow control stays honest: asyncio transports never block, so what the kernel
did not take is held in the transport's buffer, and that buffer is what counts
against ``max_queue_bytes`` (overflow closes the client with 4008).

Everything else — the handshake, reading frames, pings, closing — is uvicorn's.
Embedded under another server, the extension is absent and hubbub uses plain
ASGI sends.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

from hubbub.asgi.websocket import DIRECT_EXTENSION


class DirectWriter:
    """Writes pre-framed server messages to one connection's transport."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol

    def write(self, wire: bytes) -> None:
        protocol = self._protocol
        if not (protocol.close_sent or protocol.disconnected):
            protocol.transport.write(wire)

    def buffered(self) -> int:
        """Bytes handed to the transport that the kernel has not taken yet."""
        return int(self._protocol.transport.get_write_buffer_size())

    def abort_after(self, delay: float) -> None:
        """Drop the socket if it is still open after ``delay`` seconds: a peer
        that stopped reading would otherwise hold it, and its buffer, forever."""
        self._protocol.loop.call_later(delay, self._abort_if_open)

    def _abort_if_open(self) -> None:
        protocol = self._protocol
        if not protocol.disconnected:
            protocol.transport.abort()


class HubbubWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol with the ``hubbub.direct`` extension.

    Only offered when permessage-deflate is off: compressed frames depend on each
    connection's compression context and cannot be shared."""

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope: Any = getattr(self, "scope", None)
        if scope is not None and not self.config.ws_per_message_deflate:
            # The ASGI task was created but has not run yet: it sees the extension.
            scope["extensions"][DIRECT_EXTENSION] = DirectWriter(self)

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept":
            # The handshake's request and response are only needed to accept:
            # don't keep their headers for the connection's lifetime.
            self.request = self.response = None  # type: ignore[assignment]
