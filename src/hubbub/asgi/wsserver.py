"""hubbub's WebSocket protocol for uvicorn: lean per connection, plus a direct write path.

``hubbub serve`` hands uvicorn this class as ``ws=``: uvicorn's HTTP protocol
parses the upgrade request and passes the socket on to it, as it would to its
own WebSocket protocols. The handshake and frame parsing are `websockets`'
sans-I/O :class:`~websockets.server.ServerProtocol`; what this module adds is

* **the direct write path**: the ASGI scope extension ``"hubbub.direct"``, a
  :class:`~hubbub.asgi.direct.DirectWriter` for pre-framed fan-out writes
  (see :mod:`hubbub.asgi.direct`);
* **little memory per idle connection** (idle connections are the memory
  budget): slotted state, no ``asyncio.Queue`` (incoming messages wait in a
  deque, created only when the app is not already waiting, and the app waits
  on one future created only while it waits), no ``asyncio.Event``, and nothing
  of the handshake (request, response, headers, the ASGI scope) is kept once
  the connection is open.

For the application it is a plain ASGI WebSocket server (``websocket.connect``,
``receive`` and ``disconnect`` in; ``accept``, ``send``, ``close`` and the
``websocket.http.response`` denial out), with uvicorn's behaviour where it
matters: reading pauses while the app has not taken what arrived, a message over
``ws_max_size`` closes with 1009, server shutdown closes with 1012. uvicorn's
own keepalive pings (``ws_ping_interval``) are not sent: hubbub's heartbeat is
its protocol's ping/pong.
"""

from __future__ import annotations

import asyncio
import codecs
import http
import logging
from collections import deque
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import unquote

from uvicorn.config import Config
from uvicorn.protocols.utils import (
    ClientDisconnected,
    get_local_addr,
    get_remote_addr,
    is_ssl,
)
from uvicorn.server import ServerState
from websockets.datastructures import Headers
from websockets.exceptions import InvalidState
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response

from hubbub.asgi.direct import DirectWriter
from hubbub.asgi.websocket import DIRECT_EXTENSION
from hubbub.asgi.wsparts import LeanServerProtocol, Message, denial_response, shared_apps

logger = logging.getLogger("uvicorn.error")
#: websockets logs "connection open" at INFO for every connection; under uvicorn's
#: logging setup this logger stays quiet (and cheap) unless configured.
_websockets_logger = logging.getLogger("websockets.server")

#: Seconds to wait for the peer's reply to our close frame before dropping the socket.
CLOSE_TIMEOUT: Final = 10.0

Data = bytes | bytearray | memoryview


class HubbubWebSocketProtocol(asyncio.Protocol):
    """One WebSocket connection, from the upgrade request uvicorn hands over to
    the closed socket. Constructed by uvicorn's HTTP protocol as
    ``ws_protocol_class(config=…, server_state=…, app_state=…)``."""

    __slots__ = (
        "_apps",
        "_close_timer",
        "_disconnect",
        "_fragments",
        "_inbox",
        "_initial_response",
        "_path",
        "_read_paused",
        "_response",
        "_text",
        "_utf8",
        "_waiter",
        "_writable",
        "app_state",
        "close_sent",
        "config",
        "conn",
        "disconnected",
        "handshake_complete",
        "loop",
        "server_state",
        "transport",
    )

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()  # pragma: no cover
        self.config = config
        self.server_state = server_state
        self.app_state = app_state
        self.loop = _loop or asyncio.get_event_loop()
        self._apps = apps = shared_apps(config)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.conn = LeanServerProtocol(
            extensions=apps.extensions,
            max_size=config.ws_max_size,
            logger=_websockets_logger,
        )
        self.handshake_complete = False
        self.close_sent = False
        self.disconnected = False
        self._response: Response | None = None
        self._path = ""
        self._initial_response: tuple[int, list[tuple[str, str]], bytes] | None = None
        self._inbox: deque[Message] | None = None
        self._waiter: asyncio.Future[Message] | None = None
        self._disconnect: Message | None = None
        self._read_paused = False
        self._writable: asyncio.Future[None] | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._fragments: list[Data] | None = None
        self._text = False
        self._utf8: codecs.IncrementalDecoder | None = None

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.server_state.connections.add(self)  # type: ignore[arg-type]
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        conn.receive_data(data)
        for event in conn.events_received():
            if type(event) is Frame:
                self._handle_frame(event)
            elif isinstance(event, Request):
                self._handle_connect(event)
        if conn.parser_exc is not None:
            self._handle_parser_exception()
        elif conn.handshake_exc is not None and not self.handshake_complete:
            self._refuse_request()

    def eof_received(self) -> None:
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(self)
        self._set_disconnect(
            {"type": "websocket.disconnect", "code": 1005 if self.handshake_complete else 1006}
        )
        self.handshake_complete = True
        self.disconnected = True
        # asyncio never calls resume_writing() on a transport lost while paused.
        self._wake_writers()
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        if exc is None:
            self.transport.close()

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = self.loop.create_future()

    def resume_writing(self) -> None:
        self._wake_writers()

    def shutdown(self) -> None:
        """uvicorn's server is shutting down: close with 1012 (service restart)."""
        if self.close_sent or self.transport.is_closing():  # already closing
            if self._close_timer is not None:
                self._close_timer.cancel()
                self._close_timer = None
            self.transport.close()
            return
        if self.handshake_complete:
            self._set_disconnect({"type": "websocket.disconnect", "code": 1012})
            self.conn.send_close(1012)
            self._write_output()
            self.close_sent = True
        else:
            self._send_500_response()
        self.transport.close()

    # -- incoming -----------------------------------------------------------------

    def upgrade(self, http_scope: Mapping[str, Any], target: bytes) -> None:
        """Take over a connection whose upgrade request uvicorn's HTTP protocol has
        already parsed (:class:`~hubbub.asgi.httpserver.HubbubHttpProtocol`): the
        request is not serialised and parsed a second time, and the ASGI scope
        reuses what the HTTP scope already holds (addresses, scheme, headers)."""
        self.conn.request_parsed()
        headers = Headers(
            [
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in http_scope["headers"]
            ]
        )
        self._handle_connect(Request(target.decode("ascii"), headers), http_scope)

    def _handle_connect(
        self, request: Request, http_scope: Mapping[str, Any] | None = None
    ) -> None:
        conn = self.conn
        response = conn.accept(request)
        if response.status_code != 101:
            self.handshake_complete = True
            self.close_sent = True
            conn.send_response(response)
            self._write_output()
            self.transport.close()
            return
        self._response = response
        transport = self.transport
        raw_path, _, query_string = request.path.partition("?")
        self._path = raw_path
        subprotocols: list[str] = []
        for header in request.headers.get_all("Sec-WebSocket-Protocol"):
            subprotocols.extend([token.strip() for token in header.split(",")])
        config = self.config
        root_path = config.root_path
        extensions: dict[str, Any] = {"websocket.http.response": {}}
        if not config.ws_per_message_deflate:
            extensions[DIRECT_EXTENSION] = DirectWriter(self)
        if http_scope is None:
            secure = is_ssl(transport)
            server, client = get_local_addr(transport), get_remote_addr(transport)
            headers = [
                (key.lower().encode("ascii"), value.encode("latin-1"))
                for key, value in request.headers.raw_items()
            ]
            state = self.app_state.copy()
        else:
            secure = http_scope["scheme"] == "https"
            server, client = http_scope["server"], http_scope["client"]
            headers, state = http_scope["headers"], http_scope["state"]
        scope: Message = {
            "type": "websocket",
            "asgi": {"version": config.asgi_version, "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": "wss" if secure else "ws",
            "server": server,
            "client": client,
            "root_path": root_path,
            "path": root_path + unquote(raw_path),
            "raw_path": root_path.encode("ascii") + raw_path.encode("ascii"),
            "query_string": query_string.encode("ascii"),
            "headers": headers,
            "subprotocols": subprotocols,
            "state": state,
            "extensions": extensions,
        }
        self._inbox = deque([{"type": "websocket.connect"}])
        apps = self._apps
        try:
            # The app's coroutine is the connection's task: no frame of ours
            # waits on it (and keeps the scope); _app_done sees how it ended.
            scope = apps.rewrite(scope)
            app = (apps.route(scope) if apps.route is not None else None) or apps.app
            task = asyncio.ensure_future(app(scope, self.receive, self.send), loop=self.loop)
        except Exception:
            logger.exception("Exception in ASGI application\n")
            self._send_500_response()
            self.transport.close()
            return
        tasks = self.server_state.tasks
        task.add_done_callback(tasks.discard)
        task.add_done_callback(self._app_done)
        tasks.add(task)

    def _refuse_request(self) -> None:
        """websockets could not read the upgrade request: send its refusal (a 400
        where it would only hang up) and close, instead of leaving the socket open."""
        self.handshake_complete = True
        self.close_sent = True
        output = b"".join(self.conn.data_to_send())
        if not output:
            reason = f"Failed to open a WebSocket connection: {self.conn.handshake_exc}.\n"
            output = denial_response(400, [], reason.encode()).serialize()
        self.transport.write(output)
        self.transport.close()

    def _handle_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            self._text = opcode is Opcode.TEXT
            if frame.fin:
                self._deliver(frame.data)
            else:
                self._fragments = [frame.data]
                if self._text:
                    self._utf8 = codecs.getincrementaldecoder("utf-8")()
                    self._check_utf8(frame.data)
        elif opcode is Opcode.CONT:
            fragments = self._fragments
            assert fragments is not None  # websockets checked the sequence
            fragments.append(frame.data)
            if frame.fin:
                self._fragments = None
                self._utf8 = None
                self._deliver(b"".join(fragments))
            elif self._utf8 is not None:
                self._check_utf8(frame.data)
        elif opcode is Opcode.CLOSE:
            self._handle_close()
        elif opcode is Opcode.PING:
            self._write_output()  # websockets queued the pong
        # PONG: hubbub sends no WebSocket pings of its own.

    def _check_utf8(self, data: Data) -> None:
        """Fail fast (1007) on a text fragment that cannot continue valid UTF-8."""
        assert self._utf8 is not None
        try:
            self._utf8.decode(data)
        except UnicodeDecodeError:
            self._utf8 = None
            if not self.close_sent:
                self._invalid_utf8()

    def _invalid_utf8(self) -> None:
        # The client's fault, not the server's: no traceback at ERROR per message.
        logger.debug("Invalid UTF-8 sequence received from client: closing with 1007.")
        self.conn.send_close(1007)
        self._handle_parser_exception()

    def _deliver(self, data: Data) -> None:
        if self.close_sent:
            # The app is past `websocket.close`: drop the message, keep reading
            # until the peer's close reply arrives.
            return
        if self._text:
            try:
                text = str(data, "utf-8")
            except UnicodeDecodeError:
                self._invalid_utf8()
                return
            self._push({"type": "websocket.receive", "text": text})
        else:
            self._push({"type": "websocket.receive", "bytes": bytes(data)})

    def _handle_close(self) -> None:
        if self.close_sent:
            # The peer answered our close frame: the closing handshake is complete.
            if self._close_timer is not None:
                self._close_timer.cancel()
                self._close_timer = None
                self.transport.close()
            return
        if not self.transport.is_closing():
            received = self.conn.close_rcvd
            assert received is not None
            self._set_disconnect(
                {"type": "websocket.disconnect", "code": received.code, "reason": received.reason}
            )
            self._write_output()  # websockets queued the close reply
            self.transport.close()

    def _handle_parser_exception(self) -> None:
        """websockets failed the connection (e.g. 1009, message too big): its
        close frame is queued; say goodbye and hang up."""
        sent = self.conn.close_sent
        code, reason = (sent.code, sent.reason) if sent is not None else (1006, "")
        self._set_disconnect({"type": "websocket.disconnect", "code": code, "reason": reason})
        self._write_output()
        self.close_sent = True
        self.transport.close()

    # -- the app's side of incoming messages ---------------------------------------

    def _push(self, message: Message) -> None:
        """Hand ``message`` to the app; while it has not taken it, stop reading."""
        waiter = self._waiter
        if waiter is not None:  # the app waits (so nothing else does)
            self._waiter = None
            if not waiter.done():  # else it stopped waiting (cancelled)
                waiter.set_result(message)
                return
        if self._inbox is None:
            self._inbox = deque()
        self._inbox.append(message)
        if not self._read_paused:
            self._read_paused = True
            self.transport.pause_reading()

    def _set_disconnect(self, message: Message) -> None:
        """The first way the connection ended is what the app is told, after
        whatever arrived before it."""
        if self._disconnect is not None:
            return
        self._disconnect = message
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(message)

    def receive(self) -> asyncio.Future[Message]:
        """ASGI ``receive``. A future rather than a coroutine: while the app
        waits for the next message, nothing but that future is kept for it."""
        future: asyncio.Future[Message] = self.loop.create_future()
        inbox = self._inbox
        if inbox:
            future.set_result(inbox.popleft())
            if not inbox:
                self._inbox = None
                if self._read_paused:
                    self._read_paused = False
                    if not self.disconnected:
                        self.transport.resume_reading()
        elif self._disconnect is not None:
            future.set_result(self._disconnect)
        else:
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                return waiter  # receive() called again while waiting: same message
            self._waiter = future
        return future

    # -- outgoing -----------------------------------------------------------------

    def _write_output(self) -> None:
        output = self.conn.data_to_send()
        if output:
            self.transport.write(b"".join(output))

    def _wake_writers(self) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    async def send(self, message: Message) -> None:
        while self._writable is not None:
            await asyncio.shield(self._writable)
        if self.disconnected:
            raise ClientDisconnected()
        kind = message["type"]
        if not self.handshake_complete and self._initial_response is None:
            if kind == "websocket.accept":
                self._accept(message)
            elif kind == "websocket.close":
                self._set_disconnect({"type": "websocket.disconnect", "code": 1006})
                self._log_handshake(403)
                self._response = None
                self.conn.send_response(self.conn.reject(http.HTTPStatus.FORBIDDEN, ""))
                self.close_sent = True
                self.handshake_complete = True
                self._write_output()
                self.transport.close()
            elif kind == "websocket.http.response.start" and self._initial_response is None:
                status = message["status"]
                if not (100 <= status < 600):
                    raise RuntimeError(f"Invalid HTTP status code '{status}' in response.")
                self._log_handshake(status)
                headers = message.get("headers", [])
                self._initial_response = (
                    status,
                    [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers],
                    b"",
                )
            else:
                raise RuntimeError(
                    "Expected ASGI message 'websocket.accept', 'websocket.close' "
                    f"or 'websocket.http.response.start' but got '{kind}'."
                )
        elif self._initial_response is not None:
            if kind != "websocket.http.response.body":
                raise RuntimeError(
                    f"Expected ASGI message 'websocket.http.response.body' but got '{kind}'."
                )
            self._denial_body(message)
        elif self.close_sent:
            if kind == "websocket.close":
                return  # already closing (server shutdown, protocol error)
            if self.transport.is_closing():
                # Not the app's close: the connection failed (protocol error, shutdown).
                raise ClientDisconnected()
            raise RuntimeError(
                f"Unexpected ASGI message '{kind}', after sending 'websocket.close'."
            )
        else:
            try:
                if kind == "websocket.send":
                    data = message.get("bytes")
                    if data is not None:
                        self.conn.send_binary(data)
                    else:
                        text = message.get("text")
                        if text is None:
                            return
                        self.conn.send_text(text.encode())
                    self._write_output()
                elif kind == "websocket.close":
                    if not self.transport.is_closing():
                        code = message.get("code", 1000)
                        reason = message.get("reason") or ""
                        self._set_disconnect(
                            {"type": "websocket.disconnect", "code": code, "reason": reason}
                        )
                        self.conn.send_close(code, reason)
                        self._write_output()
                        self.close_sent = True
                        if self._read_paused:
                            self._read_paused = False
                            self.transport.resume_reading()
                        self._close_timer = self.loop.call_later(
                            CLOSE_TIMEOUT, self.transport.close
                        )
                else:
                    raise RuntimeError(
                        "Expected ASGI message 'websocket.send' or 'websocket.close', "
                        f"but got '{kind}'."
                    )
            except InvalidState:
                raise ClientDisconnected() from None

    def _accept(self, message: Message) -> None:
        response = self._response
        assert response is not None
        self._response = None  # nothing of the handshake outlives it
        self._log_handshake(None)
        self._path = ""
        headers = [
            (name.decode("latin-1").lower(), value.decode("latin-1"))
            for name, value in (
                self.server_state.default_headers + list(message.get("headers", []))
            )
        ]
        subprotocol = message.get("subprotocol")
        if subprotocol:
            headers.append(("Sec-WebSocket-Protocol", subprotocol))
        del response.headers["Date"]
        response.headers.update(headers)
        if not self.transport.is_closing():
            self.handshake_complete = True
            self.conn.send_response(response)
            self._write_output()

    def _denial_body(self, message: Message) -> None:
        initial = self._initial_response
        assert initial is not None
        status, headers, body = initial
        body += message["body"]
        self._initial_response = (status, headers, body)
        if message.get("more_body", False):
            return
        self._set_disconnect({"type": "websocket.disconnect", "code": 1006})
        self._response = None
        self.conn.send_response(denial_response(status, headers, body))
        self.close_sent = True
        self._write_output()
        self.transport.close()

    def _send_500_response(self) -> None:
        if self._initial_response is not None or self.handshake_complete:
            return
        self._response = None
        self.conn.send_response(self.conn.reject(500, "Internal Server Error"))
        self._write_output()

    def _log_handshake(self, status: int | None) -> None:
        if logger.isEnabledFor(logging.INFO):
            client = get_remote_addr(self.transport)
            who = f"{client[0]}:{client[1]}" if client else ""
            path = self._path  # without the query string: it may carry a token
            logger.info(
                '%s - "WebSocket %s" %s', who, path, "[accepted]" if status is None else status
            )

    # -- the app ------------------------------------------------------------------

    def _app_done(self, task: asyncio.Future[Any]) -> None:
        """The app returned (or raised): what uvicorn does after its ASGI call."""
        if task.cancelled():
            logger.error("ASGI application cancelled\n")
            self._send_500_response()
        else:
            exc = task.exception()
            if isinstance(exc, ClientDisconnected):
                pass
            elif exc is not None:
                logger.error("Exception in ASGI application\n", exc_info=exc)
                self._send_500_response()
            elif not self.handshake_complete:
                logger.error("ASGI callable returned without completing handshake.")
                self._send_500_response()
            elif task.result() is not None:  # pragma: no cover
                logger.error("ASGI callable should return None, but returned '%s'.", task.result())
        if self._close_timer is None:
            self.transport.close()
