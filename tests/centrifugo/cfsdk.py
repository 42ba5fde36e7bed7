"""Helpers for driving the real Centrifugo Python SDK (``centrifuge-python``)."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable
from typing import Any

from support import require

HAVE_SDK = importlib.util.find_spec("centrifuge") is not None


def need_sdk() -> None:
    require(HAVE_SDK, "centrifuge-python is not installed (pip install -e '.[dev]')")


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` (state reached by the SDK's tasks) until it holds."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


class Events:
    """Records what the SDK reports, client- and subscription-level."""

    def __init__(self) -> None:
        self.connected: list[Any] = []
        self.connecting: list[Any] = []
        self.disconnected: list[Any] = []
        self.errors: list[Any] = []
        self.subscribed: list[Any] = []
        self.publications: list[Any] = []
        self.server_publications: list[Any] = []
        self.server_subscribed: list[Any] = []
        self.server_unsubscribed: list[Any] = []
        self.unsubscribed: list[Any] = []
        self.joins: list[Any] = []
        self.leaves: list[Any] = []

    def handlers(self) -> tuple[Any, Any]:
        from centrifuge import ClientEventHandler, SubscriptionEventHandler

        ev = self

        class ClientEvents(ClientEventHandler):  # type: ignore[misc]
            async def on_connected(self, ctx: Any) -> None:
                ev.connected.append(ctx)

            async def on_connecting(self, ctx: Any) -> None:
                ev.connecting.append(ctx)

            async def on_disconnected(self, ctx: Any) -> None:
                ev.disconnected.append(ctx)

            async def on_error(self, ctx: Any) -> None:
                ev.errors.append(ctx)

            async def on_subscribed(self, ctx: Any) -> None:
                ev.server_subscribed.append(ctx)

            async def on_publication(self, ctx: Any) -> None:
                ev.server_publications.append(ctx.pub)

            async def on_unsubscribed(self, ctx: Any) -> None:
                ev.server_unsubscribed.append(ctx)

        class SubEvents(SubscriptionEventHandler):  # type: ignore[misc]
            async def on_subscribed(self, ctx: Any) -> None:
                ev.subscribed.append(ctx)

            async def on_publication(self, ctx: Any) -> None:
                ev.publications.append(ctx.pub)

            async def on_unsubscribed(self, ctx: Any) -> None:
                ev.unsubscribed.append(ctx)

            async def on_join(self, ctx: Any) -> None:
                ev.joins.append(ctx.info)

            async def on_leave(self, ctx: Any) -> None:
                ev.leaves.append(ctx.info)

        return ClientEvents(), SubEvents()


def sdk_client(address: str, token: str, events: Events, **options: Any) -> Any:
    from centrifuge import Client

    client_events, _ = events.handlers()
    options.setdefault("min_reconnect_delay", 0.05)
    options.setdefault("max_reconnect_delay", 0.3)
    options.setdefault("proxy", None)
    return Client(f"ws://{address}/connection/websocket", client_events, token=token, **options)


def subscription(client: Any, channel: str, events: Events, **options: Any) -> Any:
    _, sub_events = events.handlers()
    return client.new_subscription(channel, sub_events, **options)
