"""Protocol v1 frames: decoding every client command, errors, server encoding."""

from __future__ import annotations

import json

import msgspec
import pytest

from hubbub.core import protocol as p


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ({"type": "auth", "token": "t"}, p.Auth(token="t")),
        ({"type": "subscribe", "id": 1, "channel": "a"}, p.Subscribe(id=1, channel="a")),
        (
            {
                "type": "subscribe",
                "channel": "a",
                "since": {"offset": 3, "epoch": "e"},
                "token": "s",
            },
            p.Subscribe(channel="a", since=p.StreamPosition(3, "e"), token="s"),
        ),
        ({"type": "unsubscribe", "id": 2, "channel": "a"}, p.Unsubscribe(id=2, channel="a")),
        (
            {"type": "history", "channel": "a", "limit": 5, "reverse": True},
            p.History(channel="a", limit=5, reverse=True),
        ),
        ({"type": "presence", "channel": "a"}, p.Presence(channel="a")),
        ({"type": "presence_stats", "channel": "a"}, p.PresenceStats(channel="a")),
        ({"type": "ping"}, p.Ping()),
        ({"type": "pong"}, p.Pong()),
    ],
)
def test_every_command_decodes(frame: dict[str, object], expected: p.Command) -> None:
    assert p.decode_command(json.dumps(frame)) == expected
    assert p.decode_command(json.dumps(frame).encode()) == expected


def test_publish_keeps_data_raw() -> None:
    cmd = p.decode_command('{"type":"publish","id":7,"channel":"c","data":{"x":[1, 2]}}')
    assert isinstance(cmd, p.Publish)
    assert cmd.id == 7
    assert isinstance(cmd.data, msgspec.Raw)
    assert p.parse_raw(cmd.data) == {"x": [1, 2]}


def test_rpc_data_defaults_to_null() -> None:
    cmd = p.decode_command('{"type":"rpc","method":"echo"}')
    assert isinstance(cmd, p.Rpc)
    assert p.parse_raw(cmd.data) is None
    cmd = p.decode_command('{"type":"rpc","method":"echo","data":[1]}')
    assert isinstance(cmd, p.Rpc)
    assert p.parse_raw(cmd.data) == [1]


@pytest.mark.parametrize(
    ("frame", "words", "id"),
    [
        ("not json", ["not valid JSON"], None),
        ('{"type":"publish","channel":"a","data":1', ["not valid JSON"], None),
        ("[1, 2]", ["JSON object", "array"], None),
        ('"hello"', ["JSON object"], None),
        ('{"type":"bogus","id":3}', ["unknown command type", "bogus"], 3),
        ('{"id":6,"channel":"x"}', ["missing required field", "`type`"], 6),
        ('{"type":"subscribe","id":4}', ["missing required field", "`channel`"], 4),
        ('{"type":"publish","id":7,"channel":"a"}', ["missing", "`data`"], 7),
        ('{"type":"subscribe","id":5,"channel":5}', ["Expected `str`", "$.channel"], 5),
        ('{"type":"history","id":8,"channel":"a","limit":-1}', [">= 0", "$.limit"], 8),
        ('{"type":"history","id":8,"channel":"a","limit":10001}', ["$.limit"], 8),
        ('{"type":"subscribe","id":9,"channel":"a","since":{"offset":1}}', ["`epoch`"], 9),
        (
            '{"type":"subscribe","id":9,"channel":"a","since":{"offset":-1,"epoch":"e"}}',
            ["$.since.offset"],
            9,
        ),
        ('{"type":"rpc","id":1,"method":""}', ["$.method"], 1),
        ('{"type":"auth","id":2,"token":null}', ["$.token"], 2),
        ('{"type":"subscribe","id":"x","channel":"a"}', ["$.id"], None),
        ('{"type":"ping","id":-4}', ["$.id"], None),
        ('{"type":"unsubscribe","id":1,"channel":"' + "a" * 1025 + '"}', ["$.channel"], 1),
    ],
)
def test_bad_frames_name_the_problem(frame: str, words: list[str], id: int | None) -> None:
    with pytest.raises(p.DecodeError) as info:
        p.decode_command(frame)
    for word in words:
        assert word in info.value.message, info.value.message
    assert info.value.id == id
    assert str(info.value) == info.value.message


def test_encode_server_frames() -> None:
    welcome = json.loads(p.encode(p.Welcome(client="c1", user="alice", ping_interval=25)))
    assert welcome == {
        "type": "welcome",
        "client": "c1",
        "user": "alice",
        "ping_interval": 25,
        "version": "1",
    }
    assert json.loads(p.encode(p.Ack(id=3))) == {"type": "ack", "id": 3}
    assert json.loads(p.encode(p.PositionAck(id=1, offset=2, epoch="e"))) == {
        "type": "ack",
        "id": 1,
        "offset": 2,
        "epoch": "e",
    }
    # ``recovered``/``publications`` only appear when set.
    assert "recovered" not in json.loads(p.encode(p.SubscribeAck(id=1, offset=0, epoch="e")))
    sub = json.loads(
        p.encode(
            p.SubscribeAck(
                id=1,
                offset=2,
                epoch="e",
                recovered=True,
                publications=[p.Publication(offset=2, data=p.raw_json({"a": 1}))],
            )
        )
    )
    assert sub["recovered"] is True
    assert sub["publications"] == [{"offset": 2, "data": {"a": 1}}]
    assert json.loads(p.encode(p.Error(code=400, message="bad"))) == {
        "type": "error",
        "code": 400,
        "message": "bad",
    }
    assert json.loads(p.encode(p.Error(code=403, message="no", id=9)))["id"] == 9
    assert json.loads(p.encode(p.RpcAck(id=1))) == {"type": "ack", "id": 1, "data": None}
    assert json.loads(p.PING_FRAME) == {"type": "ping"}
    assert json.loads(p.PONG_FRAME) == {"type": "pong"}
    info = p.ClientInfo(client="c", user="u")
    assert json.loads(p.encode(p.Join(channel="x", info=info))) == {
        "type": "join",
        "channel": "x",
        "info": {"client": "c", "user": "u"},
    }
    assert json.loads(p.encode(p.Leave(channel="x", info=info)))["type"] == "leave"
    presence = json.loads(p.encode(p.PresenceAck(id=1, clients={"c": info})))
    assert presence["clients"] == {"c": {"client": "c", "user": "u"}}


def test_encode_message_keeps_raw_data_and_info() -> None:
    pub = p.Publication(
        offset=5,
        data=msgspec.Raw(b'{"text":"h\\u00e9"}'),
        info=p.ClientInfo(client="c", user="u", info=p.raw_json({"n": 1})),
    )
    text = p.encode_message("chat:lobby", "ep", pub)
    assert '{"text":"h\\u00e9"}' in text  # data passed through untouched
    assert json.loads(text) == {
        "type": "message",
        "channel": "chat:lobby",
        "data": {"text": "hé"},
        "offset": 5,
        "epoch": "ep",
        "info": {"client": "c", "user": "u", "info": {"n": 1}},
    }
    plain = json.loads(p.encode_message("c", "e", p.Publication(offset=1, data=p.NULL)))
    assert "info" not in plain
    assert plain["data"] is None
