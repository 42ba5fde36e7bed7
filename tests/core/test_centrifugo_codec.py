"""The Centrifugo codec, pure: no sockets, no event loop."""

from __future__ import annotations

import json

import msgspec

from hubbub.core import protocol
from hubbub.core.centrifugo import SEND_METHOD, CentrifugoCodec
from hubbub.core.codec import V1, Connect, ServerSub, Subscribe
from hubbub.core.history import HistoryResult
from hubbub.core.protocol import ClientInfo, DecodeError, Publication, Raw, StreamPosition
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


def test_subscribe_flags_and_connect_subs() -> None:
    plain, strict, fresh = CF.decode(
        '{"id":1,"subscribe":{"channel":"a","recover":true,"offset":4,"epoch":"e","flag":1}}\n'
        '{"id":2,"subscribe":{"channel":"b","recover":true,"offset":4,"epoch":"e","flag":3}}\n'
        '{"id":3,"subscribe":{"channel":"c","flag":2}}'
    )
    assert isinstance(plain, Subscribe)
    assert plain.reject_unrecovered is False
    assert isinstance(strict, Subscribe)
    assert strict.reject_unrecovered is True
    assert isinstance(fresh, Subscribe)
    assert fresh.since is None  # without recover the flag has nothing to reject
    (connect,) = CF.decode(
        '{"id":4,"connect":{"subs":{"#u":{"recover":true,"offset":7,"epoch":"e"},'
        '"other":{"offset":1}}}}'
    )
    assert connect == Connect(id=4, subs={"#u": StreamPosition(7, "e")})
    error = CF.encode_error(ErrorCode.BAD_REQUEST, "x", 5, ErrorKind.UNRECOVERABLE_POSITION)
    assert json.loads(error or "")["error"] == {"code": 112, "message": "x"}


def test_welcome_lists_the_personal_channel_as_a_server_side_subscription() -> None:
    welcome = protocol.Welcome(client="c", user="u", ping_interval=25)
    bare = CF.encode_welcome(welcome, reply_to=1, subs=[ServerSub("#u")])
    assert json.loads(bare)["connect"]["subs"] == {"#u": {}}
    pubs = [Publication(offset=8, data=Raw(b'"x"')), Publication(offset=9, data=Raw(b'"y"'))]
    top = ServerSub.synced("#u", HistoryResult([], 9, "e"), None)
    recovered = ServerSub.synced("#u", HistoryResult(pubs, 9, "e"), True)
    lost = ServerSub.synced("#u", HistoryResult([], 9, "f"), False)
    subs = [
        json.loads(CF.encode_welcome(welcome, reply_to=1, subs=[sub]))
        for sub in (top, recovered, lost)
    ]
    assert [s["connect"]["subs"]["#u"] for s in subs] == [
        {"recoverable": True, "epoch": "e", "offset": 9},
        {
            "recoverable": True,
            "epoch": "e",
            "offset": 9,
            "was_recovering": True,
            "recovered": True,
            "publications": [{"data": "x", "offset": 8}, {"data": "y", "offset": 9}],
        },
        {"recoverable": True, "epoch": "f", "offset": 9, "was_recovering": True},
    ]
    assert json.loads(V1.encode_welcome(welcome, reply_to=None, subs=[top]))["type"] == "welcome"


def test_server_unsubscribe_push_in_both_protocols() -> None:
    push = protocol.ServerUnsubscribe(channel="a", reason="unsubscribed by the server")
    assert msgspec.json.decode(CF.encode_push(push)) == {
        "push": {"channel": "a", "unsubscribe": {"code": 2000, "reason": "server unsubscribe"}}
    }
    assert msgspec.json.decode(V1.encode_push(push)) == {
        "type": "unsubscribe",
        "channel": "a",
        "reason": "unsubscribed by the server",
    }
