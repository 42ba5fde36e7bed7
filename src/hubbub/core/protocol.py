"""Protocol v1: every frame as a msgspec struct, decoding and encoding.

Client commands are one tagged union on the ``type`` field, so a single
``msgspec.json.Decoder`` validates a frame completely (types, ranges, required
fields) and its error names the offending field. Publication ``data`` stays
``msgspec.Raw``: the server checks that it is JSON but never rebuilds it, so a
publication is encoded exactly once, however many subscribers it reaches.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, TypeAlias

import msgspec
from msgspec import UNSET, Meta, Raw, Struct, UnsetType

PROTOCOL_VERSION: Final = "1"

#: Upper bound on ``limit`` in ``history``; larger values are a client bug.
MAX_HISTORY_LIMIT: Final = 10_000

NULL: Final = Raw(b"null")

Offset = Annotated[int, Meta(ge=0)]
CommandId = Annotated[int, Meta(ge=0, le=2**53)]
# Names are checked against the channel grammar by core.channels, which gives a
# clearer message; the bound here only stops absurd strings early.
ChannelName = Annotated[str, Meta(max_length=1024)]


class StreamPosition(Struct, frozen=True, forbid_unknown_fields=True):
    """A place in a channel's stream: the last offset seen and its epoch."""

    offset: Offset
    epoch: str


class ClientInfo(Struct, frozen=True, omit_defaults=True):
    """Who published or joined: shown in ``message.info`` and presence.

    ``info`` is the token's ``info`` claim, ``UNSET`` (left out) when there is
    none; msgspec cannot decode ``Raw`` in a union with ``None``."""

    client: str
    user: str
    info: Raw | UnsetType = UNSET


class Publication(Struct, frozen=True, omit_defaults=True):
    """One entry of a channel's stream, as engines store and deliver it."""

    offset: int
    data: Raw
    info: ClientInfo | None = None


# --------------------------------------------------------------------------- client


class _Command(Struct, tag_field="type", kw_only=True, omit_defaults=True):
    id: CommandId | None = None


CommandBase = _Command
"""The base of every command struct, for commands other codecs add (:mod:`hubbub.core.codec`)."""


class Auth(_Command, tag="auth"):
    token: str


class Subscribe(_Command, tag="subscribe"):
    channel: ChannelName
    since: StreamPosition | None = None
    token: str | None = None


class Unsubscribe(_Command, tag="unsubscribe"):
    channel: ChannelName


class Publish(_Command, tag="publish"):
    channel: ChannelName
    data: Raw


class History(_Command, tag="history"):
    channel: ChannelName
    limit: Annotated[int, Meta(ge=0, le=MAX_HISTORY_LIMIT)] | None = None
    since: StreamPosition | None = None
    reverse: bool = False


class Presence(_Command, tag="presence"):
    channel: ChannelName


class PresenceStats(_Command, tag="presence_stats"):
    channel: ChannelName


class Rpc(_Command, tag="rpc"):
    method: Annotated[str, Meta(min_length=1, max_length=255)]
    data: Raw = NULL


class Ping(_Command, tag="ping"):
    pass


class Pong(_Command, tag="pong"):
    pass


Command: TypeAlias = (
    Auth
    | Subscribe
    | Unsubscribe
    | Publish
    | History
    | Presence
    | PresenceStats
    | Rpc
    | Ping
    | Pong
)


class _IdOnly(Struct):
    id: CommandId | None = None


class DecodeError(Exception):
    """A frame is not a valid command; ``id`` is set when the frame carried one."""

    def __init__(self, message: str, id: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.id = id


_command_decoder: Final = msgspec.json.Decoder(Command)
_id_decoder: Final = msgspec.json.Decoder(_IdOnly)


def decode_command(frame: str | bytes) -> Command:
    """Parse one client frame into a typed command.

    Raises :class:`DecodeError` with a message that names the problem (and the
    field, when one is at fault) and the command ``id`` when it can be read.
    """
    try:
        command: Command = _command_decoder.decode(frame)
    except msgspec.ValidationError as exc:
        raise DecodeError(_explain(str(exc)), _peek_id(frame)) from None
    except msgspec.DecodeError as exc:
        raise DecodeError(f"frame is not valid JSON: {exc}", None) from None
    return command


def _peek_id(frame: str | bytes) -> int | None:
    try:
        return _id_decoder.decode(frame).id
    except msgspec.DecodeError:
        return None


def _explain(message: str) -> str:
    if message.startswith("Expected `object`, got"):
        return "frame must be a JSON object: " + message
    if message.endswith("- at `$.type`") and message.startswith("Invalid value"):
        return "unknown command type: " + message
    if message.startswith("Object missing required field"):
        return "missing required field" + message.removeprefix("Object missing required field")
    return message


# --------------------------------------------------------------------------- server


class _Frame(Struct, tag_field="type", omit_defaults=True):
    pass


class Welcome(_Frame, tag="welcome", omit_defaults=False):
    """``version`` is always sent, so it must not be omitted as a default."""

    client: str
    user: str
    ping_interval: float
    version: str = PROTOCOL_VERSION


class Ack(_Frame, tag="ack"):
    """A reply with no result fields (unsubscribe, rpc without data...)."""

    id: int


class PositionAck(_Frame, tag="ack"):
    """Reply to ``publish``; also ``subscribe`` without ``since``."""

    id: int
    offset: int
    epoch: str


class SubscribeAck(_Frame, tag="ack"):
    """Reply to ``subscribe``. ``recovered`` is only present when ``since`` was given."""

    id: int
    offset: int
    epoch: str
    recovered: bool | None = None
    publications: list[Publication] | None = None


class HistoryAck(_Frame, tag="ack"):
    id: int
    publications: list[Publication]
    offset: int
    epoch: str


class PresenceAck(_Frame, tag="ack"):
    id: int
    clients: dict[str, ClientInfo]


class PresenceStatsAck(_Frame, tag="ack"):
    id: int
    num_clients: int
    num_users: int


class RpcAck(_Frame, tag="ack", omit_defaults=False):
    """``data`` is always sent, ``null`` included."""

    id: int
    data: Raw = NULL


class Error(_Frame, tag="error"):
    code: int
    message: str
    id: int | None = None


class Message(_Frame, tag="message"):
    channel: str
    data: Raw
    offset: int
    epoch: str
    info: ClientInfo | None = None


class Join(_Frame, tag="join"):
    channel: str
    info: ClientInfo


class Leave(_Frame, tag="leave"):
    channel: str
    info: ClientInfo


class ServerUnsubscribe(_Frame, tag="unsubscribe"):
    """The server ended this connection's subscription to ``channel`` (the server
    API's unsubscribe). The client must not resubscribe on its own."""

    channel: str
    reason: str


class ServerPing(_Frame, tag="ping"):
    pass


class ServerPong(_Frame, tag="pong"):
    pass


ServerFrame: TypeAlias = (
    Welcome
    | Ack
    | PositionAck
    | SubscribeAck
    | HistoryAck
    | PresenceAck
    | PresenceStatsAck
    | RpcAck
    | Error
    | Message
    | Join
    | Leave
    | ServerUnsubscribe
    | ServerPing
    | ServerPong
)

_encoder: Final = msgspec.json.Encoder()
encode_json = _encoder.encode


def encode(frame: ServerFrame) -> str:
    """Encode a server frame as the text of one WebSocket message."""
    return _encoder.encode(frame).decode()


def encode_message(channel: str, epoch: str, publication: Publication) -> str:
    """Encode a publication for delivery: done once per publication, not per subscriber."""
    return encode(
        Message(
            channel=channel,
            data=publication.data,
            offset=publication.offset,
            epoch=epoch,
            info=publication.info,
        )
    )


PING_FRAME: Final = encode(ServerPing())
PONG_FRAME: Final = encode(ServerPong())


def raw_json(value: Any) -> Raw:
    """Wrap any JSON-encodable Python value as ``Raw`` (for server-side publishes)."""
    return Raw(_encoder.encode(value))


def parse_raw(raw: Raw) -> Any:
    """Decode ``Raw`` JSON into Python values (for rpc handlers and tests)."""
    return msgspec.json.decode(raw)
