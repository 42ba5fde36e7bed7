"""core.presence: the presence table with expiry, with no event loop."""

from __future__ import annotations

from hubbub.core.presence import PresenceStats, PresenceTable
from hubbub.core.protocol import ClientInfo, raw_json

T0 = 1000.0
A = ClientInfo(client="a", user="u1")
B = ClientInfo(client="b", user="u2", info=raw_json({"name": "Bo"}))


def test_add_list_remove() -> None:
    table = PresenceTable()
    assert table.clients("ch", T0) == {}
    table.add("ch", A, ttl=10, now=T0)
    table.add("ch", B, ttl=10, now=T0)
    assert table.clients("ch", T0) == {"a": A, "b": B}
    assert table.remove("ch", "a") is True
    assert table.remove("ch", "a") is False
    assert table.remove("other", "a") is False
    assert table.clients("ch", T0) == {"b": B}


def test_refresh_replaces_info_and_extends_expiry() -> None:
    table = PresenceTable()
    table.add("ch", A, ttl=10, now=T0)
    away = ClientInfo(client="a", user="u1", info=raw_json("away"))
    table.add("ch", away, ttl=10, now=T0 + 8)
    assert table.clients("ch", T0 + 15) == {"a": away}
    assert table.clients("ch", T0 + 18) == {}


def test_entries_expire() -> None:
    table = PresenceTable()
    table.add("ch", A, ttl=10, now=T0)
    table.add("ch", B, ttl=20, now=T0)
    assert set(table.clients("ch", T0 + 9.9)) == {"a", "b"}
    assert set(table.clients("ch", T0 + 10)) == {"b"}
    assert table.stats("ch", T0 + 10) == PresenceStats(num_clients=1, num_users=1)


def test_channels_are_independent() -> None:
    table = PresenceTable()
    table.add("x", A, ttl=10, now=T0)
    table.add("y", B, ttl=10, now=T0)
    assert table.clients("x", T0) == {"a": A}
    assert table.clients("y", T0) == {"b": B}


def test_stats_count_distinct_users_with_anonymous_as_one() -> None:
    table = PresenceTable()
    for client, user in [("c1", "u1"), ("c2", "u1"), ("c3", "u2"), ("c4", ""), ("c5", "")]:
        table.add("ch", ClientInfo(client=client, user=user), ttl=10, now=T0)
    assert table.stats("ch", T0) == PresenceStats(num_clients=5, num_users=3)
    assert table.stats("empty", T0) == PresenceStats(num_clients=0, num_users=0)


def test_empty_channels_are_removed() -> None:
    table = PresenceTable()
    table.add("gone", A, ttl=10, now=T0)
    table.add("read", A, ttl=10, now=T0)
    table.add("swept", A, ttl=10, now=T0)
    table.add("swept", B, ttl=100, now=T0)
    table.add("stays", B, ttl=100, now=T0)
    assert len(table) == 4
    table.remove("gone", "a")
    assert len(table) == 3
    assert table.clients("read", T0 + 20) == {}
    assert len(table) == 3  # reading skips expired entries; expire() removes them
    assert table.expire("read", T0 + 20) == [A]
    assert len(table) == 2
    assert table.prune(T0 + 20) == 1  # "swept" loses a, keeps b
    assert len(table) == 2
    assert table.prune(T0 + 200) == 2
    assert len(table) == 0


def test_reads_of_unknown_channels_create_nothing() -> None:
    table = PresenceTable()
    table.clients("nobody", T0)
    table.stats("nobody", T0)
    assert len(table) == 0


def test_expire_returns_each_expired_entry_once() -> None:
    table = PresenceTable()
    table.add("ch", A, ttl=10, now=T0)
    table.add("ch", B, ttl=20, now=T0)
    assert table.expire("ch", T0 + 5) == []
    assert table.clients("ch", T0 + 10) == {"b": B}
    assert table.expire("ch", T0 + 10) == [A]
    assert table.expire("ch", T0 + 10) == []
    assert table.expire("ch", T0 + 30) == [B]
    assert table.expire("nobody", T0) == []
    assert len(table) == 0
