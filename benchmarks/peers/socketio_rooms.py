"""Peer (c): python-socketio with rooms, as an ASGI app under uvicorn.

As in https://python-socketio.readthedocs.io/en/stable/server.html: an
``AsyncServer`` in ``asgi`` mode, ``enter_room`` to join, ``emit(..., room=...)``
to broadcast. Events: ``subscribe(channel)`` (acked), ``publish({channel, data})``,
``echo()`` (acked; the round trip of scenario S4).

Run: uvicorn benchmarks.peers.socketio_rooms:app --loop uvloop --port 8003
"""

from __future__ import annotations

from typing import Any

import socketio

sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")
app = socketio.ASGIApp(sio)


@sio.event
async def subscribe(sid: str, channel: str) -> bool:
    await sio.enter_room(sid, channel)
    return True


@sio.event
async def publish(sid: str, message: dict[str, Any]) -> None:
    await sio.emit("message", message, room=message["channel"])


@sio.event
async def echo(sid: str) -> str:
    return "pong"
