"""Peer (a): the FastAPI tutorial's ``ConnectionManager``, with rooms.

As in https://fastapi.tiangolo.com/advanced/websockets/ ("Handling disconnections
and multiple clients"): a manager holding the connections, ``broadcast`` awaiting
``send_text`` for each member in turn. The only addition is a dict of rooms (sets)
instead of one list, and the benchmark's "mini" protocol to join and publish.

Run: uvicorn benchmarks.peers.fastapi_manager:app --loop uvloop --port 8001
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect


class ConnectionManager:
    def __init__(self) -> None:
        self.rooms: dict[str, set[WebSocket]] = {}

    async def connect(self, websocket: WebSocket) -> None:
        await websocket.accept()

    def join(self, room: str, websocket: WebSocket) -> None:
        self.rooms.setdefault(room, set()).add(websocket)

    def disconnect(self, websocket: WebSocket) -> None:
        for members in self.rooms.values():
            members.discard(websocket)

    async def broadcast(self, room: str, message: str) -> None:
        for connection in list(self.rooms.get(room, ())):
            await connection.send_text(message)


app = FastAPI()
manager = ConnectionManager()


@app.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket) -> None:
    await manager.connect(websocket)
    try:
        while True:
            message: dict[str, Any] = await websocket.receive_json()
            kind = message.get("type")
            if kind == "subscribe":
                manager.join(message["channel"], websocket)
                await websocket.send_json({"type": "ack", "id": message.get("id")})
            elif kind == "publish":
                text = json.dumps(
                    {"type": "message", "channel": message["channel"], "data": message["data"]}
                )
                await manager.broadcast(message["channel"], text)
            elif kind == "ping":
                await websocket.send_json({"type": "pong", "id": message.get("id")})
    except WebSocketDisconnect:
        manager.disconnect(websocket)
