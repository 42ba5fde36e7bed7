"""Browser-facing routes: the client module, the demo chat and the dashboard.

``/hubbub.js`` is always served (it is how browsers talk to the hub). The demo
chat (``/``), the dashboard (``/dashboard``) and their assets (``/static/...``)
are served when ``settings.demo`` is on. Two JSON endpoints back them:

* ``POST /demo/token {nickname}`` signs a short-lived connection token for the
  demo, **in development mode only** (no secret configured); otherwise the demo
  asks the user to paste a token made with ``hubbub token``.
* ``GET /dashboard/stats`` reads the hub's live numbers; it needs the API key
  (``Authorization: apikey <key>`` or ``?api_key=``) outside development mode.

Every HTML page is sent with a strict Content-Security-Policy (scripts and
styles from this origin only), a second line of defence behind the pages'
escaping of user content.
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from hubbub.auth import issue_token
from hubbub.core.channels import is_personal

if TYPE_CHECKING:
    from hubbub.hub import Hub

STATIC_DIR: Final = Path(__file__).resolve().parent.parent / "static"

#: Lifetime of a demo token; the demo asks for a new one when it expires.
DEMO_TOKEN_TTL: Final = 3600
TOP_CHANNELS: Final = 10

_NICKNAME_MAX: Final = 32
_DEMO_USER: Final = re.compile(r"demo-[0-9a-f]{12}")

PAGE_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def page_routes(hub: Hub) -> list[BaseRoute]:
    """The routes to add to the hub's ASGI app."""

    async def client_module(request: Request) -> Response:
        return FileResponse(
            STATIC_DIR / "hubbub.js",
            media_type="text/javascript",
            headers={"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"},
        )

    routes: list[BaseRoute] = [Route("/hubbub.js", client_module)]
    if not hub.settings.demo:
        return routes

    def page(name: str) -> Any:
        async def endpoint(request: Request) -> Response:
            return FileResponse(STATIC_DIR / name, media_type="text/html", headers=PAGE_HEADERS)

        return endpoint

    async def demo_config(request: Request) -> Response:
        return JSONResponse({"development": hub.settings.development})

    async def demo_token(request: Request) -> Response:
        if not hub.settings.development or not hub.settings.secret:
            return JSONResponse(
                {"error": "demo tokens are only issued in development mode"}, status_code=404
            )
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return JSONResponse({"error": "expected a JSON object"}, status_code=400)
        nickname = body.get("nickname")
        if not isinstance(nickname, str) or not nickname.strip():
            return JSONResponse({"error": "`nickname` is required"}, status_code=400)
        nickname = " ".join(nickname.split())
        if len(nickname) > _NICKNAME_MAX:
            return JSONResponse(
                {"error": f"`nickname` is longer than {_NICKNAME_MAX} characters"},
                status_code=400,
            )
        user = body.get("user")
        if not isinstance(user, str) or not _DEMO_USER.fullmatch(user):
            user = "demo-" + secrets.token_hex(6)
        token = issue_token(hub.settings.secret, user, ttl=DEMO_TOKEN_TTL, info={"name": nickname})
        return JSONResponse({"token": token, "user": user, "expires_in": DEMO_TOKEN_TTL})

    async def dashboard_stats(request: Request) -> Response:
        if not _dashboard_allowed(hub, request):
            return JSONResponse(
                {"error": "API key required (Authorization: apikey <key>)"},
                status_code=401,
                headers={"WWW-Authenticate": "apikey"},
            )
        return JSONResponse(collect_stats(hub), headers={"Cache-Control": "no-store"})

    routes += [
        Route("/", page("index.html")),
        Route("/dashboard", page("dashboard.html")),
        Route("/dashboard/stats", dashboard_stats),
        Route("/demo/config", demo_config),
        Route("/demo/token", demo_token, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="hubbub-static"),
    ]
    return routes


def _dashboard_allowed(hub: Hub, request: Request) -> bool:
    if hub.settings.development:
        return True
    expected = hub.settings.api_key
    if not expected:
        return False
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    given = value.strip() if scheme.lower() == "apikey" else request.query_params.get("api_key")
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def _total(counter: Counter) -> float:
    return sum(
        sample.value
        for metric in counter.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


def collect_stats(hub: Hub) -> dict[str, Any]:
    """A snapshot of the hub for the dashboard (counters are totals; the page
    turns them into rates)."""
    channels = hub.registry.channels()
    visible = {name: n for name, n in channels.items() if not is_personal(name)}
    top = sorted(visible.items(), key=lambda item: (-item[1], item[0]))[:TOP_CHANNELS]
    return {
        "time": time.time(),
        "node": hub.node_id,
        "uptime": time.time() - hub.started_at,
        "connections": len(hub.connections),
        "users": len(hub.users),
        "channels": len(visible),
        "subscriptions": hub.registry.subscription_count(),
        "messages_in": _total(hub.metrics.messages_in),
        "messages_out": _total(hub.metrics.messages_out),
        "errors": _total(hub.metrics.errors),
        "top_channels": [{"channel": name, "subscribers": n} for name, n in top],
        "development": hub.settings.development,
    }
