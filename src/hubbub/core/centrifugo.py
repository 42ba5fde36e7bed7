"""Centrifugo's JSON client protocol (v2) as a codec over hubbub's core.

The real Centrifugo SDKs (``centrifuge`` on npm, ``centrifuge-python`` on PyPI,
Swift, Dart, Go, Java) connect to ``/connection/websocket`` unmodified. This
module only translates; what each command does is the same code as protocol v1
(:mod:`hubbub.commands`), so the channel, auth, history and presence rules and
the offsets a client sees are the same in both protocols.

Wire shapes (field names follow ``centrifugal/protocol``'s ``client.proto``):

* a client message holds one or more commands separated by ``\\n``:
  ``{"id":1,"connect":{"token":"…"}}``, ``{"id":2,"subscribe":{"channel":"…",
  "recover":true,"offset":5,"epoch":"…"}}``; ``{}`` is the answer to a ping;
* replies echo the id: ``{"id":2,"subscribe":{…}}`` or
  ``{"id":2,"error":{"code":103,"message":"…"}}``;
* pushes: ``{"push":{"channel":"…","pub":{"data":…,"offset":6,"info":{…}}}}``,
  ``join`` and ``leave`` with ``{"info":{"client","user","conn_info"}}``, and
  ``unsubscribe`` with ``{"code":2000,"reason":"server unsubscribe"}`` when the
  server API ended the subscription;
* disconnects are WebSocket close codes (3000-4999), as Centrifugo sends them on
  a bidirectional WebSocket; no ``disconnect`` push precedes the close (the SDKs
  read the close frame; the push is for unidirectional transports);
* the server pings with ``{}`` every ``ping_interval`` and the connect reply says
  ``"pong":true``, so the SDK answers and hubbub's heartbeat timeout applies.

``send`` (an asynchronous message with no reply) goes to the rpc handler
registered for :data:`SEND_METHOD`; its result and errors are dropped, as the
protocol has no way to answer a command without an id.
"""

from __future__ import annotations

import math
from typing import Annotated, Final

import msgspec
from msgspec import UNSET, Meta, Raw, Struct, UnsetType

from hubbub.core import protocol
from hubbub.core.codec import (
    Command,
    Connect,
    Decoded,
    Push,
    Refresh,
    ServerSub,
    SubRefresh,
    Subscribe,
)
from hubbub.core.protocol import (
    MAX_HISTORY_LIMIT,
    NULL,
    ChannelName,
    ClientInfo,
    DecodeError,
    Publication,
    StreamPosition,
)
from hubbub.errors import CloseCode, ErrorCode, ErrorKind

#: The rpc method that receives Centrifugo ``send`` messages: ``@hub.rpc("$send")``.
SEND_METHOD: Final = "$send"
#: Subscribe ``flag`` bit: fail with 112 rather than answer ``recovered: false``.
FLAG_REJECT_UNRECOVERED: Final = 2

# ----------------------------------------------------------------------- decoding


class _Connect(Struct, kw_only=True):
    token: str = ""
    subs: dict[str, _SubscribeRecovery] = {}


class _SubscribeRecovery(Struct, kw_only=True):
    recover: bool = False
    offset: Annotated[int, Meta(ge=0)] = 0
    epoch: str = ""


class _Subscribe(Struct, kw_only=True):
    channel: ChannelName
    token: str = ""
    recover: bool = False
    offset: Annotated[int, Meta(ge=0)] = 0
    epoch: str = ""
    flag: int = 0
    """Bit 1: channel compaction (ignored, so pushes keep the name); bit 2: reject
    an unrecoverable position with error 112 instead of ``recovered: false``."""


class _Channel(Struct, kw_only=True):
    channel: ChannelName


class _Publish(Struct, kw_only=True):
    channel: ChannelName
    data: Raw = NULL


class HistoryRequest(Struct, kw_only=True):
    """``history``, as the client protocol and the server API both take it."""

    channel: ChannelName
    limit: Annotated[int, Meta(ge=-1, le=MAX_HISTORY_LIMIT)] = 0
    since: StreamPosition | None = None
    reverse: bool = False


class _Rpc(Struct, kw_only=True):
    method: Annotated[str, Meta(max_length=255)] = ""
    data: Raw = NULL


class _Send(Struct, kw_only=True):
    data: Raw = NULL


class _Refresh(Struct, kw_only=True):
    token: str


class _SubRefresh(Struct, kw_only=True):
    channel: ChannelName
    token: str


class _Command(Struct, kw_only=True):
    """A command: an id and exactly one method field; unknown fields (newer
    protocol features such as ``flag``, ``delta`` or ``tf``) are ignored."""

    id: Annotated[int, Meta(ge=0, le=2**53)] = 0
    connect: _Connect | None = None
    subscribe: _Subscribe | None = None
    unsubscribe: _Channel | None = None
    publish: _Publish | None = None
    presence: _Channel | None = None
    presence_stats: _Channel | None = None
    history: HistoryRequest | None = None
    rpc: _Rpc | None = None
    send: _Send | None = None
    refresh: _Refresh | None = None
    sub_refresh: _SubRefresh | None = None


class _IdOnly(Struct):
    id: int = 0


_command_decoder: Final = msgspec.json.Decoder(_Command)
_id_decoder: Final = msgspec.json.Decoder(_IdOnly)


def _position(recover: bool, offset: int, epoch: str) -> StreamPosition | None:
    return StreamPosition(offset=offset, epoch=epoch) if recover else None


def _to_command(cmd: _Command) -> Command:
    """The core command for one decoded Centrifugo command."""
    id = cmd.id or None  # 0: no reply expected
    if cmd.connect is not None:
        c = cmd.connect
        subs = {ch: StreamPosition(s.offset, s.epoch) for ch, s in c.subs.items() if s.recover}
        return Connect(id=id, token=c.token or None, subs=subs or None)
    if cmd.subscribe is not None:
        s = cmd.subscribe
        return Subscribe(
            id=id,
            channel=s.channel,
            since=_position(s.recover, s.offset, s.epoch),
            token=s.token or None,
            reject_unrecovered=bool(s.flag & FLAG_REJECT_UNRECOVERED),
        )
    if cmd.unsubscribe is not None:
        return protocol.Unsubscribe(id=id, channel=cmd.unsubscribe.channel)
    if cmd.publish is not None:
        return protocol.Publish(id=id, channel=cmd.publish.channel, data=cmd.publish.data)
    if cmd.presence is not None:
        return protocol.Presence(id=id, channel=cmd.presence.channel)
    if cmd.presence_stats is not None:
        return protocol.PresenceStats(id=id, channel=cmd.presence_stats.channel)
    if cmd.history is not None:
        h = cmd.history
        # Centrifugo: limit 0 asks for the stream position only, -1 for everything kept.
        limit = None if h.limit < 0 else h.limit
        return protocol.History(
            id=id, channel=h.channel, limit=limit, since=h.since, reverse=h.reverse
        )
    if cmd.rpc is not None:
        return protocol.Rpc(id=id, method=cmd.rpc.method, data=cmd.rpc.data)
    if cmd.send is not None:
        return protocol.Rpc(id=None, method=SEND_METHOD, data=cmd.send.data)
    if cmd.refresh is not None:
        return Refresh(id=id, token=cmd.refresh.token)
    if cmd.sub_refresh is not None:
        return SubRefresh(id=id, channel=cmd.sub_refresh.channel, token=cmd.sub_refresh.token)
    if id is None:
        return protocol.Pong()  # ``{}``: the answer to a server ping
    raise DecodeError("command has no known method", id)


def _decode_one(line: bytes) -> Decoded:
    try:
        return _to_command(_command_decoder.decode(line))
    except msgspec.ValidationError as exc:
        return DecodeError(f"invalid command: {exc}", _peek_id(line))
    except msgspec.DecodeError as exc:
        return DecodeError(f"command is not valid JSON: {exc}", None)
    except DecodeError as exc:
        return exc


def _peek_id(line: bytes) -> int | None:
    try:
        return _id_decoder.decode(line).id or None
    except msgspec.DecodeError:
        return None


# ----------------------------------------------------------------------- encoding


class CfClientInfo(Struct, omit_defaults=True):
    user: str
    client: str
    conn_info: Raw | UnsetType = UNSET


class CfPublication(Struct, omit_defaults=True):
    data: Raw
    offset: int = 0
    info: CfClientInfo | None = None


class _PubPush(Struct):
    channel: str
    pub: CfPublication


class _InfoBody(Struct):
    info: CfClientInfo


class _JoinPush(Struct):
    channel: str
    join: _InfoBody


class _LeavePush(Struct):
    channel: str
    leave: _InfoBody


class _UnsubscribeBody(Struct):
    code: int
    reason: str


class _UnsubscribePush(Struct):
    channel: str
    unsubscribe: _UnsubscribeBody


class _Push(Struct):
    push: _PubPush | _JoinPush | _LeavePush | _UnsubscribePush


class _SubscribeResult(Struct, omit_defaults=True):
    recoverable: bool = False
    epoch: str = ""
    offset: int = 0
    was_recovering: bool = False
    recovered: bool = False
    positioned: bool = False
    publications: list[CfPublication] = []


class _ServerSub(Struct, omit_defaults=True):
    """A server-side subscription in the connect reply (the personal channel):
    Centrifugo's ``SubscribeResult`` fields that apply."""

    recoverable: bool = False
    epoch: str = ""
    offset: int = 0
    was_recovering: bool = False
    recovered: bool = False
    publications: list[CfPublication] = []


class _ConnectResult(Struct, omit_defaults=True):
    client: str
    version: str
    ping: int
    pong: bool
    subs: dict[str, _ServerSub] = {}


class _HistoryResult(Struct, omit_defaults=True):
    publications: list[CfPublication] = []
    epoch: str = ""
    offset: int = 0


class _PresenceResult(Struct):
    presence: dict[str, CfClientInfo]


class _PresenceStatsResult(Struct):
    num_clients: int
    num_users: int


class _RpcResult(Struct, omit_defaults=True):
    data: Raw | UnsetType = UNSET


class _Empty(Struct):
    pass


class _Error(Struct, omit_defaults=True):
    code: int
    message: str
    temporary: bool = False


class _ErrorReply(Struct):
    id: int
    error: _Error


_encoder: Final = msgspec.json.Encoder()
_EMPTY: Final = _Empty()


def _reply(id: int, method: str, result: Struct) -> str:
    # {"id":N,"<method>":{…}}: the method is a key, so it is spliced rather than a field.
    return f'{{"id":{id},"{method}":{_encoder.encode(result).decode()}}}'


def client_info(info: ClientInfo) -> CfClientInfo:
    return CfClientInfo(user=info.user, client=info.client, conn_info=info.info)


def publication(pub: Publication) -> CfPublication:
    info = None if pub.info is None else client_info(pub.info)
    return CfPublication(data=pub.data, offset=pub.offset, info=info)


#: v1 error codes -> Centrifugo client error codes (``docs/server/codes``).
ERROR_CODES: Final[dict[int, int]] = {
    ErrorCode.BAD_REQUEST: 107,
    ErrorCode.PERMISSION_DENIED: 103,
    ErrorCode.UNKNOWN_NAMESPACE: 102,
    ErrorCode.ALREADY_SUBSCRIBED: 105,
    ErrorCode.PAYLOAD_TOO_LARGE: 106,
    ErrorCode.RATE_LIMITED: 111,
    ErrorCode.INTERNAL: 100,
    ErrorCode.ENGINE_UNAVAILABLE: 100,
}
KIND_CODES: Final[dict[ErrorKind, int]] = {
    ErrorKind.METHOD_NOT_FOUND: 104,
    ErrorKind.NOT_AVAILABLE: 108,
    ErrorKind.TOKEN_EXPIRED: 109,
    ErrorKind.UNRECOVERABLE_POSITION: 112,
}
UNRECOVERABLE_POSITION: Final = 112
#: Unsubscribe push code of a server-side unsubscribe: below 2500, so the SDKs
#: end the subscription instead of resubscribing.
UNSUBSCRIBE_SERVER: Final = 2000
#: Errors a client should retry (the SDKs resubscribe / reconnect on these).
TEMPORARY: Final = frozenset({100, 111})

#: hubbub close codes -> Centrifugo disconnect codes. 3000-3499 reconnect, 3500-3999
#: are terminal (the SDKs stop); codes below 3000 are transport codes, kept.
CLOSE_CODES: Final[dict[int, tuple[int, str]]] = {
    CloseCode.SERVER_RESTART: (3001, "shutdown"),
    CloseCode.TRY_AGAIN_LATER: (3004, "internal server error"),
    CloseCode.SLOW_CONSUMER: (3008, "slow"),
    CloseCode.HEARTBEAT_TIMEOUT: (3012, "no pong"),
    CloseCode.RATE_LIMIT_ABUSE: (3013, "too many requests"),
    CloseCode.UNAUTHORIZED: (3500, "invalid token"),
    CloseCode.FORBIDDEN: (3503, "force disconnect"),
}


def _server_sub(sub: ServerSub) -> _ServerSub:
    if not sub.recoverable:
        return _ServerSub()
    return _ServerSub(
        recoverable=True,
        epoch=sub.epoch,
        offset=sub.offset,
        was_recovering=sub.recovered is not None,
        recovered=bool(sub.recovered),
        publications=[publication(p) for p in sub.publications] if sub.recovered else [],
    )


class CentrifugoCodec:
    """Centrifugo's client protocol v2, JSON format."""

    name = "centrifugo"
    explicit_connect = True
    batch = True
    positioned_welcome = True
    ping_frame = "{}"
    pong_frame = "{}"

    def __init__(self, version: str = "hubbub") -> None:
        self.version = version

    def decode(self, message: str | bytes) -> list[Decoded]:
        data = message.encode() if isinstance(message, str) else message
        return [_decode_one(line) for line in data.split(b"\n") if line.strip()]

    def encode_reply(self, command: Command, reply: protocol.ServerFrame) -> str | None:
        id = command.id
        if id is None:
            return None
        result: Struct
        if isinstance(reply, protocol.HistoryAck):
            since = command.since if isinstance(command, protocol.History) else None
            if since is not None and since.epoch != reply.epoch:
                return self.encode_error(
                    UNRECOVERABLE_POSITION, "unrecoverable position: another epoch", id
                )
            result = _HistoryResult(
                publications=[publication(p) for p in reply.publications],
                epoch=reply.epoch,
                offset=reply.offset,
            )
        elif isinstance(reply, protocol.PresenceAck):
            result = _PresenceResult({c: client_info(i) for c, i in reply.clients.items()})
        elif isinstance(reply, protocol.PresenceStatsAck):
            result = _PresenceStatsResult(reply.num_clients, reply.num_users)
        elif isinstance(reply, protocol.RpcAck):
            result = _RpcResult(data=reply.data)
        else:  # publish, unsubscribe, refresh, sub_refresh: an empty result
            result = _EMPTY
        return _reply(id, str(type(command).__struct_config__.tag), result)

    def encode_subscribed(
        self, command: protocol.Subscribe, ack: protocol.SubscribeAck, *, recoverable: bool
    ) -> str:
        assert command.id is not None, "subscribe replies are only sent to commands with an id"
        return _reply(
            command.id,
            "subscribe",
            _SubscribeResult(
                recoverable=recoverable,
                epoch=ack.epoch,
                offset=ack.offset,
                was_recovering=ack.recovered is not None,
                recovered=bool(ack.recovered),
                publications=[publication(p) for p in ack.publications or ()],
            ),
        )

    def encode_welcome(
        self, welcome: protocol.Welcome, *, reply_to: int | None, subs: list[ServerSub]
    ) -> str:
        assert reply_to is not None, "Centrifugo clients are welcomed by the connect reply"
        result = _ConnectResult(
            client=welcome.client,
            version=self.version,
            # whole seconds; the SDKs wait ping + their own margin before giving up
            ping=max(1, math.ceil(welcome.ping_interval)),
            pong=True,
            subs={sub.channel: _server_sub(sub) for sub in subs},
        )
        return _reply(reply_to, "connect", result)

    def encode_error(
        self, code: int, message: str, id: int | None, kind: ErrorKind | None = None
    ) -> str | None:
        if id is None:
            return None  # an error with no id would read as a ping to the SDKs
        cf_code = KIND_CODES[kind] if kind is not None else ERROR_CODES.get(code, code)
        error = _Error(code=cf_code, message=message, temporary=cf_code in TEMPORARY)
        return _encoder.encode(_ErrorReply(id=id, error=error)).decode()

    def encode_push(self, push: Push) -> bytes:
        body: _PubPush | _JoinPush | _LeavePush | _UnsubscribePush
        if isinstance(push, protocol.Message):
            info = None if push.info is None else client_info(push.info)
            body = _PubPush(push.channel, CfPublication(push.data, push.offset, info))
        elif isinstance(push, protocol.Join):
            body = _JoinPush(push.channel, _InfoBody(client_info(push.info)))
        elif isinstance(push, protocol.Leave):
            body = _LeavePush(push.channel, _InfoBody(client_info(push.info)))
        else:
            unsubscribe = _UnsubscribeBody(UNSUBSCRIBE_SERVER, "server unsubscribe")
            body = _UnsubscribePush(push.channel, unsubscribe)
        return _encoder.encode(_Push(body))

    def close_code(self, code: int, reason: str) -> tuple[int, str]:
        mapped = CLOSE_CODES.get(code)
        if mapped is None:
            return code, reason
        cf_code, default = mapped
        lowered = reason.lower()
        if code == CloseCode.UNAUTHORIZED:
            if "timeout" in lowered:
                cf_code = 3502  # stale: never sent connect
            elif "first frame" in lowered:
                cf_code = 3501  # bad request: something other than connect came first
        elif code == CloseCode.FORBIDDEN:
            if "limit" in lowered:
                cf_code = 3504  # connection limit
            elif "origin" in lowered:
                cf_code = 3507  # permission denied
        return cf_code, reason or default
