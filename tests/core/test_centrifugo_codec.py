"""The Centrifugo codec, pure: no sockets, no event loop."""

from __future__ import annotations

import json

import msgspec

from hubbub.core import protocol
from hubbub.core.centrifugo import SEND_METHOD, CentrifugoCodec
from hubbub.core.codec import V1, Connect
from hubbub.core.protocol import ClientInfo, DecodeError, Raw
from hubbub.errors import CloseCode, ErrorCode, ErrorKind
from hubbub.frames import Frame

CF = CentrifugoCodec(version="test")


def test_several_commands_per_message() -> None:
    items = CF.decode(
        '{"id":1,"connect":{"token":"t","name":"js"}}\n'
        '{"id":2,"subscribe":{"channel":"a","recover":true,"offset":4,"epoch":"e","flag":1}}\n'
        "{}\n"
        '{"send":{"data":{"x":1}}}'
    )
    connect, subscribe, pong, send = items
    assert connect == Connect(id=1, token="t")
    assert isinstance(subscribe, protocol.Subscribe)
    assert subscribe.since == protocol.StreamPosition(4, "e")
    assert isinstance(pong, protocol.Pong)
    assert isinstance(send, protocol.Rpc)
    assert (send.id, send.method) == (None, SEND_METHOD)


def test_history_limits_and_bad_input() -> None:
    (all_,) = CF.decode('{"id":3,"history":{"channel":"a","limit":-1}}')
    (top,) = CF.decode('{"id":4,"history":{"channel":"a"}}')
    assert isinstance(all_, protocol.History)
    assert all_.limit is None
    assert isinstance(top, protocol.History)
    assert top.limit == 0
    bad, junk, unknown = CF.decode('{"id":5,"publish":{}}\nnope\n{"id":6,"bogus":{}}')
    assert isinstance(bad, DecodeError)
    assert bad.id == 5
    assert isinstance(junk, DecodeError)
    assert junk.id is None
    assert isinstance(unknown, DecodeError)
    assert unknown.id == 6


def test_replies_errors_and_pushes() -> None:
    (publish,) = CF.decode('{"id":7,"publish":{"channel":"a","data":1}}')
    reply = CF.encode_reply(publish, protocol.PositionAck(id=7, offset=3, epoch="e"))
    assert json.loads(reply or "") == {"id": 7, "publish": {}}
    error = CF.encode_error(ErrorCode.RATE_LIMITED, "slow down", 8)
    assert json.loads(error or "") == {
        "id": 8,
        "error": {"code": 111, "message": "slow down", "temporary": True},
    }
    expired = CF.encode_error(ErrorCode.PERMISSION_DENIED, "x", 9, ErrorKind.TOKEN_EXPIRED)
    assert json.loads(expired or "")["error"]["code"] == 109
    assert CF.encode_error(ErrorCode.BAD_REQUEST, "no id", None) is None
    info = ClientInfo(client="c", user="u", info=Raw(b'{"n":1}'))
    message = protocol.Message(channel="a", data=Raw(b"[1]"), offset=5, epoch="e", info=info)
    assert msgspec.json.decode(CF.encode_push(message)) == {
        "push": {
            "channel": "a",
            "pub": {
                "data": [1],
                "offset": 5,
                "info": {"user": "u", "client": "c", "conn_info": {"n": 1}},
            },
        }
    }


def test_close_codes_keep_the_reconnect_ranges() -> None:
    assert CF.close_code(CloseCode.SLOW_CONSUMER, "x")[0] == 3008
    assert CF.close_code(CloseCode.HEARTBEAT_TIMEOUT, "x")[0] == 3012
    assert CF.close_code(CloseCode.SERVER_RESTART, "x")[0] == 3001
    assert CF.close_code(CloseCode.RATE_LIMIT_ABUSE, "x")[0] == 3013
    assert CF.close_code(CloseCode.UNAUTHORIZED, "invalid token: x")[0] == 3500
    assert CF.close_code(CloseCode.UNAUTHORIZED, "auth timeout")[0] == 3502
    assert CF.close_code(CloseCode.FORBIDDEN, "connection limit reached")[0] == 3504
    assert CF.close_code(CloseCode.FORBIDDEN, "disconnected by the server")[0] == 3503
    assert CF.close_code(CloseCode.MESSAGE_TOO_BIG, "x")[0] == 1009
    assert V1.close_code(CloseCode.SLOW_CONSUMER, "x") == (4008, "x")


def test_a_push_is_encoded_once_per_codec() -> None:
    message = protocol.Message(channel="a", data=Raw(b"1"), offset=1, epoch="e")
    frame = Frame(protocol.encode_json(message), push=message)
    variant = frame.variant(CF)
    assert frame.variant(CF) is variant  # cached: not once per subscriber
    assert json.loads(variant.data)["push"]["pub"]["offset"] == 1
    reply = Frame(b'{"id":1}')
    assert reply.variant(CF) is reply  # replies are already in the connection's codec
