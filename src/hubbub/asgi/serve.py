"""The app factory ``hubbub serve`` hands to uvicorn (in every worker process).

Settings travel from the CLI to the workers as one JSON document in an
environment variable, so that every worker uses the same secret and API key,
including the ones generated in development mode.
"""

from __future__ import annotations

import os
from typing import Any, Final

import msgspec

from hubbub.asgi.httpserver import HubbubHttpProtocol
from hubbub.asgi.wsserver import HubbubWebSocketProtocol
from hubbub.config import Settings
from hubbub.hub import Hub

SETTINGS_ENV: Final = "HUBBUB_SERVE_SETTINGS"


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn settings that follow from hubbub's (shared by the CLI and tests)."""
    return {
        "host": settings.host,
        "port": settings.port,
        "http": HubbubHttpProtocol,
        "ws": HubbubWebSocketProtocol,
        "ws_max_size": settings.max_message_size,
        "ws_ping_interval": None,  # hubbub's own ping/pong frames are the heartbeat
        "ws_per_message_deflate": settings.compression,
        "lifespan": "on",
        "timeout_graceful_shutdown": 5,
    }


def export_settings(settings: Settings) -> None:
    os.environ[SETTINGS_ENV] = msgspec.json.encode(settings).decode()


def create_app() -> object:
    """uvicorn factory: a hub built from the exported settings."""
    document = os.environ.get(SETTINGS_ENV)
    if document is None:
        raise RuntimeError(f"{SETTINGS_ENV} is not set; start the server with `hubbub serve`")
    settings = msgspec.json.decode(document, type=Settings)
    return Hub(settings).asgi
