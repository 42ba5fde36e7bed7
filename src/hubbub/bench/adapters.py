"""How the load generator speaks to each server it can drive.

An adapter says, for one wire protocol: which URL to open, what to send once
the WebSocket is open, how to subscribe, publish and make a round trip, how to
recognise the replies, and which byte string marks one delivered publication
(counted with a C-level search, never parsed, on most connections).

Three protocols cover every peer of ``benchmarks/``:

- ``hubbub``: protocol v1 (``/ws?token=...``; ``welcome``, ``ack`` with ``id``);
- ``mini``: the subset of v1 that the hand-written peers speak (FastAPI
  tutorial manager, Django Channels consumer, ``websockets`` + ``broadcast``):
  ``subscribe``/``ack``, ``publish``, ``message``, ``ping``/``pong``, encoded
  with the standard library's ``json.dumps`` (so ``"type": "message"``);
- ``socketio``: Engine.IO 4 / Socket.IO 5 packets over a WebSocket
  (``40`` connect, ``42[...]`` events, ``43<id>[...]`` acks, ``2``/``3`` pings).

The publication payload is ``{"x": pad, "p": publisher, "s": seq, "t": time}``
and every peer passes ``data`` through as JSON, so the same byte searches find
``p``, ``s`` and ``t`` whatever the peer's encoder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

ADAPTERS: Final = ("hubbub", "mini", "socketio")


@dataclass(frozen=True, slots=True)
class Reply:
    """A non-publication frame, as far as the generator cares."""

    kind: str  # "ready", "ack", "pong", "error", "other"
    id: int | None = None
    detail: str = ""


class Adapter:
    """Base: subclasses fill in the protocol details."""

    name: str = ""
    marker: bytes = b""
    ping_marker: bytes | None = None
    pong_reply: bytes = b""
    hello: tuple[bytes, ...] = ()
    needs_ready: bool = False

    def path(self, base: str, token: str | None) -> str:
        raise NotImplementedError

    def subscribe(self, channel: str, id: int) -> bytes:
        raise NotImplementedError

    def publish(self, channel: str, data: bytes) -> bytes:
        raise NotImplementedError

    def ping(self, id: int) -> bytes:
        raise NotImplementedError

    def reply(self, payload: bytes) -> Reply:
        raise NotImplementedError

    def channel(self, name: str) -> str:
        """The channel name to use for a scenario's ``name`` (a namespace for hubbub)."""
        return name


class HubbubAdapter(Adapter):
    name = "hubbub"
    marker = b'"type":"message"'
    ping_marker: bytes | None = b'{"type":"ping"}'
    pong_reply = b'{"type":"pong"}'
    needs_ready = True

    def __init__(self, namespace: str = "bench") -> None:
        self.namespace = namespace

    def path(self, base: str, token: str | None) -> str:
        return f"{base}?token={quote(token)}" if token else base

    def channel(self, name: str) -> str:
        return f"{self.namespace}:{name}" if self.namespace else name

    def subscribe(self, channel: str, id: int) -> bytes:
        return b'{"type":"subscribe","channel":"%s","id":%d}' % (channel.encode(), id)

    def publish(self, channel: str, data: bytes) -> bytes:
        return b'{"type":"publish","channel":"%s","data":%s}' % (channel.encode(), data)

    def ping(self, id: int) -> bytes:
        return b'{"type":"ping"}'

    def reply(self, payload: bytes) -> Reply:
        try:
            frame = json.loads(payload.split(b"\n", 1)[0])
        except ValueError:
            return Reply("other")
        kind = frame.get("type")
        if kind == "welcome":
            return Reply("ready")
        if kind in ("ack", "pong"):
            return Reply(kind, frame.get("id"))
        if kind == "error":
            return Reply("error", frame.get("id"), f"{frame.get('code')} {frame.get('message')}")
        if kind == "ping":
            return Reply("ping")
        return Reply("other")


class MiniAdapter(HubbubAdapter):
    """The v1 subset spoken by the hand-written peers (``json.dumps`` spacing)."""

    name = "mini"
    marker = b'"type": "message"'
    ping_marker = None
    needs_ready = False

    def __init__(self) -> None:
        super().__init__(namespace="")

    def path(self, base: str, token: str | None) -> str:
        return base

    def ping(self, id: int) -> bytes:
        return b'{"type":"ping","id":%d}' % id


class SocketIOAdapter(Adapter):
    """python-socketio server: events ``subscribe``/``publish``/``ping``, emits ``message``."""

    name = "socketio"
    marker = b'42["message"'
    ping_marker = b"\x81\x012"  # an unmasked text frame whose payload is "2"
    pong_reply = b"3"
    hello = (b"40",)
    needs_ready = True

    def path(self, base: str, token: str | None) -> str:
        return "/socket.io/?EIO=4&transport=websocket"

    def subscribe(self, channel: str, id: int) -> bytes:
        return b'42%d["subscribe",%s]' % (id, json.dumps(channel).encode())

    def publish(self, channel: str, data: bytes) -> bytes:
        return b'42["publish",{"channel":%s,"data":%s}]' % (json.dumps(channel).encode(), data)

    def ping(self, id: int) -> bytes:
        return b'42%d["echo"]' % id

    def reply(self, payload: bytes) -> Reply:
        if payload.startswith(b"40"):
            return Reply("ready")
        if payload.startswith(b"43"):
            digits = payload[2:].split(b"[", 1)[0]
            return Reply("ack", int(digits) if digits.isdigit() else None)
        if payload.startswith(b"44"):
            return Reply("error", None, payload.decode(errors="replace"))
        if payload == b"2":
            return Reply("ping")
        return Reply("other")


def adapter_for(name: str) -> Adapter:
    if name == "hubbub":
        return HubbubAdapter()
    if name == "mini":
        return MiniAdapter()
    if name == "socketio":
        return SocketIOAdapter()
    raise ValueError(f"unknown protocol {name!r}: one of {', '.join(ADAPTERS)}")
