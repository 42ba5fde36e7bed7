"""Key names and the wire format of the Redis engine.

**Keys.** Every key starts with the engine's ``prefix`` (several hubs can share
one Redis) and carries the channel as a hash tag, ``{channel}``, so that all
keys of one channel live in one Redis Cluster slot and a Lua script may touch
them together. Channel names cannot contain braces (see ``core.channels``), so
the tag is always exactly the channel name::

    <prefix>:{<channel>}:meta       hash: e = epoch, o = top offset
    <prefix>:{<channel>}:history    stream: id "<offset>-0", p = publication, x = expiry
    <prefix>:{<channel>}:presence   hash: client id -> ClientInfo JSON
    <prefix>:{<channel>}:expiry     sorted set: client id -> presence expiry (ms)
    <prefix>:{<channel>}:idem:<key> string "<offset>:<epoch>" of an idempotent publish
    <prefix>:{<channel>}            pub/sub channel of the channel's events
    <prefix>:control                pub/sub channel every node listens on

**Envelopes.** Pub/sub payloads are JSON arrays whose first element says what
they carry, decoded by one msgspec decoder. A publication's envelope is built
by ``publish.lua`` around JSON that the engine encoded once
(``["p", epoch, publication]``), because only the script knows the offset;
the same publication JSON is what history keeps, so history and live delivery
decode with the same code. ``data`` stays ``msgspec.Raw`` throughout: hubbub
never re-encodes a payload.
"""

from __future__ import annotations

from typing import Final, TypeAlias

import msgspec
from msgspec import Raw, Struct

from hubbub.core.protocol import ClientInfo, Publication
from hubbub.engines.base import NodeControl

__all__ = [
    "Control",
    "Envelope",
    "Join",
    "Keys",
    "Leave",
    "PublicationEnvelope",
    "control",
    "decode_envelope",
    "decode_info",
    "decode_publication",
    "decode_user",
    "encode_info",
    "join",
    "leave",
    "publication_tail",
]


class Keys:
    """Names of the Redis keys and pub/sub channels of one ``prefix``."""

    __slots__ = ("control", "prefix")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.control = f"{prefix}:control"

    def meta(self, channel: str) -> str:
        return f"{self.prefix}:{{{channel}}}:meta"

    def history(self, channel: str) -> str:
        return f"{self.prefix}:{{{channel}}}:history"

    def presence(self, channel: str) -> str:
        return f"{self.prefix}:{{{channel}}}:presence"

    def expiry(self, channel: str) -> str:
        return f"{self.prefix}:{{{channel}}}:expiry"

    def idempotency(self, channel: str, key: str) -> str:
        return f"{self.prefix}:{{{channel}}}:idem:{key}"

    def pubsub(self, channel: str) -> str:
        return f"{self.prefix}:{{{channel}}}"


class PublicationEnvelope(Struct, array_like=True, tag="p", frozen=True):
    epoch: str
    publication: Publication


class Join(Struct, array_like=True, tag="j", frozen=True):
    info: ClientInfo


class Leave(Struct, array_like=True, tag="l", frozen=True):
    info: ClientInfo


class Control(Struct, array_like=True, tag="c", frozen=True):
    """A node control order on the control channel: ``["c", [action, user, channel]]``."""

    command: NodeControl


Envelope: TypeAlias = PublicationEnvelope | Join | Leave | Control


class _Body(Struct, frozen=True, omit_defaults=True):
    """A publication without its offset; field names match :class:`Publication`."""

    data: Raw
    info: ClientInfo | None = None


class _User(Struct):
    """Only the ``user`` of a ClientInfo: presence stats skip everything else."""

    user: str


_encoder: Final = msgspec.json.Encoder()
_envelope_decoder: Final = msgspec.json.Decoder(Envelope)
_publication_decoder: Final = msgspec.json.Decoder(Publication)
_info_decoder: Final = msgspec.json.Decoder(ClientInfo)
_user_decoder: Final = msgspec.json.Decoder(_User)

encode_info = _encoder.encode
decode_envelope = _envelope_decoder.decode


def join(info: ClientInfo) -> bytes:
    return _encoder.encode(Join(info))


def leave(info: ClientInfo) -> bytes:
    return _encoder.encode(Leave(info))


def control(command: NodeControl) -> bytes:
    return _encoder.encode(Control(command))


decode_publication = _publication_decoder.decode
decode_info = _info_decoder.decode


def decode_user(value: bytes) -> str:
    return _user_decoder.decode(value).user


def publication_tail(data: Raw, info: ClientInfo | None) -> bytes:
    """The publication JSON after ``{"offset":N,`` — ``publish.lua`` adds the
    offset in front, so the payload is encoded exactly once, here."""
    return _encoder.encode(_Body(data=data, info=info))[1:]
