"""The HTTP server API (SPEC section 6): publish, broadcast, batch, channels,
history, presence, disconnect and info, for backends that are not the hub.

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
import importlib.metadata
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Annotated, Any, Final, TypeVar

import msgspec
from msgspec import Meta, Raw, Struct
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from hubbub.core.protocol import MAX_HISTORY_LIMIT, ClientInfo, Publication
from hubbub.errors import CommandError, EngineUnavailable, ErrorCode

if TYPE_CHECKING:
    from hubbub.hub import Hub

logger = logging.getLogger("hubbub.api")

#: Bytes a request body may have beyond ``max_message_size`` (for the channel
#: names, keys and JSON around ``data``).
BODY_ALLOWANCE: Final = 16_384
#: Most channels in one broadcast / commands in one batch.
MAX_ITEMS: Final = 1000
MAX_NAME_BYTES: Final = 255

ChannelName = Annotated[str, Meta(max_length=1024)]
IdempotencyKey = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=255,
        description="The same key on the same channel within 5 minutes publishes once "
        "and returns the first result.",
    ),
]

# ------------------------------------------------------------------- request structs


class PublishRequest(Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /api/publish`` (and one command of ``POST /api/batch``)."""

    channel: ChannelName
    data: Raw
    idempotency_key: IdempotencyKey | None = None


class BroadcastRequest(Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /api/broadcast``: the same data to several channels."""

    channels: Annotated[list[ChannelName], Meta(min_length=1, max_length=MAX_ITEMS)]
    data: Raw
    idempotency_key: IdempotencyKey | None = None


class BatchRequest(Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /api/batch``: publishes run one after another, in this order."""

    commands: Annotated[list[PublishRequest], Meta(min_length=1, max_length=MAX_ITEMS)]


class DisconnectRequest(Struct, forbid_unknown_fields=True):
    """``POST /api/users/{user}/disconnect`` takes no fields (empty body or ``{}``)."""


class HistoryQuery(Struct, forbid_unknown_fields=True, kw_only=True):
    """Query parameters of ``GET /api/channels/{channel}/history``."""

    limit: Annotated[int, Meta(ge=0, le=MAX_HISTORY_LIMIT)] | None = None
    since_offset: Annotated[int, Meta(ge=0)] | None = None
    epoch: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    reverse: bool = False


class ChannelsQuery(Struct, forbid_unknown_fields=True, kw_only=True):
    """Query parameters of ``GET /api/channels``."""

    pattern: Annotated[str, Meta(min_length=1, max_length=1024)] | None = None


class NoQuery(Struct, forbid_unknown_fields=True):
    pass


# ------------------------------------------------------------------ response structs


class ErrorDetail(Struct, omit_defaults=True):
    code: str
    """``unauthorized``, ``bad_request``, ``payload_too_large``, ``unknown_namespace``,
    ``engine_unavailable``, ``internal``... (see the OpenAPI document)."""
    message: str


class ErrorResponse(Struct):
    error: ErrorDetail


class PublishResult(Struct):
    """Where the publication went: its offset and the channel's epoch."""

    offset: int
    epoch: str


class ChannelResult(Struct, omit_defaults=True):
    """One channel's outcome in a broadcast or batch: a position or an error."""

    channel: str
    offset: int | None = None
    epoch: str | None = None
    error: ErrorDetail | None = None


class BroadcastResult(Struct):
    results: list[ChannelResult]


class BatchResult(Struct):
    results: list[ChannelResult]


class ChannelStats(Struct):
    num_clients: int
    """Subscribers connected to this node."""


class ChannelsResult(Struct):
    node: str
    channels: dict[str, ChannelStats]


class ClientDetails(Struct, omit_defaults=True):
    client: str
    user: str
    info: Any = None


class HistoryPublication(Struct, omit_defaults=True):
    offset: int
    data: Any
    info: ClientDetails | None = None


class HistoryResult(Struct):
    publications: list[HistoryPublication]
    offset: int
    """The newest offset assigned in the channel."""
    epoch: str


class PresenceResult(Struct):
    clients: dict[str, ClientDetails]


class PresenceStatsResult(Struct):
    num_clients: int
    num_users: int


class DisconnectResult(Struct):
    pass


class InfoResult(Struct):
    node: str
    version: str
    engine: str
    uptime: float
    connections: int
    users: int
    channels: int
    subscriptions: int
    development: bool


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


def _decode_body(body: bytes, kind: type[T]) -> T:
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


async def _read_body(request: Request, limit: int) -> bytes:
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


def _version() -> str:
    try:
        return importlib.metadata.version("hubbub")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - source tree
        return "0+unknown"


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

    def _validate_publish(self, channel: str, data: Raw) -> None:
        self.hub.namespaces.resolve(channel)
        limit = self.hub.settings.max_message_size
        if len(data) > limit:
            raise ApiError(413, f"`data` exceeds max_message_size ({limit} bytes)")

    async def _publish_one(
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
        req = _decode_body(call.body, PublishRequest)
        self._validate_publish(req.channel, req.data)
        position = await self.hub.publish(
            req.channel, bytes(req.data), raw=True, idempotency_key=req.idempotency_key
        )
        return PublishResult(offset=position.offset, epoch=position.epoch)

    async def broadcast(self, call: Call) -> Struct:
        req = _decode_body(call.body, BroadcastRequest)
        seen: set[str] = set()
        for channel in req.channels:
            if channel in seen:
                raise ApiError(400, f"`channels` lists {channel!r} twice")
            seen.add(channel)
            self._validate_publish(channel, req.data)
        failures: list[ApiError] = []
        results = list(
            await asyncio.gather(
                *(
                    self._publish_one(c, req.data, req.idempotency_key, failures)
                    for c in req.channels
                )
            )
        )
        self._all_failed(results, failures)
        return BroadcastResult(results=results)

    async def batch(self, call: Call) -> Struct:
        req = _decode_body(call.body, BatchRequest)
        for i, command in enumerate(req.commands):
            try:
                self._validate_publish(command.channel, command.data)
            except (ApiError, CommandError) as exc:
                error = exc if isinstance(exc, ApiError) else ApiError.from_command(exc)
                message = f"commands[{i}]: {error.message}"
                raise ApiError(error.status, message, error.code) from None
        failures: list[ApiError] = []
        results = [
            await self._publish_one(c.channel, c.data, c.idempotency_key, failures)
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
            _decode_body(call.body, DisconnectRequest)
        await self.hub.disconnect_user(user)
        return DisconnectResult()

    async def info(self, call: Call) -> Struct:
        _decode_query(call.request, NoQuery)
        hub = self.hub
        return InfoResult(
            node=hub.node_id,
            version=_version(),
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
            body = await _read_body(request, self.body_limit) if method == "POST" else b""
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
OPERATIONS: Final[list[tuple[str, str, str, str, type[Struct] | None, type[Struct]]]] = [
    ("/api/publish", "POST", "publish", "Publish to a channel", PublishRequest, PublishResult),
    (
        "/api/broadcast",
        "POST",
        "broadcast",
        "Publish the same data to several channels",
        BroadcastRequest,
        BroadcastResult,
    ),
    ("/api/batch", "POST", "batch", "Run several publishes in order", BatchRequest, BatchResult),
    ("/api/channels", "GET", "channels", "This node's active channels", None, ChannelsResult),
    (
        "/api/channels/{channel}/history",
        "GET",
        "history",
        "A channel's kept publications",
        None,
        HistoryResult,
    ),
    (
        "/api/channels/{channel}/presence",
        "GET",
        "presence",
        "Who is subscribed to a channel",
        None,
        PresenceResult,
    ),
    (
        "/api/channels/{channel}/presence_stats",
        "GET",
        "presence_stats",
        "Client and user counts of a channel",
        None,
        PresenceStatsResult,
    ),
    (
        "/api/users/{user}/disconnect",
        "POST",
        "disconnect",
        "Close every connection of a user, on every node",
        DisconnectRequest,
        DisconnectResult,
    ),
    ("/api/info", "GET", "info", "This node's status", None, InfoResult),
]


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


# ----------------------------------------------------------------------- OpenAPI

_QUERY_DOCS: Final[dict[str, str]] = {
    "limit": "At most this many publications (0: none, only the position). Default: all kept.",
    "since_offset": "Only publications after this offset (with `reverse`: before it).",
    "epoch": "The epoch `since_offset` belongs to; another epoch gives no publications.",
    "reverse": "Newest first.",
    "pattern": "Only channels matching this glob pattern (e.g. `chat:*`).",
}

_ERRORS_BY_METHOD: Final[dict[str, tuple[int, ...]]] = {
    "POST": (400, 401, 404, 405, 413, 500, 503),
    "GET": (400, 401, 404, 405, 500, 503),
}

_ERROR_DOCS: Final[dict[int, str]] = {
    400: "Invalid body, query or channel; the message names the problem.",
    401: "Missing or wrong API key, or no API key configured on the server.",
    404: "Unknown namespace (`strict_namespaces = true`) or no such route.",
    405: "Wrong HTTP method for this route.",
    413: "Body over the limit (`max_message_size` + 16 KiB) or `data` over `max_message_size`.",
    500: "Unexpected failure; the message has a reference to find in the server log.",
    503: "The engine is unavailable; retry later.",
}


def _query_parameters(kind: type[Struct], schemas: dict[str, Any]) -> list[dict[str, Any]]:
    properties: dict[str, Any] = schemas[kind.__name__]["properties"]
    return [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": _QUERY_DOCS.get(name, ""),
            "schema": schema,
        }
        for name, schema in properties.items()
    ]


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of the server API, built from the structs."""
    kinds: list[Any] = [ErrorResponse, HistoryQuery, ChannelsQuery]
    for *_, request, response in OPERATIONS:
        if request is not None:
            kinds.append(request)
        kinds.append(response)
    _, schemas = msgspec.json.schema_components(kinds, ref_template="#/components/schemas/{name}")
    error_ref = {"$ref": "#/components/schemas/ErrorResponse"}
    paths: dict[str, Any] = {}
    for path, method, name, summary, request, response in OPERATIONS:
        operation: dict[str, Any] = {
            "operationId": name,
            "summary": summary,
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": f"#/components/schemas/{response.__name__}"}
                        }
                    },
                },
                **{
                    str(status): {
                        "description": _ERROR_DOCS[status],
                        "content": {"application/json": {"schema": error_ref}},
                    }
                    for status in _ERRORS_BY_METHOD[method]
                },
            },
        }
        parameters: list[dict[str, Any]] = []
        for param in ("channel", "user"):
            if "{" + param + "}" in path:
                parameters.append(
                    {
                        "name": param,
                        "in": "path",
                        "required": True,
                        "description": f"The {param}, percent-encoded (`#42` is `%2342`).",
                        "schema": {"type": "string", "minLength": 1},
                    }
                )
        if name == "history":
            parameters += _query_parameters(HistoryQuery, schemas)
        elif name == "channels":
            parameters += _query_parameters(ChannelsQuery, schemas)
        if parameters:
            operation["parameters"] = parameters
        if request is not None:
            operation["requestBody"] = {
                "required": name != "disconnect",
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{request.__name__}"}
                    }
                },
            }
        paths[path] = {method.lower(): operation}
    for query in (HistoryQuery, ChannelsQuery):
        del schemas[query.__name__]
    paths["/api/openapi.json"] = {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "security": [],
            "responses": {
                "200": {
                    "description": "The OpenAPI document",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hubbub server API",
            "version": _version(),
            "description": (
                "Publish to and inspect a hubbub hub from any backend. Authenticate "
                "with `Authorization: apikey <key>`. Errors are "
                '`{"error": {"code": ..., "message": ...}}`. `GET /api/channels` and '
                "`GET /api/info` describe the node that answers. Server publishes are "
                "not subject to a namespace's `publish = false` (that restricts clients)."
            ),
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "apikey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`apikey <key>`",
                }
            },
        },
        "security": [{"apikey": []}],
        "paths": paths,
    }
