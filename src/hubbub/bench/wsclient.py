"""A deliberately small WebSocket client: an asyncio ``Protocol`` and a frame walker.

The load generator shares the machine with the server, so every microsecond it
spends per received frame is taken from the server it measures. This client
does the least a correct client must do:

- the opening handshake is one hand-written HTTP request; the ``101`` reply is
  only checked for its status line;
- server frames are never masked, so a frame is a 2/4/10-byte header and its
  payload: the walker reads the header, and only a *sampled* connection (see
  :class:`hubbub.bench.loadgen.Receiver`) slices the payload out. The others
  count publications with one ``bytearray.count`` over the complete frames of a
  read (a C call, however many frames the read held);
- client frames are masked (RFC 6455 requires it) with one big-int XOR;
- control frames are answered: ping with pong, close with close.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
from collections.abc import Callable
from typing import Final

OP_CONT: Final = 0x0
OP_TEXT: Final = 0x1
OP_BINARY: Final = 0x2
OP_CLOSE: Final = 0x8
OP_PING: Final = 0x9
OP_PONG: Final = 0xA

_HEADER_END: Final = b"\r\n\r\n"


class HandshakeError(Exception):
    """The server did not switch protocols."""


def mask_payload(payload: bytes, key: bytes) -> bytes:
    """XOR ``payload`` with the 4-byte ``key`` repeated (one big-int operation)."""
    n = len(payload)
    if n == 0:
        return payload
    repeated = (key * (n // 4 + 1))[:n]
    value = int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")
    return value.to_bytes(n, "big")


def encode_frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """One masked, final client frame."""
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return header + key + mask_payload(payload, key)


def handshake_request(host: str, port: int, path: str, headers: dict[str, str]) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class WsProtocol(asyncio.Protocol):
    """One client connection.

    ``on_text(payload)`` is called with the payload of each text frame while
    ``parse_all`` is true (set-up phase, sampled connections). Otherwise text
    frames are only counted: ``marker_hits`` grows by the number of times
    ``marker`` occurs in the complete frames of each read.
    """

    __slots__ = (
        "_buffer",
        "_opened",
        "_request",
        "close_code",
        "closed",
        "early",
        "marker",
        "marker_hits",
        "on_text",
        "opened",
        "parse_all",
        "ping_marker",
        "pong_reply",
        "transport",
    )

    def __init__(self, request: bytes, marker: bytes) -> None:
        self._request = request
        self._buffer = bytearray()
        self._opened = False
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.close_code: int | None = None
        self.marker = marker
        self.marker_hits = 0
        self.parse_all = True
        self.early: list[bytes] = []  # frames that came with the 101, before on_text was set
        self.on_text: Callable[[bytes], None] = self.early.append
        self.ping_marker: bytes | None = None
        self.pong_reply = b""

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are no asyncio.Transport subclass: no isinstance check
        self.transport = transport  # type: ignore[assignment]
        transport.write(self._request)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or HandshakeError("connection closed during handshake"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        if not self._opened:
            end = buffer.find(_HEADER_END)
            if end < 0:
                return
            status = bytes(buffer[: buffer.find(b"\r\n")])
            del buffer[: end + 4]
            if b" 101 " not in status + b" ":
                self.opened.set_exception(HandshakeError(status.decode("latin-1")))
                if self.transport is not None:
                    self.transport.close()
                return
            self._opened = True
            self.opened.set_result(None)
        self._walk(buffer)

    # -- frames ---------------------------------------------------------------------

    def _walk(self, buffer: bytearray) -> None:
        pos = 0
        size = len(buffer)
        parse_all = self.parse_all
        while size - pos >= 2:
            b0 = buffer[pos]
            length = buffer[pos + 1] & 0x7F
            if length < 126:
                start = pos + 2
            elif length == 126:
                if size - pos < 4:
                    break
                length = (buffer[pos + 2] << 8) | buffer[pos + 3]
                start = pos + 4
            else:
                if size - pos < 10:
                    break
                length = int.from_bytes(buffer[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + length
            if end > size:
                break
            opcode = b0 & 0x0F
            if opcode <= OP_BINARY:
                if parse_all:
                    self.on_text(bytes(buffer[start:end]))
            else:
                self._control(opcode, bytes(buffer[start:end]))
            pos = end
        if pos:
            if not parse_all:
                self.marker_hits += buffer.count(self.marker, 0, pos)
                # application-level heartbeats (hubbub, Engine.IO) in counting mode
                if self.ping_marker is not None and buffer.find(self.ping_marker, 0, pos) >= 0:
                    self.send(self.pong_reply)
            del buffer[:pos]

    def _control(self, opcode: int, payload: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if opcode == OP_PING:
            transport.write(encode_frame(payload, OP_PONG))
        elif opcode == OP_CLOSE:
            self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            transport.write(encode_frame(payload[:2], OP_CLOSE))
            transport.close()

    # -- sending ----------------------------------------------------------------------

    def send(self, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode_frame(payload))

    def send_many(self, payloads: list[bytes]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(encode_frame(p) for p in payloads))

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode_frame(struct.pack("!H", 1000), OP_CLOSE))
            self.transport.close()


async def open_ws(
    host: str,
    port: int,
    path: str,
    *,
    marker: bytes,
    headers: dict[str, str] | None = None,
    time_limit: float = 30.0,
) -> WsProtocol:
    """Connect and finish the opening handshake."""
    loop = asyncio.get_running_loop()
    request = handshake_request(host, port, path, headers or {})
    _, protocol = await asyncio.wait_for(
        loop.create_connection(lambda: WsProtocol(request, marker), host, port), time_limit
    )
    await asyncio.wait_for(asyncio.shield(protocol.opened), time_limit)
    return protocol
