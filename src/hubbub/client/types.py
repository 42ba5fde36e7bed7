"""What the client hands to the app (messages, recoveries, results), its errors,
and how it reads server frames."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

import msgspec

from hubbub.core.protocol import NULL, ClientInfo, Publication, StreamPosition

State = Literal["disconnected", "connecting", "connected", "reconnecting", "closed"]
T = TypeVar("T")
Callback = Callable[[T], Awaitable[None] | None]
TokenGetter = Callable[[], Awaitable[str]]


class ClientError(Exception):
    """Base class of the client's errors."""


class ServerError(ClientError):
    """The hub answered a command with an ``error`` frame."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Disconnected(ClientError):
    """The connection ended before the reply came, or the client is closed."""


class Unauthorized(ClientError):
    """The hub refused the token (close 4001) and no new token could be had."""


class Forbidden(ClientError):
    """The hub refused the connection for good (close 4003: origin not allowed,
    connection limit, or the server disconnected this user); reconnecting would
    only be refused again."""


class Unsubscribed(ClientError):
    """The server ended the subscription (the server API's unsubscribe). The
    client does not resubscribe; subscribe again if the app wants to."""

    def __init__(self, channel: str, reason: str) -> None:
        super().__init__(f"unsubscribed from {channel!r} by the server: {reason}")
        self.channel = channel
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Message:
    """A publication delivered on a subscribed channel."""

    channel: str
    data: Any
    offset: int
    epoch: str
    info: ClientInfo | None = None
    """The publisher, when a client published it (``None`` for server publishes)."""

    @property
    def position(self) -> StreamPosition:
        return StreamPosition(offset=self.offset, epoch=self.epoch)


@dataclass(frozen=True, slots=True)
class Recovery:
    """What a resubscribe after a reconnect recovered."""

    recovered: bool
    """``False``: publications may have been missed; reload the app's state."""
    missed: int | None
    """How many missed publications were delivered (``None`` when not recovered)."""
    offset: int
    epoch: str


@dataclass(frozen=True, slots=True)
class HistoryResult:
    publications: list[Message]
    offset: int
    epoch: str


@dataclass(frozen=True, slots=True)
class PresenceStats:
    num_clients: int
    num_users: int


class Incoming(msgspec.Struct):
    """Any server frame; fields that a frame type does not carry stay ``None``."""

    type: str
    id: int | None = None
    code: int | None = None
    message: str | None = None
    client: str | None = None
    user: str | None = None
    ping_interval: float | None = None
    channel: str | None = None
    data: msgspec.Raw = NULL
    offset: int | None = None
    epoch: str | None = None
    info: ClientInfo | None = None
    recovered: bool | None = None
    publications: list[Publication] | None = None
    clients: dict[str, ClientInfo] | None = None
    num_clients: int | None = None
    num_users: int | None = None
    reason: str | None = None


decoder: Final = msgspec.json.Decoder(Incoming)
encode: Final = msgspec.json.Encoder().encode


class End:
    """Queued to end a subscription's iteration (optionally with an error)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
