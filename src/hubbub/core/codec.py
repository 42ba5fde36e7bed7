"""The codec seam: how one wire protocol maps onto the hub's single core.

The hub speaks two client protocols over the same core: hubbub's protocol v1
(:mod:`hubbub.core.protocol`) and Centrifugo's JSON client protocol
(:mod:`hubbub.core.centrifugo`). Neither the session state machine nor the
command handlers know which one a connection uses: a :class:`Codec` turns one
incoming WebSocket message into commands, and the core's results back into
bytes. The internal representation is protocol v1's structs — its commands,
acks and server frames — plus the few commands v1 does not have
(:class:`Connect`, :class:`Refresh`, :class:`SubRefresh`).

A publication is encoded once per codec in use, not once per subscriber:
fan-out builds one v1 frame and keeps the v1 push struct on it, and a
connection of another codec asks the frame for its variant, which is encoded
on first use and cached on the frame (see :class:`hubbub.frames.Frame`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Protocol, TypeAlias

from hubbub.core import protocol
from hubbub.core.history import HistoryResult
from hubbub.core.protocol import (
    ChannelName,
    CommandBase,
    DecodeError,
    Publication,
    StreamPosition,
)
from hubbub.errors import ErrorKind


class Connect(CommandBase, tag="connect"):
    """Authenticate (Centrifugo ``connect``). ``token`` ``None``: use what the
    handshake established (query, header, cookie, authenticator) or anonymous."""

    token: str | None = None
    subs: dict[str, StreamPosition] | None = None
    """Server-side subscriptions the client wants recovered, from these positions
    (the personal channel is the only one hubbub makes)."""


class Refresh(CommandBase, tag="refresh"):
    """A new connection token for the same user (Centrifugo ``refresh``)."""

    token: str


class SubRefresh(CommandBase, tag="sub_refresh"):
    """A new subscription token for a subscribed channel (Centrifugo ``sub_refresh``)."""

    channel: ChannelName
    token: str


class Subscribe(protocol.Subscribe, tag="subscribe"):
    """A subscribe that may ask to fail rather than not recover (Centrifugo's
    ``flag`` bit 2, sent by the SDKs when the app gives ``getState``)."""

    reject_unrecovered: bool = False
    """With ``since``: answer "unrecoverable position" instead of ``recovered: false``."""


@dataclass(frozen=True, slots=True)
class ServerSub:
    """A subscription the server made for the client (its personal channel), as
    the welcome reports it (Centrifugo's connect reply ``subs``)."""

    channel: str
    recoverable: bool = False
    """Positioned: the channel keeps history, ``offset``/``epoch`` are its top."""
    offset: int = 0
    epoch: str = ""
    recovered: bool | None = None
    """``None``: the client did not ask to recover it."""
    publications: list[Publication] = field(default_factory=list)
    """The missed publications, when ``recovered``."""

    @classmethod
    def synced(cls, channel: str, result: HistoryResult, recovered: bool | None) -> ServerSub:
        return cls(channel, True, result.offset, result.epoch, recovered, result.publications)


Command: TypeAlias = protocol.Command | Connect | Refresh | SubRefresh
Decoded: TypeAlias = Command | DecodeError
"""One item of an incoming message: a command, or why a part of it is not one."""

Push: TypeAlias = protocol.Message | protocol.Join | protocol.Leave | protocol.ServerUnsubscribe
"""What fan-out delivers to subscribers of a channel (an unsubscribe: to one user's)."""

AUTH_COMMANDS: Final = (protocol.Auth, Connect)


class Codec(Protocol):
    """One wire protocol. Codecs are pure and stateless: one instance per protocol."""

    name: str
    explicit_connect: bool
    """The client always sends a connect command first and its reply is the
    welcome, even when the handshake already authenticated it (Centrifugo);
    otherwise an authenticated handshake is welcomed at once (v1)."""
    batch: bool
    """Several server messages may always share one WebSocket frame (``\\n``-separated)."""
    positioned_welcome: bool
    """The welcome tells the personal channel's stream position (where history is
    kept) and recovers it; it costs a history read per connection."""
    ping_frame: str
    pong_frame: str

    def decode(self, message: str | bytes) -> list[Decoded]:
        """The commands of one WebSocket message, in order."""
        ...

    def encode_reply(self, command: Command, reply: protocol.ServerFrame) -> str | None:
        """The answer to ``command`` (which carried an id); ``reply`` is its v1 ack."""
        ...

    def encode_subscribed(
        self, command: protocol.Subscribe, ack: protocol.SubscribeAck, *, recoverable: bool
    ) -> str:
        """The answer to a subscribe; ``recoverable``: the channel keeps history."""
        ...

    def encode_welcome(
        self, welcome: protocol.Welcome, *, reply_to: int | None, subs: list[ServerSub]
    ) -> str:
        """The first frame of an authenticated connection; ``subs`` are the
        subscriptions the server made for it (its personal channel)."""
        ...

    def encode_error(
        self, code: int, message: str, id: int | None, kind: ErrorKind | None = None
    ) -> str | None:
        """An error answer; ``None`` when the protocol cannot carry it (no id)."""
        ...

    def encode_push(self, push: Push) -> bytes:
        """A publication, join, leave or server unsubscribe for a channel's subscribers."""
        ...

    def close_code(self, code: int, reason: str) -> tuple[int, str]:
        """The WebSocket close code and reason for hubbub's close ``code``."""
        ...


class V1Codec:
    """Protocol v1: one JSON object per message, routed by ``type``."""

    name = "v1"
    explicit_connect = False
    batch = False
    positioned_welcome = False
    ping_frame = protocol.PING_FRAME
    pong_frame = protocol.PONG_FRAME

    def decode(self, message: str | bytes) -> list[Decoded]:
        try:
            return [protocol.decode_command(message)]
        except DecodeError as exc:
            return [exc]

    def encode_reply(self, command: Command, reply: protocol.ServerFrame) -> str | None:
        return protocol.encode(reply)

    def encode_subscribed(
        self, command: protocol.Subscribe, ack: protocol.SubscribeAck, *, recoverable: bool
    ) -> str:
        return protocol.encode(ack)

    def encode_welcome(
        self, welcome: protocol.Welcome, *, reply_to: int | None, subs: list[ServerSub]
    ) -> str:
        return protocol.encode(welcome)

    def encode_error(
        self, code: int, message: str, id: int | None, kind: ErrorKind | None = None
    ) -> str | None:
        return protocol.encode(protocol.Error(code=int(code), message=message, id=id))

    def encode_push(self, push: Push) -> bytes:
        return protocol.encode_json(push)

    def close_code(self, code: int, reason: str) -> tuple[int, str]:
        return code, reason


V1: Final = V1Codec()
