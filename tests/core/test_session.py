"""The per-connection state machine, driven with explicit times (no event loop)."""

from __future__ import annotations

import json

import pytest

from hubbub.core import protocol
from hubbub.core.session import Close, Execute, Limits, Send, Session, State
from hubbub.errors import CloseCode, CommandError, ErrorCode

SUB = '{"type":"subscribe","id":1,"channel":"a"}'


def session(authenticated: bool = True, now: float = 0.0, **limits: float) -> Session:
    return Session(Limits(**limits), now, authenticated=authenticated)  # type: ignore[arg-type]


def error_of(action: object) -> dict[str, object]:
    assert isinstance(action, Send), action
    frame: dict[str, object] = json.loads(action.frame)
    assert frame["type"] == "error"
    return frame


def test_authenticated_session_executes_commands() -> None:
    s = session()
    action = s.receive(SUB, 0.0)
    assert isinstance(action, Execute)
    assert action.command == protocol.Subscribe(id=1, channel="a")


def test_first_frame_must_be_auth() -> None:
    s = session(authenticated=False)
    assert s.state is State.AWAITING_AUTH
    action = s.receive(SUB, 0.0)
    assert action == Close(CloseCode.UNAUTHORIZED, "first frame must be auth")
    assert s.state is State.CLOSED
    assert s.receive(SUB, 0.0) is None  # nothing more once closed


def test_garbage_before_auth_closes_4001() -> None:
    action = session(authenticated=False).receive("not json", 0.0)
    assert isinstance(action, Close)
    assert action.code == CloseCode.UNAUTHORIZED


def test_auth_frame_then_open() -> None:
    s = session(authenticated=False)
    action = s.receive('{"type":"auth","token":"abc"}', 0.0)
    assert action == Execute(protocol.Auth(token="abc"))
    s.authenticated()
    assert s.state is State.OPEN
    assert isinstance(s.receive(SUB, 0.1), Execute)
    again = error_of(s.receive('{"type":"auth","id":5,"token":"x"}', 0.2))
    assert again["code"] == 400
    assert again["id"] == 5
    assert "already authenticated" in str(again["message"])


def test_auth_timeout_via_tick() -> None:
    s = session(authenticated=False, auth_timeout=2.0, ping_interval=25.0)
    assert s.next_deadline() == 2.0
    assert s.tick(1.9) is None
    action = s.tick(2.0)
    assert action == Close(CloseCode.UNAUTHORIZED, "auth timeout")
    assert s.tick(3.0) is None


def test_no_auth_timeout_once_authenticated() -> None:
    s = session(authenticated=False, auth_timeout=2.0, ping_interval=25.0)
    s.receive('{"type":"auth","token":"abc"}', 0.0)
    s.authenticated()
    assert s.next_deadline() == 25.0
    assert s.tick(2.0) is None


def test_bad_frames_get_400_and_keep_going() -> None:
    s = session()
    frame = error_of(s.receive('{"type":"bogus","id":4}', 0.0))
    assert frame["code"] == ErrorCode.BAD_REQUEST
    assert frame["id"] == 4
    assert "unknown command type" in str(frame["message"])
    assert "id" not in error_of(s.receive("[]", 0.0))
    assert s.state is State.OPEN
    assert isinstance(s.receive(SUB, 0.0), Execute)


def test_ping_answers_pong() -> None:
    action = session().receive('{"type":"ping"}', 0.0)
    assert isinstance(action, Send)
    assert json.loads(action.frame) == {"type": "pong"}


def test_rate_limit_429_then_4029_after_more_than_100_rejections() -> None:
    s = session(rate_limit=1.0, rate_burst=3)
    for _ in range(3):
        assert isinstance(s.receive(SUB, 0.0), Execute)
    for i in range(100):
        frame = error_of(s.receive(f'{{"type":"ping","id":{i}}}', 0.001 * i))
        assert frame["code"] == ErrorCode.RATE_LIMITED
        assert frame["id"] == i
    action = s.receive(SUB, 0.5)
    assert action == Close(CloseCode.RATE_LIMIT_ABUSE, "sustained rate-limit abuse")
    assert s.state is State.CLOSED


def test_bad_frames_count_against_the_rate_limit() -> None:
    s = session(rate_limit=1.0, rate_burst=1)
    assert error_of(s.receive("junk", 0.0))["code"] == 400
    assert error_of(s.receive("junk", 0.0))["code"] == 429


def test_rejections_spread_over_more_than_the_window_do_not_close() -> None:
    s = session(rate_limit=0.001, rate_burst=1)
    s.receive(SUB, 0.0)
    for i in range(300):  # one rejection every 0.2 s: 50 per 10 s window
        assert error_of(s.receive(SUB, 0.2 * i))["code"] == 429
    assert s.state is State.OPEN


def test_bucket_refills() -> None:
    s = session(rate_limit=10.0, rate_burst=1)
    assert isinstance(s.receive(SUB, 0.0), Execute)
    assert error_of(s.receive(SUB, 0.0))["code"] == 429
    assert isinstance(s.receive(SUB, 0.1), Execute)


def test_heartbeat_pong_clears_deadline() -> None:
    s = session(ping_interval=5.0, pong_timeout=2.0)
    assert s.next_deadline() == 5.0
    assert s.tick(4.0) is None
    action = s.tick(5.0)
    assert isinstance(action, Send)
    assert json.loads(action.frame) == {"type": "ping"}
    assert s.next_deadline() == 7.0
    assert s.receive('{"type":"pong"}', 6.0) is None
    assert s.next_deadline() == 10.0
    assert s.tick(7.0) is None
    assert s.state is State.OPEN
    assert isinstance(s.tick(10.0), Send)  # the next ping


def test_no_pong_closes_4009() -> None:
    s = session(ping_interval=5.0, pong_timeout=2.0)
    assert isinstance(s.tick(5.0), Send)
    assert s.tick(6.9) is None
    assert s.tick(7.0) == Close(CloseCode.HEARTBEAT_TIMEOUT, "no pong")
    assert s.state is State.CLOSED


def test_frame_over_max_message_size_closes_1009() -> None:
    s = session(max_message_size=300)
    ok = '{"type":"publish","channel":"a","data":"' + "x" * 200 + '"}'
    assert isinstance(s.receive(ok, 0.0), Execute)
    big = '{"type":"publish","channel":"a","data":"' + "x" * 300 + '"}'
    action = s.receive(big, 0.0)
    assert isinstance(action, Close)
    assert action.code == CloseCode.MESSAGE_TOO_BIG
    assert "300" in action.reason


@pytest.mark.parametrize("as_bytes", [False, True])
def test_max_message_size_counts_utf8_bytes(as_bytes: bool) -> None:
    limit = 300
    # 150 characters but 300 bytes of payload: over the limit with the envelope.
    text = '{"type":"publish","channel":"a","data":"' + "é" * 150 + '"}'
    assert len(text) < limit < len(text.encode())
    frame: str | bytes = text.encode() if as_bytes else text
    action = session(max_message_size=limit).receive(frame, 0.0)
    assert isinstance(action, Close)
    assert action.code == CloseCode.MESSAGE_TOO_BIG
    exact = '{"type":"publish","channel":"a","data":"' + "é" * 20
    exact += "x" * (limit - len(exact.encode()) - 2) + '"}'
    assert len(exact.encode()) == limit
    assert isinstance(session(max_message_size=limit).receive(exact, 0.0), Execute)


def test_begin_subscribe_409() -> None:
    s = session()
    s.begin_subscribe("a")
    with pytest.raises(CommandError) as info:
        s.begin_subscribe("a")
    assert info.value.code == ErrorCode.ALREADY_SUBSCRIBED
    s.end_subscribe("a")
    s.begin_subscribe("a")
    assert s.channels == {"a"}


def test_a_pong_flood_counts_towards_abuse_but_pongs_still_count_as_alive() -> None:
    limits = Limits(rate_limit=1, rate_burst=1, abuse_limit=5, abuse_window=10)
    session = Session(limits, 0.0, authenticated=True)
    assert session.tick(limits.ping_interval) is not None  # a ping is out
    outcomes = [session.receive('{"type":"pong"}', limits.ping_interval + 0.001) for _ in range(7)]
    assert outcomes[:6] == [None] * 6  # the first takes the token, five are over the limit
    assert isinstance(outcomes[6], Close)
    assert outcomes[6].code == CloseCode.RATE_LIMIT_ABUSE
