"""core.history: streams, queries and recovery decisions, with no event loop."""

from __future__ import annotations

import re

import pytest

from hubbub.core.history import (
    HistoryOptions,
    HistoryResult,
    Stream,
    is_recovered,
    new_epoch,
)
from hubbub.core.protocol import ClientInfo, Publication, StreamPosition, parse_raw, raw_json

T0 = 1000.0
KEEP = HistoryOptions(size=100, ttl=60)


def filled(count: int, options: HistoryOptions = KEEP, now: float = T0) -> Stream:
    stream = Stream("e1", updated_at=now)
    for i in range(1, count + 1):
        stream.append(raw_json(i), None, options, now)
    return stream


def offsets(result: HistoryResult) -> list[int]:
    return [p.offset for p in result.publications]


def pub(offset: int) -> Publication:
    return Publication(offset=offset, data=raw_json(offset))


# ---------------------------------------------------------------- epochs


def test_new_epoch_is_short_random_hex() -> None:
    epochs = {new_epoch() for _ in range(50)}
    assert len(epochs) == 50
    assert all(re.fullmatch(r"[0-9a-f]{8}", e) for e in epochs)


def test_new_stream_uses_the_epoch_factory() -> None:
    stream = Stream.new(T0, lambda: "fixed")
    assert stream.position == StreamPosition(offset=0, epoch="fixed")
    assert stream.updated_at == T0
    assert len(stream) == 0
    assert stream.oldest is None


# ---------------------------------------------------------------- append


def test_append_assigns_consecutive_offsets_and_keeps_data() -> None:
    stream = Stream("e1")
    who = ClientInfo(client="c", user="u")
    first = stream.append(raw_json({"a": 1}), who, KEEP, T0)
    second = stream.append(raw_json("b"), None, KEEP, T0 + 1)
    assert (first.offset, second.offset) == (1, 2)
    assert first.info == who
    assert parse_raw(first.data) == {"a": 1}
    assert stream.top == 2
    assert stream.updated_at == T0 + 1
    assert [p for p, _ in stream.entries()] == [first, second]
    assert [exp for _, exp in stream.entries()] == [T0 + 60, T0 + 61]


def test_size_keeps_the_newest() -> None:
    stream = filled(10, HistoryOptions(size=3, ttl=60))
    assert stream.top == 10
    assert stream.oldest == 8
    assert len(stream) == 3


@pytest.mark.parametrize("options", [HistoryOptions(size=0, ttl=60), HistoryOptions(10, 0)])
def test_nothing_kept_but_offsets_advance(options: HistoryOptions) -> None:
    stream = filled(3)
    stream.append(raw_json("x"), None, options, T0)
    assert stream.top == 4
    assert len(stream) == 0
    assert stream.query(now=T0).publications == []


def test_a_smaller_size_later_trims_at_once() -> None:
    stream = filled(10)
    stream.append(raw_json(11), None, HistoryOptions(size=2, ttl=60), T0)
    assert [p.offset for p, _ in stream.entries()] == [10, 11]


def test_entries_expire_after_ttl() -> None:
    stream = Stream("e1")
    stream.append(raw_json(1), None, HistoryOptions(10, 10), T0)
    stream.append(raw_json(2), None, HistoryOptions(10, 10), T0 + 5)
    assert offsets(stream.query(now=T0 + 9.9)) == [1, 2]
    assert offsets(stream.query(now=T0 + 10)) == [2]
    result = stream.query(now=T0 + 15)
    assert result.publications == []
    assert result.offset == 2  # the position outlives the entries
    stream.append(raw_json(3), None, HistoryOptions(10, 10), T0 + 20)
    assert offsets(stream.query(now=T0 + 20)) == [3]


def test_a_shorter_ttl_shortens_older_entries() -> None:
    stream = Stream("e1")
    stream.append(raw_json(1), None, HistoryOptions(10, 100), T0)
    stream.append(raw_json(2), None, HistoryOptions(10, 100), T0)
    stream.append(raw_json(3), None, HistoryOptions(10, 5), T0)
    assert [exp for _, exp in stream.entries()] == [T0 + 5] * 3
    # Never a hole: expiry removes a prefix, here everything at once.
    assert stream.query(now=T0 + 5).publications == []


def test_a_longer_ttl_leaves_older_entries_alone() -> None:
    stream = Stream("e1")
    stream.append(raw_json(1), None, HistoryOptions(10, 5), T0)
    stream.append(raw_json(2), None, HistoryOptions(10, 100), T0)
    assert offsets(stream.query(now=T0 + 6)) == [2]


@pytest.mark.parametrize(
    ("options", "now", "floor"),
    [
        (HistoryOptions(size=100, ttl=60), T0, 1),  # everything kept
        (HistoryOptions(size=3, ttl=60), T0, 4),  # 4, 5, 6 after append of 6
        (HistoryOptions(size=0, ttl=60), T0, 7),  # nothing kept
        (HistoryOptions(size=10, ttl=0), T0, 7),
        (HistoryOptions(size=100, ttl=60), T0 + 61, 6),  # all old ones expired
    ],
)
def test_retention_floor(options: HistoryOptions, now: float, floor: int) -> None:
    stream = filled(5)
    assert stream.retention_floor(options, now) == floor
    stream.append(raw_json(6), None, options, now)
    assert all(p.offset >= floor for p, _ in stream.entries())
    expected = list(range(floor, 7))
    assert [p.offset for p, _ in stream.entries()] == expected


# ---------------------------------------------------------------- query


@pytest.mark.parametrize(
    ("since", "limit", "reverse", "expected"),
    [
        (None, None, False, [3, 4, 5, 6, 7]),
        (None, 2, False, [3, 4]),
        (None, 0, False, []),
        (None, -1, False, []),
        (None, None, True, [7, 6, 5, 4, 3]),
        (None, 2, True, [7, 6]),
        (0, None, False, [3, 4, 5, 6, 7]),
        (2, None, False, [3, 4, 5, 6, 7]),
        (4, None, False, [5, 6, 7]),
        (4, 1, False, [5]),
        (7, None, False, []),
        (99, None, False, []),
        (5, None, True, [4, 3]),
        (5, 1, True, [4]),
        (3, None, True, []),
        (1, None, True, []),
        (8, None, True, [7, 6, 5, 4, 3]),
        (99, 2, True, [7, 6]),
    ],
)
def test_query(since: int | None, limit: int | None, reverse: bool, expected: list[int]) -> None:
    stream = filled(7, HistoryOptions(size=5, ttl=60))
    result = stream.query(since=since, limit=limit, reverse=reverse, now=T0)
    assert offsets(result) == expected
    assert [parse_raw(p.data) for p in result.publications] == expected
    assert result.position == StreamPosition(offset=7, epoch="e1")


def test_query_on_an_empty_stream() -> None:
    result = Stream("e1").query(since=0, now=T0)
    assert result == HistoryResult(publications=[], offset=0, epoch="e1")


# ---------------------------------------------------------------- restore


def test_restore_round_trips() -> None:
    stream = filled(5)
    again = Stream.restore("e1", 5, stream.entries(), updated_at=T0, now=T0)
    assert again.query(now=T0) == stream.query(now=T0)
    assert again.updated_at == T0


def test_restore_keeps_only_the_run_ending_at_top() -> None:
    entries = [(pub(o), T0 + 60) for o in (9, 2, 3, 5, 6, 7, 8, 12)]
    stream = Stream.restore("e1", 9, entries, updated_at=T0, now=T0)
    assert stream.oldest == 5
    assert offsets(stream.query(now=T0)) == [5, 6, 7, 8, 9]
    assert stream.top == 9


def test_restore_without_the_top_entry_keeps_nothing() -> None:
    entries = [(pub(o), T0 + 60) for o in (1, 2, 3)]
    stream = Stream.restore("e1", 4, entries, updated_at=T0, now=T0)
    assert len(stream) == 0
    assert stream.position == StreamPosition(offset=4, epoch="e1")


def test_restore_drops_expired_and_normalises_expiry() -> None:
    entries = [(pub(1), T0 + 100), (pub(2), T0 + 5), (pub(3), T0 + 50), (pub(4), T0 + 60)]
    stream = Stream.restore("e1", 4, entries, updated_at=T0, now=T0)
    assert [exp for _, exp in stream.entries()] == [T0 + 5, T0 + 5, T0 + 50, T0 + 60]
    assert offsets(stream.query(now=T0 + 10)) == [3, 4]


def test_keep_until() -> None:
    stream = Stream("e1", updated_at=T0)
    assert stream.keep_until(100) == T0 + 100
    stream.append(raw_json(1), None, HistoryOptions(10, 500), T0)
    assert stream.keep_until(100) == T0 + 500
    assert stream.keep_until(1000) == T0 + 1000


# ---------------------------------------------------------------- is_recovered


@pytest.mark.parametrize(
    ("since", "recovered"),
    [
        (StreamPosition(offset=7, epoch="e1"), True),  # up to date
        (StreamPosition(offset=2, epoch="e1"), True),  # missed 3..7, all kept
        (StreamPosition(offset=5, epoch="e1"), True),
        (StreamPosition(offset=1, epoch="e1"), False),  # 2 is gone
        (StreamPosition(offset=0, epoch="e1"), False),
        (StreamPosition(offset=8, epoch="e1"), False),  # ahead of the top
        (StreamPosition(offset=7, epoch="e0"), False),  # another epoch
        (StreamPosition(offset=4, epoch="e0"), False),
    ],
)
def test_is_recovered_through_a_stream(since: StreamPosition, recovered: bool) -> None:
    stream = filled(7, HistoryOptions(size=5, ttl=60))
    assert is_recovered(since, stream.query(since=since.offset, now=T0)) is recovered


def test_is_recovered_detects_a_short_answer() -> None:
    result = HistoryResult(publications=[pub(3)], offset=4, epoch="e")
    assert not is_recovered(StreamPosition(offset=2, epoch="e"), result)
    result = HistoryResult(publications=[pub(4), pub(5)], offset=5, epoch="e")
    assert not is_recovered(StreamPosition(offset=2, epoch="e"), result)
    assert is_recovered(StreamPosition(offset=3, epoch="e"), result)


def test_is_recovered_from_zero_on_a_new_stream() -> None:
    stream = Stream.new(T0, lambda: "e")
    assert is_recovered(StreamPosition(offset=0, epoch="e"), stream.query(since=0, now=T0))
