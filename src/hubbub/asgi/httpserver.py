"""uvicorn's httptools HTTP protocol, handing a WebSocket upgrade over already parsed.

uvicorn's own hand-over serialises the upgrade request it has just parsed back
into bytes, and the WebSocket protocol parses them again (in Python, with
`websockets`' HTTP parser). ``hubbub serve`` uses this subclass instead: the
request that httptools parsed goes to
:meth:`~hubbub.asgi.wsserver.HubbubWebSocketProtocol.upgrade` as it is, and
websockets still validates the handshake (``accept``). A connection's handshake
is a good part of what it costs the server (S4 of ``hubbub bench``).
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from websockets.http11 import MAX_LINE_LENGTH, MAX_NUM_HEADERS

from hubbub.asgi.wsserver import HubbubWebSocketProtocol


class HubbubHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, whose WebSocket upgrade skips the second parse."""

    def handle_websocket_upgrade(self) -> None:
        if self.ws_protocol_class is not HubbubWebSocketProtocol or not _plain(self.headers):
            # Another WebSocket protocol, or a request that websockets' own parser
            # refuses: uvicorn's hand-over of the raw bytes (and its refusal).
            super().handle_websocket_upgrade()
            return
        self.connections.discard(self)
        protocol = HubbubWebSocketProtocol(
            config=self.config, server_state=self.server_state, app_state=self.app_state
        )
        protocol.connection_made(self.transport)
        protocol.upgrade(self.scope, self.url)
        self.transport.set_protocol(protocol)


def _plain(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether websockets' request parser would read these headers: no body and
    within its limits on header count and line length."""
    if len(headers) > MAX_NUM_HEADERS:
        return False
    for name, value in headers:
        if name in (b"content-length", b"transfer-encoding"):
            return False
        if len(name) + len(value) + 4 > MAX_LINE_LENGTH:  # "name: value\r\n"
            return False
    return True
