"""The WebSocket endpoint as a raw ASGI app: handshake, then pump frames.

Thin on purpose: it reads credentials and the Origin from the scope, accepts
(a refused handshake is accepted and then closed with its code, because
browsers cannot read an HTTP status from a failed WebSocket handshake), and
moves frames between ASGI messages and :class:`~hubbub.connection.Connection`.
One class serves every protocol: ``/ws`` (v1) and ``/connection/websocket``
(Centrifugo) differ only in the :class:`~hubbub.core.codec.Codec` they hand on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from hubbub.auth import Credentials
from hubbub.core.codec import V1, Codec
from hubbub.core.origin import origin_allowed
from hubbub.errors import AuthError, CloseCode

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from hubbub.hub import Hub

logger = logging.getLogger("hubbub.asgi")

TOKEN_COOKIE = "hubbub_token"
#: ASGI scope extension offered by ``hubbub serve``'s WebSocket protocol (see
#: :mod:`hubbub.asgi.direct`): a writer for pre-framed messages.
DIRECT_EXTENSION = "hubbub.direct"


@dataclass(frozen=True, slots=True)
class Admitted:
    credentials: Credentials | None
    """``None``: the client must send ``auth`` first."""
    batch: bool


class AsgiTransport:
    """:class:`~hubbub.connection.Transport` over an ASGI ``send``."""

    __slots__ = ("_send",)

    def __init__(self, send: Send) -> None:
        self._send = send

    async def send(self, text: str) -> None:
        await self._send({"type": "websocket.send", "text": text})

    async def close(self, code: int, reason: str) -> None:
        await self._send({"type": "websocket.close", "code": code, "reason": reason[:120]})


class WebSocketEndpoint:
    """ASGI app serving one client protocol (v1 by default) for one hub."""

    def __init__(self, hub: Hub, codec: Codec = V1) -> None:
        self.hub = hub
        self.codec = codec

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        direct = scope.get("extensions", {}).get(DIRECT_EXTENSION)
        # The handshake's locals (headers, query) and the scope are dropped before
        # the connection's lifetime begins: idle connections are the memory budget.
        outcome = await self._handshake(scope)
        del scope
        await send({"type": "websocket.accept"})
        if isinstance(outcome, tuple):
            code, reason = outcome
            self.hub.metrics.count_error(code)
            wire_code, reason = self.codec.close_code(code, reason)
            await send({"type": "websocket.close", "code": wire_code, "reason": reason})
            return
        conn = await self.hub.connect(
            AsgiTransport(send),
            outcome.credentials,
            batch=outcome.batch,
            direct=direct,
            codec=self.codec,
        )
        del outcome, direct
        # Frames in until the disconnect (here rather than in a method of its own:
        # one coroutine frame less per connection).
        hub = self.hub
        try:
            while True:
                message = await receive()
                kind = message["type"]
                if kind == "websocket.receive":
                    text = message.get("text")
                    data = text if text is not None else message.get("bytes") or b""
                    del message, text  # not kept while the connection idles
                    await hub.receive(conn, data)
                    del data
                elif kind == "websocket.disconnect":
                    break
        finally:
            conn.finished()
            await conn.wait_closed()

    async def _handshake(self, scope: Scope) -> Admitted | tuple[CloseCode, str]:
        """Check the Origin and the credentials: admitted, or the close code."""
        headers = _headers(scope)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        origin = headers.get("origin")
        hub = self.hub
        if origin is not None and not origin_allowed(
            origin, headers.get("host", ""), hub.settings.allowed_origins
        ):
            return (CloseCode.FORBIDDEN, f"origin {origin!r} not allowed")
        try:
            credentials = await self._authenticate(scope, headers, query)
        except AuthError as exc:
            return (CloseCode.UNAUTHORIZED, str(exc))
        code = hub.admit(credentials)
        if code is not None:
            return (code, "connection limit reached")
        batch = query.get("batch", ["0"])[-1] in ("1", "true")
        return Admitted(credentials, batch)

    async def _authenticate(
        self, scope: Scope, headers: dict[str, str], query: dict[str, list[str]]
    ) -> Credentials | None:
        """Credentials from the app's authenticator or a token; ``None`` means the
        client must send ``auth`` first."""
        hub = self.hub
        if hub.authenticator is not None:
            credentials = await hub.authenticator(scope)
            if credentials is not None:
                return credentials
        token = _token(headers, query)
        if token is not None:
            return hub.verifier.connection(token)
        if hub.settings.allow_anonymous:
            return Credentials(user="")
        return None


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _token(headers: dict[str, str], query: dict[str, list[str]]) -> str | None:
    """The token from ``?token=``, ``Authorization: Bearer`` or the cookie, in that order."""
    if "token" in query:
        return query["token"][-1]
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    cookie_header = headers.get("cookie")
    if cookie_header:
        cookie: SimpleCookie = SimpleCookie()
        try:
            cookie.load(cookie_header)
        except Exception:  # a malformed Cookie header is no token
            return None
        morsel = cookie.get(TOKEN_COOKIE)
        if morsel is not None and morsel.value:
            return morsel.value
    return None
