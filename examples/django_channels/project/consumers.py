"""Your existing consumers stay as they are; new code publishes to hubbub."""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

import hubbub


class EchoConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """Stands for the consumers an app already has: untouched."""

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.send_json({"echo": content})


class OrderConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """Takes orders over its own socket and announces them on hubbub's
    ``orders`` channel (history, recovery, presence for free), instead of
    ``channel_layer.group_send``."""

    async def connect(self) -> None:
        self.publisher = hubbub.AsyncPublisher(settings.HUBBUB_URL, settings.HUBBUB_API_KEY)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.publisher.aclose()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        item = str(content.get("item", ""))[:100]
        result = await self.publisher.publish("orders", {"item": item})
        await self.send_json({"published": result.offset})
