"""Peer (b): Django Channels, a consumer using groups, with channels_redis or
the in-memory layer (``CHANNEL_LAYER=redis|memory``, ``REDIS_URL``).

As in the Channels tutorial (https://channels.readthedocs.io/en/latest/tutorial/):
an ``AsyncWebsocketConsumer``, ``group_add`` to join, ``group_send`` with a
``type`` naming the handler that sends to the socket. The settings live in this
module so that the peer is one file.

Run: uvicorn benchmarks.peers.channels_app:application --loop uvloop --port 8002
"""

from __future__ import annotations

import json
import os
from typing import Any

import django
from django.conf import settings

LAYER = os.environ.get("CHANNEL_LAYER", "memory")

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="benchmark-only",
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=["channels"],
        ROOT_URLCONF=__name__,
        CHANNEL_LAYERS={
            "default": (
                {
                    "BACKEND": "channels_redis.core.RedisChannelLayer",
                    "CONFIG": {
                        "hosts": [os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")],
                        "prefix": os.environ.get("CHANNELS_PREFIX", "asgi"),
                    },
                }
                if LAYER == "redis"
                else {"BACKEND": "channels.layers.InMemoryChannelLayer"}
            )
        },
    )
    django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

urlpatterns: list[Any] = []


class HubConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.rooms: list[str] = []
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for room in self.rooms:
            await self.channel_layer.group_discard(room, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        message = json.loads(text_data or "{}")
        kind = message.get("type")
        if kind == "subscribe":
            await self.channel_layer.group_add(message["channel"], self.channel_name)
            self.rooms.append(message["channel"])
            await self.send(text_data=json.dumps({"type": "ack", "id": message.get("id")}))
        elif kind == "publish":
            await self.channel_layer.group_send(
                message["channel"],
                {"type": "room.message", "channel": message["channel"], "data": message["data"]},
            )
        elif kind == "ping":
            await self.send(text_data=json.dumps({"type": "pong", "id": message.get("id")}))

    async def room_message(self, event: dict[str, Any]) -> None:
        await self.send(
            text_data=json.dumps(
                {"type": "message", "channel": event["channel"], "data": event["data"]}
            )
        )


application = ProtocolTypeRouter({"websocket": URLRouter([path("ws", HubConsumer.as_asgi())])})
