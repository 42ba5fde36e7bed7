"""Channels' router for your consumers and Django, hubbub under ``/hubbub/``.

Run:  uvicorn project.asgi:application --port 8000   (from examples/django_channels)
(daphne works too: daphne project.asgi:application)
"""

from __future__ import annotations

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import path  # noqa: E402

from hubbub.hub import Hub  # noqa: E402
from project.consumers import EchoConsumer, OrderConsumer  # noqa: E402

channels_app = ProtocolTypeRouter(
    {
        "http": django_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(
                URLRouter(
                    [
                        path("ws/echo/", EchoConsumer.as_asgi()),
                        path("ws/orders/", OrderConsumer.as_asgi()),
                    ]
                )
            )
        ),
    }
)

hub = Hub(secret=settings.HUBBUB_SECRET, api_key=settings.HUBBUB_API_KEY)
HUB_PREFIX = "/hubbub"  # ws://host/hubbub/ws, http://host/hubbub/api/...


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await hub.asgi(scope, receive, send)
    elif scope.get("path", "").startswith(HUB_PREFIX + "/"):
        root = scope.get("root_path", "") + HUB_PREFIX
        await hub.asgi({**scope, "root_path": root}, receive, send)
    else:
        await channels_app(scope, receive, send)
