"""The HTTP server API (SPEC section 6): publish, broadcast, batch, channels,
history, presence, disconnect, unsubscribe and info, for backends that are not the hub.

Every call needs ``Authorization: apikey <key>`` (``api_key`` /
``HUBBUB_API_KEY``); without a configured key every call is refused with 401.
Bodies and query strings are decoded by msgspec into the request structs
below, so a bad request gets a 400 that names the field; answers are the
response structs, which :mod:`hubbub.publisher` decodes on the other side.
Errors are always ``{"error": {"code": "...", "message": "..."}}``; an
unexpected failure is logged with a reference and answered 500 with that
reference, never a traceback.

The server publishes anywhere: a namespace's ``publish = false`` only stops
clients. ``GET /api/channels`` and ``GET /api/info`` describe the node that
answers (its own subscribers), not the whole cluster.

The OpenAPI 3.1 document at ``GET /api/openapi.json`` (no key needed) is
generated from the same structs, so it cannot drift from what is decoded.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Final, TypeVar

import msgspec
from msgspec import Raw, Struct
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from hubbub.asgi.api_types import (
    OPERATIONS,
    BatchRequest,
    BatchResult,
    BroadcastRequest,
    BroadcastResult,
    ChannelResult,
    ChannelsQuery,
    ChannelsResult,
    ChannelStats,
    ClientDetails,
    DisconnectRequest,
    DisconnectResult,
    ErrorDetail,
    ErrorResponse,
    HistoryPublication,
    HistoryQuery,
    HistoryResult,
    InfoResult,
    NoQuery,
    PresenceResult,
    PresenceStatsResult,
    PublishRequest,
    PublishResult,
    UnsubscribeRequest,
    UnsubscribeResult,
)
from hubbub.asgi.openapi import openapi_document
from hubbub.core.protocol import ClientInfo, Publication
from hubbub.errors import CommandError, EngineUnavailable, ErrorCode
from hubbub.version import version

if TYPE_CHECKING:
    from hubbub.hub import Hub

logger = logging.getLogger("hubbub.api")

#: Bytes a request body may have beyond ``max_message_size`` (for the channel
#: names, keys and JSON around ``data``).
BODY_ALLOWANCE: Final = 16_384
MAX_NAME_BYTES: Final = 255

# ------------------------------------------------------------------------ errors

_ERROR_NAMES: Final[dict[int, str]] = {
    400: "bad_request",
    401: "unauthorized",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    429: "rate_limited",
    500: "internal",
    503: "engine_unavailable",
}


class ApiError(Exception):
    """An error answer: HTTP ``status`` with ``code`` and ``message``."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _ERROR_NAMES.get(status, "error")
        self.message = message

    @classmethod
    def from_command(cls, exc: CommandError) -> ApiError:
        code = "unknown_namespace" if exc.code == ErrorCode.UNKNOWN_NAMESPACE else None
        return cls(int(exc.code), exc.message, code)

    @property
    def detail(self) -> ErrorDetail:
        return ErrorDetail(code=self.code, message=self.message)


_encoder: Final = msgspec.json.Encoder()


def _json(value: Struct, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        _encoder.encode(value),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _error_response(exc: ApiError) -> Response:
    headers = {"WWW-Authenticate": "apikey"} if exc.status == 401 else None
    return _json(ErrorResponse(error=exc.detail), exc.status, headers)


# ----------------------------------------------------------------------- decoding

T = TypeVar("T")


def decode_body(body: bytes, kind: type[T]) -> T:
    if not body.strip():
        raise ApiError(400, "request body is empty: expected a JSON object")
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise ApiError(400, f"invalid request body: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from None


def _decode_query(request: Request, kind: type[T]) -> T:
    params = dict(request.query_params)
    try:
        return msgspec.convert(params, kind, strict=False)
    except msgspec.ValidationError as exc:
        text = str(exc).replace("Object contains unknown field", "unknown query parameter")
        message = text.replace(" - at `$.", " - parameter `")
        raise ApiError(400, f"invalid query: {message}") from None


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise ApiError(400, "invalid Content-Length header") from None
        if length > limit:
            raise ApiError(413, f"request body of {length} bytes exceeds the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body exceeds the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _check_name(kind: str, value: str) -> None:
    if not value:
        raise ApiError(400, f"{kind} must not be empty")
    if len(value.encode()) > MAX_NAME_BYTES:
        raise ApiError(400, f"{kind} is longer than {MAX_NAME_BYTES} bytes")


# ------------------------------------------------------------------------ the API


def _client_details(info: ClientInfo) -> ClientDetails:
    return ClientDetails(client=info.client, user=info.user, info=info.info)


def _history_publication(publication: Publication) -> HistoryPublication:
    info = None if publication.info is None else _client_details(publication.info)
    return HistoryPublication(offset=publication.offset, data=publication.data, info=info)


def _engine_name(hub: Hub) -> str:
    name = type(hub.engine).__name__
    return name.removesuffix("Engine").lower() or name


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler gets: the request, its body (for POST) and the path params."""

    request: Request
    body: bytes

    def param(self, name: str) -> str:
        value: str = self.request.path_params[name]
        return value


class ServerApi:
    """The handlers of one hub's API; :func:`api_routes` turns them into routes."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.body_limit = hub.settings.max_message_size + BODY_ALLOWANCE

    def validate_publish(self, channel: str, data: Raw) -> None:
        self.hub.namespaces.resolve(channel)
        limit = self.hub.settings.max_message_size
        if len(data) > limit:
            raise ApiError(413, f"`data` exceeds max_message_size ({limit} bytes)")

    async def publish_one(
        self, channel: str, data: Raw, idempotency_key: str | None, failures: list[ApiError]
    ) -> ChannelResult:
        try:
            position = await self.hub.publish(
                channel, bytes(data), raw=True, idempotency_key=idempotency_key
            )
        except CommandError as exc:
            failure = ApiError.from_command(exc)
            failures.append(failure)
            return ChannelResult(channel=channel, error=failure.detail)
        return ChannelResult(channel=channel, offset=position.offset, epoch=position.epoch)

    @staticmethod
    def _all_failed(results: list[ChannelResult], failures: list[ApiError]) -> None:
        """When every item failed the same way (the engine is down), answer with that
        error instead of a 200 full of errors."""
        if len(failures) == len(results) and len({(f.status, f.message) for f in failures}) == 1:
            raise failures[0]

    async def publish(self, call: Call) -> Struct:
        req = decode_body(call.body, PublishRequest)
        self.validate_publish(req.channel, req.data)
        position = await self.hub.publish(
            req.channel, bytes(req.data), raw=True, idempotency_key=req.idempotency_key
        )
        return PublishResult(offset=position.offset, epoch=position.epoch)

    async def broadcast(self, call: Call) -> Struct:
        req = decode_body(call.body, BroadcastRequest)
        seen: set[str] = set()
        for channel in req.channels:
            if channel in seen:
                raise ApiError(400, f"`channels` lists {channel!r} twice")
            seen.add(channel)
            self.validate_publish(channel, req.data)
        failures: list[ApiError] = []
        results = list(
            await asyncio.gather(
                *(
                    self.publish_one(c, req.data, req.idempotency_key, failures)
                    for c in req.channels
                )
            )
        )
        self._all_failed(results, failures)
        return BroadcastResult(results=results)

    async def batch(self, call: Call) -> Struct:
        req = decode_body(call.body, BatchRequest)
        for i, command in enumerate(req.commands):
            try:
                self.validate_publish(command.channel, command.data)
            except (ApiError, CommandError) as exc:
                error = exc if isinstance(exc, ApiError) else ApiError.from_command(exc)
                message = f"commands[{i}]: {error.message}"
                raise ApiError(error.status, message, error.code) from None
        failures: list[ApiError] = []
        results = [
            await self.publish_one(c.channel, c.data, c.idempotency_key, failures)
            for c in req.commands
        ]
        self._all_failed(results, failures)
        return BatchResult(results=results)

    async def channels(self, call: Call) -> Struct:
        query = _decode_query(call.request, ChannelsQuery)
        channels = {
            name: ChannelStats(num_clients=count)
            for name, count in sorted(self.hub.registry.channels().items())
            if query.pattern is None or fnmatchcase(name, query.pattern)
        }
        return ChannelsResult(node=self.hub.node_id, channels=channels)

    async def history(self, call: Call) -> Struct:
        channel = call.param("channel")
        self.hub.namespaces.resolve(channel)
        query = _decode_query(call.request, HistoryQuery)
        if query.epoch is not None and query.since_offset is None:
            raise ApiError(400, "`epoch` is only meaningful with `since_offset`")
        result = await self.hub.engine.history(
            channel, since=query.since_offset, limit=query.limit, reverse=query.reverse
        )
        publications = result.publications
        if query.epoch is not None and query.epoch != result.epoch:
            publications = []  # another epoch: nothing after that position exists any more
        return HistoryResult(
            publications=[_history_publication(p) for p in publications],
            offset=result.offset,
            epoch=result.epoch,
        )

    async def presence(self, call: Call) -> Struct:
        channel = call.param("channel")
        self.hub.namespaces.resolve(channel)
        _decode_query(call.request, NoQuery)
        clients = await self.hub.engine.presence(channel)
        return PresenceResult(
            clients={client: _client_details(info) for client, info in clients.items()}
        )

    async def presence_stats(self, call: Call) -> Struct:
        channel = call.param("channel")
        self.hub.namespaces.resolve(channel)
        _decode_query(call.request, NoQuery)
        stats = await self.hub.engine.presence_stats(channel)
        return PresenceStatsResult(num_clients=stats.num_clients, num_users=stats.num_users)

    async def disconnect(self, call: Call) -> Struct:
        user = call.param("user")
        _check_name("user", user)
        if call.body.strip():
            decode_body(call.body, DisconnectRequest)
        await self.hub.disconnect_user(user)
        return DisconnectResult()

    async def unsubscribe(self, call: Call) -> Struct:
        user = call.param("user")
        _check_name("user", user)
        req = decode_body(call.body, UnsubscribeRequest)
        await self.hub.unsubscribe_user(user, req.channel)
        return UnsubscribeResult()

    async def info(self, call: Call) -> Struct:
        _decode_query(call.request, NoQuery)
        hub = self.hub
        return InfoResult(
            node=hub.node_id,
            version=version(),
            engine=_engine_name(hub),
            uptime=round(time.time() - hub.started_at, 3),
            connections=len(hub.connections),
            users=len(hub.users),
            channels=len(hub.registry),
            subscriptions=hub.registry.subscription_count(),
            development=hub.settings.development,
        )

    # -- dispatch ----------------------------------------------------------------

    def _authorize(self, request: Request) -> None:
        expected = self.hub.settings.api_key
        if not expected:
            raise ApiError(
                401,
                "the server API is disabled: no API key is configured "
                "(set HUBBUB_API_KEY or [hub] api_key)",
            )
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "apikey" or not key.strip():
            raise ApiError(401, "missing API key: send the header `Authorization: apikey <key>`")
        if not hmac.compare_digest(key.strip().encode(), expected.encode()):
            raise ApiError(401, "invalid API key")

    async def handle(
        self, request: Request, method: str, handler: Callable[[Call], Awaitable[Struct]]
    ) -> Response:
        try:
            if request.method != method:
                raise ApiError(405, f"use {method} for {request.url.path}")
            self._authorize(request)
            body = await read_body(request, self.body_limit) if method == "POST" else b""
            await self.hub.start()
            return _json(await handler(Call(request, body)))
        except ApiError as exc:
            response = _error_response(exc)
            if exc.status == 405:
                response.headers["Allow"] = method
            return response
        except EngineUnavailable as exc:
            return _error_response(ApiError(503, exc.message))
        except CommandError as exc:
            return _error_response(ApiError.from_command(exc))
        except Exception:
            reference = secrets.token_hex(4)
            path = request.url.path
            logger.exception("internal error in %s %s (ref %s)", method, path, reference)
            return _error_response(ApiError(500, f"internal error (ref {reference})"))

    def route(self, path: str, method: str, handler: Callable[[Call], Awaitable[Struct]]) -> Route:
        async def endpoint(request: Request) -> Response:
            return await self.handle(request, method, handler)

        endpoint.__name__ = handler.__name__
        return Route(path, endpoint, methods=_ALL_METHODS)


_ALL_METHODS: Final = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]

#: (path, method, handler name, summary, request struct or None, response struct)


def api_routes(hub: Hub) -> list[BaseRoute]:
    """The ``/api/...`` routes of ``hub`` (mounted by :func:`hubbub.asgi.app.build_app`)."""
    api = ServerApi(hub)
    routes: list[BaseRoute] = [
        api.route(path, method, getattr(api, name)) for path, method, name, *_ in OPERATIONS
    ]
    document = openapi_document()

    async def openapi(request: Request) -> Response:
        root = request.scope.get("root_path", "") or "/"
        return Response(
            _encoder.encode({**document, "servers": [{"url": root}]}),
            media_type="application/json",
        )

    async def not_found(request: Request) -> Response:
        return _error_response(ApiError(404, f"no API route {request.url.path}"))

    routes.append(Route("/api/openapi.json", openapi, methods=["GET"]))
    routes.append(Route("/api/{rest:path}", not_found, methods=_ALL_METHODS))
    return routes
