"""Pieces of hubbub's WebSocket protocol (:mod:`hubbub.asgi.wsserver`) that are
not per connection: websockets' server protocol without the handshake kept
alive, and what all connections of one uvicorn server share."""

from __future__ import annotations

import copy
import email.utils
import http
import weakref
from collections.abc import Awaitable, Callable, Generator
from typing import Any

from uvicorn.config import Config
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from websockets.datastructures import Headers
from websockets.extensions.base import ServerExtensionFactory
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import Protocol
from websockets.server import ServerProtocol

Message = dict[str, Any]
App = Callable[[Message, Any, Any], Awaitable[Any]]


class _HandshakeOnly(Protocol):
    def parse(self) -> Generator[None]:
        return
        yield


class LeanServerProtocol(ServerProtocol, _HandshakeOnly):
    """websockets' server protocol, parsing exactly as it does, except that the
    handshake request is not kept alive for the connection's lifetime.

    ``ServerProtocol.parse`` reads the request, then ``yield from super().parse()``
    reads frames for as long as the connection lives, keeping the request (and its
    headers) in its generator frame. Here its ``super().parse()`` is the empty
    :class:`_HandshakeOnly` one, so it returns once the request is read, and the
    frames are read by a fresh :meth:`Protocol.parse` generator."""

    def parse(self) -> Generator[None]:
        yield from ServerProtocol.parse(self)
        yield from Protocol.parse(self)

    def recv_frame(self, frame: Frame) -> None:
        """RFC 6455 5.4 lets a close frame arrive between the fragments of a message:
        drop the unfinished message and close normally (websockets would fail the
        connection with 1002 "incomplete fragmented message"; Autobahn case 7.1.5)."""
        if frame.opcode is Opcode.CLOSE:
            self.current_size = None
        super().recv_frame(frame)

    def request_parsed(self) -> None:
        """The handshake request was parsed elsewhere (uvicorn's HTTP protocol) and
        will be passed to :meth:`accept`: read frames from the start."""
        self.parser = Protocol.parse(self)
        next(self.parser)


async def _scope_of(scope: Message, receive: Any, send: Any) -> Message:
    return scope


class SharedApps:
    """What every connection of one server shares: the app to call and how."""

    __slots__ = ("app", "extensions", "proxy", "route")

    def __init__(self, config: Config) -> None:
        app: Any = config.loaded_app
        self.proxy: Any = None
        if type(app) is ProxyHeadersMiddleware:
            # uvicorn's middleware keeps a frame (and, for a trusted client, a
            # dict of the headers) alive for as long as the app runs: run its
            # scope rewrite once per handshake instead, then call the app itself.
            self.proxy = copy.copy(app)
            self.proxy.app = _scope_of
            app = app.app
        self.app: App = app
        # hubbub's HubApp names the endpoint for a handshake: called directly,
        # the connection's task has one coroutine frame less.
        self.route: Callable[[Message], App | None] | None = getattr(app, "websocket_route", None)
        self.extensions: list[ServerExtensionFactory] = (
            [
                ServerPerMessageDeflateFactory(
                    server_max_window_bits=12,
                    client_max_window_bits=12,
                    compress_settings={"memLevel": 5},
                )
            ]
            if config.ws_per_message_deflate
            else []
        )

    def rewrite(self, scope: Message) -> Message:
        """``scope`` as uvicorn's proxy headers middleware passes it on."""
        proxy = self.proxy
        if proxy is None:
            return scope
        coroutine = proxy(scope, None, None)
        try:
            coroutine.send(None)
        except StopIteration as done:
            rewritten: Message = done.value
            return rewritten
        coroutine.close()  # pragma: no cover - it never awaits before calling the app
        raise RuntimeError("ProxyHeadersMiddleware awaited before calling the app")


_apps: weakref.WeakKeyDictionary[Config, SharedApps] = weakref.WeakKeyDictionary()


def shared_apps(config: Config) -> SharedApps:
    apps = _apps.get(config)
    if apps is None:
        apps = _apps[config] = SharedApps(config)
    return apps


def denial_response(status: int, headers: list[tuple[str, str]], body: bytes) -> Response:
    """The HTTP response an app's ``websocket.http.response`` denial describes."""
    response_headers = Headers(headers)
    response_headers.setdefault("Date", email.utils.formatdate(usegmt=True))
    response_headers.setdefault("Connection", "close")
    response_headers.setdefault("Content-Length", str(len(body)))
    response_headers.setdefault("Content-Type", "text/plain; charset=utf-8")
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return Response(status, phrase, response_headers, body)
