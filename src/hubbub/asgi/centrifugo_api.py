"""Centrifugo's HTTP server API, so that backend publishers written for Centrifugo
(``cent``, ``pycent``, the ``curl`` examples of Centrifugo's docs) work unchanged.

``POST /centrifugo/api/<method>`` with ``X-API-Key: <key>`` (or
``Authorization: apikey <key>``) and Centrifugo's JSON bodies; answers are
``{"result": {…}}`` or ``{"error": {"code": …, "message": …}}`` with HTTP 200, as
Centrifugo does (a missing or wrong key is HTTP 401).

hubbub's own API already owns ``/api/publish`` and friends with other answer
shapes, so the two are told apart by the header Centrifugo's clients send:
a request to ``/api/<method>`` that carries ``X-API-Key`` is Centrifugo's (see
:class:`hubbub.asgi.app.HubApp`), one with ``Authorization: apikey`` is
hubbub's. ``/centrifugo/api/<method>`` is always Centrifugo's.

The hub calls and checks are the ones of :mod:`hubbub.asgi.api` (the same
:class:`~hubbub.asgi.api.ServerApi` validation and publish path); only the
request and answer shapes differ. Methods: publish, broadcast, presence,
presence_stats, history, channels, info, disconnect, unsubscribe (by user and
channel, on every node). Centrifugo's other methods answer error 108 "not
available".
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Annotated, Any, Final

import msgspec
from msgspec import Meta, Raw, Struct
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from hubbub.asgi.api import ApiError, ServerApi, decode_body, read_body
from hubbub.core.centrifugo import (
    ERROR_CODES,
    CfPublication,
    HistoryRequest,
    client_info,
    publication,
)
from hubbub.core.protocol import ChannelName
from hubbub.errors import CommandError
from hubbub.version import version

if TYPE_CHECKING:
    from hubbub.hub import Hub

logger = logging.getLogger("hubbub.api")

PREFIX: Final = "/centrifugo/api"

# ---------------------------------------------------------------------- requests


class _Publish(Struct, kw_only=True):
    channel: ChannelName
    data: Raw
    idempotency_key: str | None = None


class _Broadcast(Struct, kw_only=True):
    channels: Annotated[list[ChannelName], Meta(min_length=1, max_length=1000)]
    data: Raw
    idempotency_key: str | None = None


class _Channel(Struct, kw_only=True):
    channel: ChannelName


class _Channels(Struct, kw_only=True):
    pattern: str = ""


class _Disconnect(Struct, kw_only=True):
    user: Annotated[str, Meta(min_length=1, max_length=255)]


class _Unsubscribe(Struct, kw_only=True):
    user: Annotated[str, Meta(min_length=1, max_length=255)]
    channel: ChannelName
    client: str = ""
    session: str = ""


class _Nothing(Struct):
    pass


# ------------------------------------------------------------------------ answers


class _Position(Struct):
    offset: int
    epoch: str


class _Error(Struct):
    code: int
    message: str


class _Item(Struct, omit_defaults=True):
    result: _Position | None = None
    error: _Error | None = None


class _Responses(Struct):
    responses: list[_Item]


class _HistoryAnswer(Struct):
    publications: list[CfPublication]
    offset: int
    epoch: str


class _ChannelInfo(Struct):
    num_clients: int


class _Node(Struct):
    uid: str
    name: str
    version: str
    num_clients: int
    num_users: int
    num_channels: int
    num_subs: int
    uptime: int


_encoder: Final = msgspec.json.Encoder()

#: HTTP-side errors of :class:`~hubbub.asgi.api.ApiError` -> Centrifugo API codes.
_STATUS_CODES: Final[dict[int, int]] = {**ERROR_CODES, 413: 107, 405: 107}
#: The ``code`` names of hubbub's API errors (per-channel broadcast failures).
_NAMED_CODES: Final[dict[str, int]] = {
    "bad_request": 107,
    "unknown_namespace": 102,
    "permission_denied": 103,
    "payload_too_large": 107,
    "engine_unavailable": 100,
}


def _answer(body: dict[str, Any], status: int = 200) -> Response:
    return Response(_encoder.encode(body), status_code=status, media_type="application/json")


def _error(code: int, message: str) -> Response:
    return _answer({"error": _Error(code, message)})


class CentrifugoApi:
    """The handlers; :func:`centrifugo_api_routes` makes the routes."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.shared = ServerApi(hub)  # validation, body limits and publishing
        self.methods: dict[str, Callable[[bytes], Awaitable[Any]]] = {
            "publish": self.publish,
            "broadcast": self.broadcast,
            "presence": self.presence,
            "presence_stats": self.presence_stats,
            "history": self.history,
            "channels": self.channels,
            "info": self.info,
            "disconnect": self.disconnect,
            "unsubscribe": self.unsubscribe,
        }

    async def publish(self, body: bytes) -> Any:
        req = decode_body(body, _Publish)
        self.shared.validate_publish(req.channel, req.data)
        position = await self.hub.publish(
            req.channel, bytes(req.data), raw=True, idempotency_key=req.idempotency_key
        )
        return _Position(position.offset, position.epoch)

    async def broadcast(self, body: bytes) -> Any:
        req = decode_body(body, _Broadcast)
        for channel in req.channels:
            self.shared.validate_publish(channel, req.data)
        failures: list[ApiError] = []
        results = await asyncio.gather(
            *(
                self.shared.publish_one(c, req.data, req.idempotency_key, failures)
                for c in req.channels
            )
        )
        items = [
            _Item(result=_Position(r.offset or 0, r.epoch or ""))
            if r.error is None
            else _Item(error=_Error(_NAMED_CODES.get(r.error.code, 100), r.error.message))
            for r in results
        ]
        return _Responses(items)

    async def presence(self, body: bytes) -> Any:
        req = decode_body(body, _Channel)
        self.hub.namespaces.resolve(req.channel)
        clients = await self.hub.engine.presence(req.channel)
        return {"presence": {c: client_info(i) for c, i in clients.items()}}

    async def presence_stats(self, body: bytes) -> Any:
        req = decode_body(body, _Channel)
        self.hub.namespaces.resolve(req.channel)
        stats = await self.hub.engine.presence_stats(req.channel)
        return {"num_clients": stats.num_clients, "num_users": stats.num_users}

    async def history(self, body: bytes) -> Any:
        req = decode_body(body, HistoryRequest)
        self.hub.namespaces.resolve(req.channel)
        result = await self.hub.engine.history(
            req.channel,
            since=None if req.since is None else req.since.offset,
            limit=None if req.limit < 0 else req.limit,
            reverse=req.reverse,
        )
        if req.since is not None and req.since.epoch != result.epoch:
            raise _Unrecoverable
        publications = [publication(p) for p in result.publications]
        return _HistoryAnswer(publications, result.offset, result.epoch)

    async def channels(self, body: bytes) -> Any:
        req = decode_body(body, _Channels) if body.strip() else _Channels()
        channels = {
            name: _ChannelInfo(count)
            for name, count in sorted(self.hub.registry.channels().items())
            if not req.pattern or fnmatchcase(name, req.pattern)
        }
        return {"channels": channels}

    async def info(self, body: bytes) -> Any:
        hub = self.hub
        node = _Node(
            uid=hub.node_id,
            name=hub.node_id,
            version=f"hubbub {version()}",
            num_clients=len(hub.connections),
            num_users=len(hub.users),
            num_channels=len(hub.registry),
            num_subs=hub.registry.subscription_count(),
            uptime=int(time.time() - hub.started_at),
        )
        return {"nodes": [node]}

    async def disconnect(self, body: bytes) -> Any:
        req = decode_body(body, _Disconnect)
        await self.hub.disconnect_user(req.user)
        return {}

    async def unsubscribe(self, body: bytes) -> Any:
        req = decode_body(body, _Unsubscribe)
        if req.client or req.session:
            raise ApiError(400, "unsubscribing one client or session is not supported")
        await self.hub.unsubscribe_user(req.user, req.channel)
        return {}

    # -- dispatch -----------------------------------------------------------------

    def _key_ok(self, request: Request) -> bool:
        expected = self.hub.settings.api_key
        key = request.headers.get("x-api-key")
        if key is None:
            scheme, _, value = request.headers.get("authorization", "").partition(" ")
            key = value if scheme.lower() == "apikey" else None
        return bool(
            expected and key and hmac.compare_digest(key.strip().encode(), expected.encode())
        )

    async def endpoint(self, request: Request) -> Response:
        if not self._key_ok(request):
            return _answer({"error": _Error(101, "unauthorized: send X-API-Key")}, 401)
        if request.method != "POST":
            return _answer({"error": _Error(107, "use POST")}, 405)
        name = request.path_params["method"]
        handler = self.methods.get(name)
        if handler is None:
            return _error(108, f"method {name!r} is not available in hubbub")
        try:
            body = await read_body(request, self.shared.body_limit)
            await self.hub.start()
            return _answer({"result": await handler(body)})
        except _Unrecoverable:
            return _error(112, "unrecoverable position")
        except ApiError as exc:
            return _error(_STATUS_CODES.get(exc.status, 100), exc.message)
        except CommandError as exc:
            return _error(ERROR_CODES.get(int(exc.code), 100), exc.message)
        except Exception:
            reference = secrets.token_hex(4)
            logger.exception("internal error in Centrifugo API %s (ref %s)", name, reference)
            return _error(100, f"internal error (ref {reference})")


class _Unrecoverable(Exception):
    """``since`` names another epoch: Centrifugo answers 112."""


def centrifugo_api_routes(hub: Hub) -> list[BaseRoute]:
    """``/centrifugo/api/<method>``, and ``/api/<method>`` for requests that
    :class:`~hubbub.asgi.app.HubApp` sends here (they carry ``X-API-Key``)."""
    api = CentrifugoApi(hub)
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return [
        Route(PREFIX + "/{method}", api.endpoint, methods=methods),
        Route("/api/{method}", api.endpoint, methods=methods),
    ]
