"""Starlette + hubbub: the hub mounted beside the app's routes.

The app hands out hubbub connection tokens (``GET /token``; in a real app, only
to a logged-in user, for that user) and publishes from an ordinary endpoint.

Run:  uvicorn app:app --port 8000   (from this directory)
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from hubbub.auth import issue_token
from hubbub.hub import Hub

SECRET = os.environ.get("HUBBUB_SECRET", "change-me-hubbub-secret-at-least-32-bytes")

hub = Hub(secret=SECRET, api_key=os.environ.get("HUBBUB_API_KEY"))


async def token(request: Request) -> JSONResponse:
    user = request.query_params.get("user", "")
    if not user.isalnum():
        return JSONResponse({"error": "user must be alphanumeric"}, status_code=400)
    # The token lets this user subscribe to news:* (a namespace-free app would not need it).
    return JSONResponse({"token": issue_token(SECRET, user, ttl=3600)})


async def announce(request: Request) -> JSONResponse:
    body = await request.json()
    position = await hub.publish("news", {"headline": str(body.get("headline", ""))[:200]})
    return JSONResponse({"offset": position.offset, "epoch": position.epoch})


app = Starlette(
    routes=[
        Route("/token", token),
        Route("/announce", announce, methods=["POST"]),
        Mount("/realtime", app=hub.asgi),  # ws://host/realtime/ws
    ],
    lifespan=hub.lifespan,
)
