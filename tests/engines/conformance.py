"""The engine conformance suite: the executable form of ``hubbub.engines.base``.

Every engine passes it unchanged. To run it against an engine, subclass
:class:`EngineConformance` in a ``test_*.py`` module (the class name must start
with ``Test``) and provide one async fixture, ``engine``, that starts an engine
with the ``recorder`` fixture (defined here) as its events and yields it::

    from conformance import EngineConformance, Recorder

    @pytest.fixture
    async def engine(recorder: Recorder) -> AsyncIterator[Engine]:
        eng = MyEngine(...)
        await eng.start(recorder)
        yield eng
        await eng.close()

    class TestMyEngine(EngineConformance):
        pass

The engine must be isolated per test (a fresh process state, Redis db or key
prefix), or at least the suite's random channel names (see :func:`channel`)
must not collide. Events may arrive asynchronously (Redis pub/sub), so tests
wait for them with :meth:`Recorder.wait_for` rather than assert at once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from msgspec import Raw

from hubbub.core.history import HistoryOptions, is_recovered
from hubbub.core.presence import PresenceStats
from hubbub.core.protocol import ClientInfo, Publication, StreamPosition, parse_raw, raw_json
from hubbub.engines.base import DISCONNECT, UNSUBSCRIBE, Engine, NodeControl

KEEP = HistoryOptions(size=100, ttl=300)
KEEP_ALL = HistoryOptions(size=1000, ttl=300)
EVENT_TIMEOUT = 5.0
#: How long to wait before concluding that an event will not arrive.
QUIET_PERIOD = 0.2


def channel(prefix: str = "test") -> str:
    """A channel name no other test (or earlier run) uses."""
    return f"{prefix}:{uuid.uuid4().hex[:12]}"


def data(value: object) -> Raw:
    return raw_json(value)


def values(pubs: list[Publication]) -> list[object]:
    return [parse_raw(p.data) for p in pubs]


def offsets(pubs: list[Publication]) -> list[int]:
    return [p.offset for p in pubs]


@dataclass
class Recorder:
    """An :class:`~hubbub.engines.base.EngineEvents` that records every call."""

    publications: list[tuple[str, str, Publication]] = field(default_factory=list)
    joins: list[tuple[str, ClientInfo]] = field(default_factory=list)
    leaves: list[tuple[str, ClientInfo]] = field(default_factory=list)
    controls: list[NodeControl] = field(default_factory=list)
    states: list[bool] = field(default_factory=list)

    def on_publication(self, channel: str, epoch: str, publication: Publication) -> None:
        self.publications.append((channel, epoch, publication))

    def on_join(self, channel: str, info: ClientInfo) -> None:
        self.joins.append((channel, info))

    def on_leave(self, channel: str, info: ClientInfo) -> None:
        self.leaves.append((channel, info))

    def on_control(self, command: NodeControl) -> None:
        self.controls.append(command)

    def on_engine_state(self, ready: bool) -> None:
        self.states.append(ready)

    def delivered(self, channel: str) -> list[Publication]:
        return [pub for ch, _, pub in self.publications if ch == channel]

    async def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        """Wait until ``condition()`` holds; fail the test after a timeout."""
        deadline = time.monotonic() + EVENT_TIMEOUT
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}")
            await asyncio.sleep(0.005)

    async def wait_delivered(self, channel: str, count: int) -> list[Publication]:
        await self.wait_for(
            lambda: len(self.delivered(channel)) >= count, f"{count} publications on {channel}"
        )
        return self.delivered(channel)


async def publish_many(engine: Engine, ch: str, count: int, opts: HistoryOptions = KEEP) -> None:
    for i in range(1, count + 1):
        await engine.publish(ch, data({"n": i}), info=None, history=opts)


class EngineConformance:
    """Tests every engine passes. Subclass it as ``Test<Engine>`` and provide
    an ``engine`` fixture started with the ``recorder`` fixture."""

    @pytest.fixture
    def recorder(self) -> Recorder:
        return Recorder()

    # ------------------------------------------------------------ offsets, epochs

    async def test_ready_once_started(self, engine: Engine) -> None:
        assert await engine.ready() is True

    async def test_offsets_start_at_one_and_increase_by_one(self, engine: Engine) -> None:
        ch = channel()
        positions = [await engine.publish(ch, data(i), info=None, history=KEEP) for i in range(5)]
        assert [p.offset for p in positions] == [1, 2, 3, 4, 5]
        assert len({p.epoch for p in positions}) == 1
        assert all(isinstance(p, StreamPosition) and p.epoch for p in positions)

    async def test_offsets_are_per_channel(self, engine: Engine) -> None:
        a, b = channel(), channel()
        await publish_many(engine, a, 3)
        pos = await engine.publish(b, data("x"), info=None, history=KEEP)
        assert pos.offset == 1
        assert (await engine.history(a, limit=0)).offset == 3

    async def test_offsets_advance_without_history(self, engine: Engine) -> None:
        ch = channel()
        none = HistoryOptions(size=0, ttl=300)
        assert (await engine.publish(ch, data(1), info=None, history=none)).offset == 1
        assert (await engine.publish(ch, data(2), info=None, history=none)).offset == 2
        result = await engine.history(ch)
        assert result.publications == []
        assert result.offset == 2

    async def test_unpublished_channel_has_top_zero_and_a_remembered_epoch(
        self, engine: Engine
    ) -> None:
        ch = channel()
        first = await engine.history(ch)
        assert first.publications == []
        assert first.offset == 0
        assert first.epoch
        again = await engine.history(ch, limit=5)
        assert again.epoch == first.epoch
        pos = await engine.publish(ch, data(1), info=None, history=KEEP)
        assert pos == StreamPosition(offset=1, epoch=first.epoch)

    async def test_epoch_is_stable_across_publishes_and_reads(self, engine: Engine) -> None:
        ch = channel()
        pos = await engine.publish(ch, data(1), info=None, history=KEEP)
        await publish_many(engine, channel(), 2)
        result = await engine.history(ch)
        assert result.epoch == pos.epoch
        assert result.position == StreamPosition(offset=1, epoch=pos.epoch)

    async def test_concurrent_publishes_get_distinct_consecutive_offsets(
        self, engine: Engine, recorder: Recorder
    ) -> None:
        ch = channel()
        await engine.subscribe(ch)
        positions = await asyncio.gather(
            *(engine.publish(ch, data(i), info=None, history=KEEP_ALL) for i in range(200))
        )
        assert sorted(p.offset for p in positions) == list(range(1, 201))
        assert len({p.epoch for p in positions}) == 1
        delivered = await recorder.wait_delivered(ch, 200)
        assert offsets(delivered) == list(range(1, 201))
        # Each publication is stored with the offset its publisher was given.
        by_offset = {p.offset: p for p in (await engine.history(ch)).publications}
        for i, pos in enumerate(positions):
            assert parse_raw(by_offset[pos.offset].data) == i

    async def test_idempotency_key_publishes_once(self, engine: Engine, recorder: Recorder) -> None:
        ch, other = channel(), channel()
        await engine.subscribe(ch)
        first = await engine.publish(
            ch, data("once"), info=None, history=KEEP, idempotency_key="k1"
        )
        again = await engine.publish(
            ch, data("twice?"), info=None, history=KEEP, idempotency_key="k1"
        )
        assert again == first
        new_key = await engine.publish(
            ch, data("new"), info=None, history=KEEP, idempotency_key="k2"
        )
        no_key = await engine.publish(ch, data("plain"), info=None, history=KEEP)
        assert (new_key.offset, no_key.offset) == (first.offset + 1, first.offset + 2)
        # A key is per channel.
        elsewhere = await engine.publish(
            other, data("x"), info=None, history=KEEP, idempotency_key="k1"
        )
        assert elsewhere.offset == 1
        assert values((await engine.history(ch)).publications) == ["once", "new", "plain"]
        delivered = await recorder.wait_delivered(ch, 3)
        await asyncio.sleep(QUIET_PERIOD)
        assert values(recorder.delivered(ch)) == values(delivered) == ["once", "new", "plain"]

    async def test_concurrent_publishes_with_one_key_publish_once(self, engine: Engine) -> None:
        ch = channel()
        positions = await asyncio.gather(
            *(
                engine.publish(ch, data(i), info=None, history=KEEP, idempotency_key="same")
                for i in range(20)
            )
        )
        assert len(set(positions)) == 1
        assert (await engine.history(ch)).offset == 1

    # ------------------------------------------------------------ history

    async def test_history_keeps_data_and_info(self, engine: Engine) -> None:
        ch = channel()
        who = ClientInfo(client="c1", user="u1", info=data({"name": "Ann"}))
        await engine.publish(ch, data({"text": "hi", "n": [1, 2]}), info=who, history=KEEP)
        await engine.publish(ch, data("server"), info=None, history=KEEP)
        pubs = (await engine.history(ch)).publications
        assert values(pubs) == [{"text": "hi", "n": [1, 2]}, "server"]
        assert pubs[0].info is not None
        assert (pubs[0].info.client, pubs[0].info.user) == ("c1", "u1")
        assert pubs[0].info.info is not None
        assert parse_raw(pubs[0].info.info) == {"name": "Ann"}
        assert pubs[1].info is None

    @pytest.mark.parametrize(
        ("since", "limit", "reverse", "expected"),
        [
            (None, None, False, [1, 2, 3, 4, 5, 6]),
            (None, 2, False, [1, 2]),
            (None, 0, False, []),
            (None, 100, False, [1, 2, 3, 4, 5, 6]),
            (None, None, True, [6, 5, 4, 3, 2, 1]),
            (None, 2, True, [6, 5]),
            (None, 0, True, []),
            (0, None, False, [1, 2, 3, 4, 5, 6]),
            (3, None, False, [4, 5, 6]),
            (3, 2, False, [4, 5]),
            (3, 0, False, []),
            (6, None, False, []),
            (9, None, False, []),
            (4, None, True, [3, 2, 1]),
            (4, 2, True, [3, 2]),
            (1, None, True, []),
            (7, None, True, [6, 5, 4, 3, 2, 1]),
            (7, 3, True, [6, 5, 4]),
        ],
    )
    async def test_history_since_limit_reverse(
        self,
        engine: Engine,
        since: int | None,
        limit: int | None,
        reverse: bool,
        expected: list[int],
    ) -> None:
        ch = channel()
        await publish_many(engine, ch, 6)
        result = await engine.history(ch, since=since, limit=limit, reverse=reverse)
        assert offsets(result.publications) == expected
        assert values(result.publications) == [{"n": n} for n in expected]
        assert result.offset == 6

    @pytest.mark.parametrize(
        ("since", "limit", "reverse", "expected"),
        [
            (None, None, False, [8, 9, 10]),
            (None, 2, False, [8, 9]),
            (None, 2, True, [10, 9]),
            (2, None, False, [8, 9, 10]),
            (8, None, False, [9, 10]),
            (9, None, True, [8]),
        ],
    )
    async def test_history_is_bounded_by_size(
        self,
        engine: Engine,
        since: int | None,
        limit: int | None,
        reverse: bool,
        expected: list[int],
    ) -> None:
        ch = channel()
        await publish_many(engine, ch, 10, HistoryOptions(size=3, ttl=300))
        result = await engine.history(ch, since=since, limit=limit, reverse=reverse)
        assert offsets(result.publications) == expected
        assert result.offset == 10

    async def test_history_expires_after_ttl(self, engine: Engine) -> None:
        ch = channel()
        short = HistoryOptions(size=10, ttl=1)
        pos = await engine.publish(ch, data(1), info=None, history=short)
        await engine.publish(ch, data(2), info=None, history=short)
        assert offsets((await engine.history(ch)).publications) == [1, 2]
        await asyncio.sleep(1.3)
        result = await engine.history(ch)
        assert result.publications == []
        # The stream's position outlives its publications.
        assert result.position == StreamPosition(offset=2, epoch=pos.epoch)
        after = await engine.publish(ch, data(3), info=None, history=short)
        assert after == StreamPosition(offset=3, epoch=pos.epoch)
        assert offsets((await engine.history(ch)).publications) == [3]

    # ------------------------------------------------------------ recovery

    async def _recovered(self, engine: Engine, ch: str, since: StreamPosition) -> bool:
        result = await engine.history(ch, since=since.offset)
        return is_recovered(since, result)

    async def test_recovery_cases(self, engine: Engine) -> None:
        ch = channel()
        await publish_many(engine, ch, 5, HistoryOptions(size=3, ttl=300))
        epoch = (await engine.history(ch, limit=0)).epoch

        def at(offset: int, in_epoch: str = epoch) -> StreamPosition:
            return StreamPosition(offset=offset, epoch=in_epoch)

        assert await self._recovered(engine, ch, at(5))  # up to date
        assert await self._recovered(engine, ch, at(2))  # missed 3..5, all kept
        assert await self._recovered(engine, ch, at(4))
        assert not await self._recovered(engine, ch, at(1))  # 2 is gone
        assert not await self._recovered(engine, ch, at(0))
        assert not await self._recovered(engine, ch, at(6))  # ahead of the top
        assert not await self._recovered(engine, ch, at(5, epoch + "x"))  # other epoch
        result = await engine.history(ch, since=2)
        assert values(result.publications) == [{"n": 3}, {"n": 4}, {"n": 5}]

    async def test_recovery_from_zero_on_a_new_channel(self, engine: Engine) -> None:
        ch = channel()
        start = (await engine.history(ch, limit=0)).position
        await publish_many(engine, ch, 2)
        assert await self._recovered(engine, ch, start)

    # ------------------------------------------------------------ delivery

    async def test_publications_reach_subscribed_channels_only(
        self, engine: Engine, recorder: Recorder
    ) -> None:
        subscribed, other = channel(), channel()
        await engine.subscribe(subscribed)
        await engine.publish(other, data("not for us"), info=None, history=KEEP)
        pos = await engine.publish(subscribed, data("for us"), info=None, history=KEEP)
        delivered = await recorder.wait_delivered(subscribed, 1)
        await asyncio.sleep(QUIET_PERIOD)
        assert [ch for ch, _, _ in recorder.publications] == [subscribed]
        ((_, epoch, pub),) = recorder.publications
        assert epoch == pos.epoch
        assert delivered == [pub]
        assert pub.offset == pos.offset
        assert parse_raw(pub.data) == "for us"

    async def test_delivery_is_in_offset_order_with_info(
        self, engine: Engine, recorder: Recorder
    ) -> None:
        ch = channel()
        await engine.subscribe(ch)
        who = ClientInfo(client="c9", user="u9")
        for i in range(1, 21):
            await engine.publish(ch, data(i), info=who if i % 2 else None, history=KEEP)
        delivered = await recorder.wait_delivered(ch, 20)
        assert offsets(delivered) == list(range(1, 21))
        assert values(delivered) == list(range(1, 21))
        assert delivered[0].info == who
        assert delivered[1].info is None

    async def test_publications_are_delivered_even_without_history(
        self, engine: Engine, recorder: Recorder
    ) -> None:
        ch = channel()
        await engine.subscribe(ch)
        await engine.publish(ch, data(1), info=None, history=HistoryOptions(size=0, ttl=0))
        assert offsets(await recorder.wait_delivered(ch, 1)) == [1]

    async def test_no_delivery_after_unsubscribe(self, engine: Engine, recorder: Recorder) -> None:
        ch, sentinel = channel(), channel()
        await engine.subscribe(ch)
        await engine.subscribe(sentinel)
        await engine.publish(ch, data(1), info=None, history=KEEP)
        await recorder.wait_delivered(ch, 1)
        await engine.unsubscribe(ch)
        await engine.publish(ch, data(2), info=None, history=KEEP)
        await engine.publish(sentinel, data("done"), info=None, history=KEEP)
        await recorder.wait_delivered(sentinel, 1)
        await asyncio.sleep(QUIET_PERIOD)
        assert offsets(recorder.delivered(ch)) == [1]
        # Resubscribing resumes delivery.
        await engine.subscribe(ch)
        await engine.publish(ch, data(3), info=None, history=KEEP)
        assert offsets(await recorder.wait_delivered(ch, 2)) == [1, 3]

    async def test_join_and_leave_reach_subscribed_channels_only(
        self, engine: Engine, recorder: Recorder
    ) -> None:
        ch, other = channel(), channel()
        who = ClientInfo(client="c1", user="u1", info=data({"n": 1}))
        await engine.subscribe(ch)
        await engine.publish_join(other, who)
        await engine.publish_join(ch, who)
        await recorder.wait_for(lambda: len(recorder.joins) >= 1, "a join")
        await engine.publish_leave(other, who)
        await engine.publish_leave(ch, who)
        await recorder.wait_for(lambda: len(recorder.leaves) >= 1, "a leave")
        await asyncio.sleep(QUIET_PERIOD)
        assert recorder.joins == [(ch, who)]
        assert recorder.leaves == [(ch, who)]
        await engine.unsubscribe(ch)
        await engine.publish_join(ch, who)
        await asyncio.sleep(QUIET_PERIOD)
        assert recorder.joins == [(ch, who)]

    async def test_control_reaches_events(self, engine: Engine, recorder: Recorder) -> None:
        ch = channel()
        orders = [NodeControl(DISCONNECT, "u42"), NodeControl(UNSUBSCRIBE, "u42", ch)]
        for order in orders:
            await engine.control(order)
        # Not tied to any channel subscription of this node, and in order.
        await recorder.wait_for(lambda: len(recorder.controls) >= 2, "two control orders")
        await asyncio.sleep(QUIET_PERIOD)
        assert recorder.controls == orders
        assert recorder.controls[1].channel == ch

    # ------------------------------------------------------------ presence

    async def test_presence_add_refresh_remove(self, engine: Engine) -> None:
        ch = channel()
        a = ClientInfo(client="a", user="u1")
        b = ClientInfo(client="b", user="u2", info=data({"x": 1}))
        assert await engine.presence(ch) == {}
        await engine.add_presence(ch, a, 60)
        await engine.add_presence(ch, b, 60)
        assert await engine.presence(ch) == {"a": a, "b": b}
        a2 = ClientInfo(client="a", user="u1", info=data({"away": True}))
        await engine.add_presence(ch, a2, 60)  # refresh with new info
        assert await engine.presence(ch) == {"a": a2, "b": b}
        await engine.remove_presence(ch, "a")
        assert await engine.presence(ch) == {"b": b}
        await engine.remove_presence(ch, "a")  # idempotent
        await engine.remove_presence(ch, "b")
        assert await engine.presence(ch) == {}
        assert await engine.presence_stats(ch) == PresenceStats(num_clients=0, num_users=0)

    async def test_presence_is_per_channel(self, engine: Engine) -> None:
        a, b = channel(), channel()
        await engine.add_presence(a, ClientInfo(client="c", user="u"), 60)
        assert await engine.presence(b) == {}
        assert list(await engine.presence(a)) == ["c"]

    async def test_presence_stats_count_distinct_users(self, engine: Engine) -> None:
        ch = channel()
        for client, user in [("c1", "u1"), ("c2", "u1"), ("c3", "u2"), ("c4", ""), ("c5", "")]:
            await engine.add_presence(ch, ClientInfo(client=client, user=user), 60)
        # All anonymous clients (user "") count as one user.
        assert await engine.presence_stats(ch) == PresenceStats(num_clients=5, num_users=3)

    async def test_presence_expires_unless_refreshed(self, engine: Engine) -> None:
        ch = channel()
        stays, goes = ClientInfo(client="stays", user="u1"), ClientInfo(client="goes", user="u2")
        await engine.add_presence(ch, stays, 1)
        await engine.add_presence(ch, goes, 1)
        await asyncio.sleep(0.6)
        await engine.add_presence(ch, stays, 1)
        await asyncio.sleep(0.6)
        assert await engine.presence(ch) == {"stays": stays}
        assert await engine.presence_stats(ch) == PresenceStats(num_clients=1, num_users=1)
        await asyncio.sleep(0.6)
        assert await engine.presence(ch) == {}

    async def test_expire_presence_returns_each_expired_entry_once(self, engine: Engine) -> None:
        ch = channel()
        stays = ClientInfo(client="stays", user="u1")
        goes = ClientInfo(client="goes", user="u2", info=raw_json({"name": "Go"}))
        await engine.add_presence(ch, stays, 60)
        await engine.add_presence(ch, goes, 0.3)
        assert await engine.expire_presence(ch) == []  # nothing expired yet
        await asyncio.sleep(0.5)
        # Reads skip the expired entry but leave it to be collected...
        assert await engine.presence(ch) == {"stays": stays}
        assert await engine.presence_stats(ch) == PresenceStats(num_clients=1, num_users=1)
        # ... exactly once, with its info (for the leave event).
        assert await engine.expire_presence(ch) == [goes]
        assert await engine.expire_presence(ch) == []
        assert await engine.presence(ch) == {"stays": stays}
        assert await engine.expire_presence(channel()) == []

    async def test_concurrent_expire_presence_hands_out_each_entry_once(
        self, engine: Engine
    ) -> None:
        ch = channel()
        infos = [ClientInfo(client=f"c{i}", user=f"u{i}") for i in range(50)]
        for info in infos:
            await engine.add_presence(ch, info, 0.2)
        await asyncio.sleep(0.4)
        batches = await asyncio.gather(*(engine.expire_presence(ch) for _ in range(8)))
        collected = [info.client for batch in batches for info in batch]
        assert sorted(collected) == sorted(info.client for info in infos)
        assert await engine.presence(ch) == {}

    async def test_a_refreshed_entry_does_not_expire(self, engine: Engine) -> None:
        ch = channel()
        info = ClientInfo(client="c", user="u")
        await engine.add_presence(ch, info, 0.3)
        await asyncio.sleep(0.2)
        await engine.add_presence(ch, info, 0.3)
        await asyncio.sleep(0.2)
        assert await engine.expire_presence(ch) == []
        await engine.remove_presence(ch, "c")
        await asyncio.sleep(0.4)
        assert await engine.expire_presence(ch) == []  # removed entries are not "expired"
