"""A healthy bystander for end-to-end tests: proves others are unaffected."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator

from hubbub.hub import Hub
from support import Client, client

_counter = itertools.count()


@contextlib.asynccontextmanager
async def bystander(
    address: str, token: str, channel: str = "chat:bystander"
) -> AsyncIterator[Client]:
    """A client subscribed to ``channel`` for the duration of the block."""
    async with client(address, token=token) as c:
        await c.ok("subscribe", channel=channel)
        yield c


async def still_delivers(hub: Hub, witness: Client, channel: str = "chat:bystander") -> None:
    """The server is up and ``witness`` still gets publications."""
    marker = f"still-alive-{next(_counter)}"
    await hub.publish(channel, {"marker": marker})
    while True:
        message = await witness.next("message")
        if message["data"] == {"marker": marker}:
            break
    await witness.send({"type": "ping"})  # and still answers commands
    await witness.next("pong")
