"""One ASGI app: ``/ws`` and ``/hubbub/...`` go to hubbub, everything else to Django.

Run:  uvicorn project.asgi:application --port 8000   (from examples/django_app)
"""

from __future__ import annotations

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django_app = get_asgi_application()  # sets Django up before models are imported

from project.realtime import hub  # noqa: E402

HUB_PREFIX = "/hubbub"  # the HTTP API, health and metrics: /hubbub/api/..., /hubbub/ready


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    path = scope.get("path", "")
    if scope["type"] == "lifespan":
        await hub.asgi(scope, receive, send)  # starts/stops the hub (Django has no lifespan)
    elif scope["type"] == "websocket" and path == "/ws":
        await hub.asgi(scope, receive, send)
    elif path.startswith(HUB_PREFIX + "/"):
        await hub.asgi(
            {**scope, "root_path": scope.get("root_path", "") + HUB_PREFIX}, receive, send
        )
    else:
        await django_app(scope, receive, send)
