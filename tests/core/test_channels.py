"""Channel grammar, namespaces and the static permission rules."""

from __future__ import annotations

import pytest

from hubbub.core.channels import (
    MAX_CHANNEL_BYTES,
    NamespaceOptions,
    Namespaces,
    allowed_user,
    check_publish,
    check_subscribe,
    claims_allow,
    namespace_of,
    personal_channel,
    validate_channel,
)
from hubbub.errors import CommandError, ErrorCode


def code_of(exc: pytest.ExceptionInfo[CommandError]) -> int:
    return int(exc.value.code)


@pytest.mark.parametrize(
    "channel",
    ["lobby", "chat:lobby", "a_b-c.d", "#42", "dm:chat#42", "x@y=z", "A9", "c" * 255],
)
def test_valid_channels(channel: str) -> None:
    validate_channel(channel)


@pytest.mark.parametrize(
    ("channel", "words"),
    [
        ("", "empty"),
        ("chat lobby", "invalid characters"),
        ("chat/lobby", "invalid characters"),
        ("héllo", "invalid characters"),
        ("a*b", "invalid characters"),
        # SPEC 1 allows no comma: one user per user-limited channel.
        ("dm:chat#42,43", "invalid characters"),
        ("c" * 256, "255 bytes"),
    ],
)
def test_invalid_channels(channel: str, words: str) -> None:
    with pytest.raises(CommandError) as info:
        validate_channel(channel)
    assert code_of(info) == ErrorCode.BAD_REQUEST
    assert words in info.value.message


def test_limit_is_bytes() -> None:
    assert MAX_CHANNEL_BYTES == 255
    with pytest.raises(CommandError):
        validate_channel("é" * 128)  # non-ASCII is refused anyway, never silently cut


def test_namespace_of() -> None:
    assert namespace_of("lobby") == "default"
    assert namespace_of("chat:lobby") == "chat"
    assert namespace_of("chat:a:b") == "chat"
    assert namespace_of("#42") == "default"
    assert namespace_of("dm:chat#42,43") == "dm"
    assert namespace_of("a#b:c") == "default"


def test_allowed_user_and_personal_channel() -> None:
    assert allowed_user("chat:lobby") is None
    assert allowed_user("#42") == "42"
    assert allowed_user("inbox:orders#42") == "42"
    assert allowed_user("dm:x#") == ""
    assert personal_channel("alice") == "#alice"


def test_namespaces_resolve() -> None:
    news = NamespaceOptions(publish=False)
    table = Namespaces({"news": news})
    assert table.resolve("news:today") is news
    assert table.resolve("chat:lobby") == NamespaceOptions()
    assert table.resolve("lobby") == NamespaceOptions()
    assert "default" in table
    assert table.names() == ["default", "news"]
    custom_default = NamespaceOptions(history_size=5)
    assert Namespaces({"default": custom_default}).resolve("x:y") is custom_default


def test_strict_namespaces_404() -> None:
    table = Namespaces({"news": NamespaceOptions()}, strict=True)
    table.resolve("news:x")
    table.resolve("bare")  # the default namespace always exists
    with pytest.raises(CommandError) as info:
        table.resolve("chat:lobby")
    assert code_of(info) == ErrorCode.UNKNOWN_NAMESPACE
    assert "chat" in info.value.message
    with pytest.raises(CommandError) as bad:
        table.resolve("chat lobby")
    assert code_of(bad) == ErrorCode.BAD_REQUEST


def test_history_enabled() -> None:
    assert NamespaceOptions().history_enabled
    assert not NamespaceOptions(history_size=0).history_enabled
    assert not NamespaceOptions(history_ttl=0).history_enabled


OPEN = NamespaceOptions()
CLOSED = NamespaceOptions(subscribe=False, publish=False)
ANON = NamespaceOptions(anonymous=True)


def denied(fn: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(CommandError) as info:
        fn(*args, **kwargs)  # type: ignore[operator]
    assert code_of(info) == ErrorCode.PERMISSION_DENIED
    return info.value.message


def test_check_subscribe() -> None:
    check_subscribe("chat:a", OPEN, user="alice", granted=False)
    assert "anonymous" in denied(check_subscribe, "chat:a", OPEN, user="", granted=False)
    check_subscribe("chat:a", ANON, user="", granted=False)
    assert "token" in denied(check_subscribe, "p:a", CLOSED, user="alice", granted=False)
    check_subscribe("p:a", CLOSED, user="alice", granted=True)
    check_subscribe("p:a", CLOSED, user="", granted=True)  # a grant is a grant


def test_check_subscribe_user_limited() -> None:
    check_subscribe("#alice", OPEN, user="alice", granted=False)
    check_subscribe("#alice", CLOSED, user="alice", granted=False)
    assert "another user" in denied(check_subscribe, "#alice", OPEN, user="bob", granted=False)
    # Not even a grant opens somebody else's personal channel, nor anonymity.
    denied(check_subscribe, "#alice", OPEN, user="bob", granted=True)
    denied(check_subscribe, "#alice", ANON, user="", granted=False)
    check_subscribe("inbox:x#bob", OPEN, user="bob", granted=False)
    denied(check_subscribe, "inbox:x#bob", OPEN, user="carol", granted=False)


def test_check_publish() -> None:
    check_publish("chat:a", OPEN, user="alice")
    assert "server publish only" in denied(check_publish, "news:a", CLOSED, user="alice")
    assert "anonymous" in denied(check_publish, "chat:a", OPEN, user="")
    check_publish("chat:a", ANON, user="")
    check_publish("inbox:x#alice", OPEN, user="alice")
    denied(check_publish, "inbox:x#alice", OPEN, user="carol")
    denied(check_publish, "#alice", ANON, user="")


def test_claims_globs() -> None:
    assert claims_allow(("chat:*",), "chat:lobby")
    assert not claims_allow(("chat:*",), "news:x")
    assert claims_allow(("news:x", "private:team-?"), "private:team-a")
    assert not claims_allow(("private:team-?",), "private:team-ab")
    assert not claims_allow((), "chat:lobby")
    assert not claims_allow(("Chat:*",), "chat:lobby")  # case-sensitive
