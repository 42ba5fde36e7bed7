"""The hub's ASGI app: the WebSocket endpoint, health, metrics, the API and pages.

Mount it anywhere (``app.mount("/realtime", hub.asgi)``); ``hubbub serve``
runs it as the root app. Its lifespan starts and stops the hub; when mounted
(Starlette does not pass lifespan events to mounted apps) the hub starts on
first use, and ``FastAPI(lifespan=hub.lifespan)`` closes it cleanly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hubbub.asgi.api import api_routes
from hubbub.asgi.centrifugo_api import PREFIX as CENTRIFUGO_API
from hubbub.asgi.centrifugo_api import centrifugo_api_routes
from hubbub.asgi.pages import page_routes
from hubbub.asgi.websocket import WebSocketEndpoint
from hubbub.core.centrifugo import CentrifugoCodec
from hubbub.metrics import CONTENT_TYPE_LATEST
from hubbub.version import version

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from hubbub.hub import Hub

WEBSOCKET_PATH = "/ws"
CENTRIFUGO_PATH = "/connection/websocket"
"""Where Centrifugo's SDKs connect by default: Centrifugo's JSON client protocol."""


class HubApp:
    """Sends WebSocket handshakes for ``/ws`` (protocol v1) and
    ``/connection/websocket`` (Centrifugo's protocol) straight to their endpoints,
    and everything else to a Starlette app. A connection lives as long as its ASGI
    call, and idle connections are the memory budget: they should not each hold
    the frames of Starlette's middleware and router for hours."""

    def __init__(
        self,
        websocket: WebSocketEndpoint,
        http: Starlette,
        centrifugo: WebSocketEndpoint | None = None,
        centrifugo_api: Starlette | None = None,
    ) -> None:
        self.websocket = websocket
        self.http = http
        self.centrifugo = centrifugo
        self.centrifugo_api = centrifugo_api

    def websocket_route(self, scope: Scope) -> WebSocketEndpoint | None:
        """The endpoint serving this WebSocket handshake, if not the HTTP app.
        ``hubbub serve``'s WebSocket protocol calls it to call the endpoint
        directly (:mod:`hubbub.asgi.wsserver`): one coroutine frame less for each
        connection's lifetime."""
        path = _route_path(scope)
        if path == WEBSOCKET_PATH:
            return self.websocket
        if path == CENTRIFUGO_PATH:
            return self.centrifugo
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            endpoint = self.websocket_route(scope)
            if endpoint is not None:
                connection = endpoint(scope, receive, send)
                # The connection may live for hours: this frame does not keep its
                # scope (the handshake's headers) alive meanwhile.
                del scope, receive, send
                await connection
                return
        elif scope["type"] == "http" and self.centrifugo_api is not None:
            path = _route_path(scope)
            if path.startswith(CENTRIFUGO_API + "/") or (
                path.startswith("/api/") and _has_header(scope, b"x-api-key")
            ):
                # Centrifugo's server API; hubbub's own is told apart by its
                # ``Authorization: apikey`` header (see hubbub.asgi.centrifugo_api).
                await self.centrifugo_api(scope, receive, send)
                return
        await self.http(scope, receive, send)


def _has_header(scope: Scope, name: bytes) -> bool:
    return any(key.lower() == name for key, _ in scope.get("headers", ()))


def _route_path(scope: Scope) -> str:
    """The path below the mount point (``root_path``), as Starlette routes it."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("/", ""):
        return path[len(root) :]
    return path


def build_app(hub: Hub) -> HubApp:
    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> Response:
        await hub.start()
        if await hub.engine.ready():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "engine unavailable"}, status_code=503)

    async def metrics(request: Request) -> Response:
        return Response(hub.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    routes = [
        Route("/health", health),
        Route("/ready", ready),
        Route("/metrics", metrics),
        *api_routes(hub),
    ]
    routes += page_routes(hub)  # /hubbub.js, and the demo and dashboard when demo is on
    return HubApp(
        WebSocketEndpoint(hub),
        Starlette(routes=routes, lifespan=hub.lifespan),
        centrifugo=WebSocketEndpoint(hub, CentrifugoCodec(version=f"hubbub {version()}")),
        centrifugo_api=Starlette(routes=centrifugo_api_routes(hub)),
    )
