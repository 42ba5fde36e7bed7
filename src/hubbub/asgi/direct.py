"""The direct write path: pre-framed messages straight to a connection's socket.

ASGI makes a server frame cost an ``await send({...})`` per subscriber: a task
switch, a message dict and a frame built again for every recipient. For
``hubbub serve``, hubbub's WebSocket protocol (:mod:`hubbub.asgi.wsserver`) adds
an ASGI scope extension, ``"hubbub.direct"``: a :class:`DirectWriter` that writes
an already framed WebSocket message straight to the socket's transport. The hub
frames each publication once and writes the same bytes to every subscriber, with
no await.

Flow control stays honest: asyncio transports never block, so what the kernel
did not take is held in the transport's buffer, and that buffer is what counts
against ``max_queue_bytes`` (overflow closes the client with 4008).

Only offered without permessage-deflate: compressed frames depend on each
connection's compression context and cannot be shared. Embedded under another
server, the extension is absent and hubbub uses plain ASGI sends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hubbub.asgi.wsserver import HubbubWebSocketProtocol


class DirectWriter:
    """Writes pre-framed server messages to one connection's transport."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: HubbubWebSocketProtocol) -> None:
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
