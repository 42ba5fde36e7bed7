from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from hubbub.auth import issue_token
from hubbub.hub import Hub
from support import SECRET, serve


@pytest.fixture
def make_token() -> Callable[..., str]:
    def make(user: str, **claims: Any) -> str:
        return issue_token(SECRET, user, **claims)

    return make


@pytest.fixture
def hub_options() -> dict[str, Any]:
    """Override in a test module to configure the hub."""
    return {}


@pytest.fixture
async def hub(hub_options: dict[str, Any]) -> AsyncIterator[Hub]:
    options: dict[str, Any] = {"secret": SECRET, "api_key": "test-api-key", **hub_options}
    h = Hub(**options)
    yield h
    await h.close()


@pytest.fixture(params=["direct", "asgi"])
async def server(hub: Hub, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A real server for ``hub`` on a free port: ``host:port``.

    Every test using it runs twice: with ``hubbub serve``'s WebSocket protocol
    (direct writes of pre-framed messages) and with uvicorn's plain one (ASGI
    sends through each connection's queue and writer task, as when embedded)."""
    overrides = {} if request.param == "direct" else {"ws": "websockets-sansio"}
    async with serve(hub.asgi, hub, **overrides) as address:
        yield address
