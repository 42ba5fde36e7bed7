"""Peer (d): the ``websockets`` library with ``websockets.broadcast``.

Following https://websockets.readthedocs.io/en/stable/topics/broadcast.html:
``broadcast()`` writes the message to every member without awaiting (slow
clients are skipped by the library's own write-buffer rules), and uvloop runs
the event loop.

Run: python -m benchmarks.peers.websockets_broadcast --port 8004
"""

from __future__ import annotations

import argparse
import asyncio
import json

from websockets.asyncio.server import ServerConnection, broadcast, serve

ROOMS: dict[str, set[ServerConnection]] = {}


async def handler(websocket: ServerConnection) -> None:
    joined: list[str] = []
    try:
        async for text in websocket:
            message = json.loads(text)
            kind = message.get("type")
            if kind == "subscribe":
                ROOMS.setdefault(message["channel"], set()).add(websocket)
                joined.append(message["channel"])
                await websocket.send(json.dumps({"type": "ack", "id": message.get("id")}))
            elif kind == "publish":
                text = json.dumps(
                    {"type": "message", "channel": message["channel"], "data": message["data"]}
                )
                broadcast(ROOMS.get(message["channel"], ()), text)
            elif kind == "ping":
                await websocket.send(json.dumps({"type": "pong", "id": message.get("id")}))
    finally:
        for room in joined:
            ROOMS.get(room, set()).discard(websocket)


async def main(host: str, port: int) -> None:
    async with serve(handler, host, port, max_size=65536):
        await asyncio.get_running_loop().create_future()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8004)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(main(args.host, args.port))
    except ImportError:
        asyncio.run(main(args.host, args.port))
