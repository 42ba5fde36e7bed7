"""The engine's Lua scripts, loaded from ``lua/*.lua`` inside the package.

Each script documents its KEYS and ARGV in its header. They are registered
with ``register_script``: calls go out as ``EVALSHA`` and fall back to
``SCRIPT LOAD`` on ``NOSCRIPT`` (a restarted Redis forgets its script cache).
Every key a script touches is passed in KEYS and shares the channel's hash
tag, so the scripts run unchanged on Redis Cluster.
"""

from __future__ import annotations

from importlib.resources import files

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

__all__ = ["Scripts", "load_lua"]


def load_lua(name: str) -> str:
    """The text of ``lua/<name>.lua`` (shipped in the wheel with the package)."""
    return (files(__package__) / "lua" / f"{name}.lua").read_text(encoding="utf-8")


class Scripts:
    """The registered scripts of one client."""

    __slots__ = (
        "history",
        "presence_add",
        "presence_expire",
        "presence_get",
        "presence_remove",
        "publish",
    )

    def __init__(self, client: Redis) -> None:
        self.publish: AsyncScript = client.register_script(load_lua("publish"))
        self.history: AsyncScript = client.register_script(load_lua("history"))
        self.presence_add: AsyncScript = client.register_script(load_lua("presence_add"))
        self.presence_remove: AsyncScript = client.register_script(load_lua("presence_remove"))
        self.presence_get: AsyncScript = client.register_script(load_lua("presence_get"))
        self.presence_expire: AsyncScript = client.register_script(load_lua("presence_expire"))
