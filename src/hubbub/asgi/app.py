"""The hub's ASGI app: the WebSocket endpoint plus health and metrics routes.

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
from starlette.routing import Route, WebSocketRoute

from hubbub.asgi.api import api_routes
from hubbub.asgi.pages import page_routes
from hubbub.asgi.websocket import WebSocketEndpoint
from hubbub.metrics import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from hubbub.hub import Hub


def build_app(hub: Hub) -> Starlette:
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
        WebSocketRoute("/ws", WebSocketEndpoint(hub)),
        Route("/health", health),
        Route("/ready", ready),
        Route("/metrics", metrics),
        *api_routes(hub),
    ]
    routes += page_routes(hub)  # /hubbub.js, and the demo and dashboard when demo is on
    return Starlette(routes=routes, lifespan=hub.lifespan)
