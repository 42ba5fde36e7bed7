"""The Redis engine: the conformance suite against a private redis-server,
plus what only Redis has: several nodes on one Redis, a Redis that dies and
comes back empty, a Redis that is not there yet at start."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from hubbub.core.history import HistoryOptions
from hubbub.core.protocol import ClientInfo
from hubbub.engines import create_engine
from hubbub.engines.base import UNSUBSCRIBE, Engine, NodeControl
from hubbub.engines.redis import RedisEngine
from hubbub.engines.redis.scripts import load_lua
from hubbub.errors import ConfigError, EngineUnavailable
from redis_server import RedisServer, running_redis
from support import free_port

from .conformance import KEEP, EngineConformance, Recorder, channel, data, offsets, values

pytestmark = pytest.mark.redis


def unique_prefix() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


def fast_engine(url: str) -> RedisEngine:
    """An engine that reconnects fast, so that restart tests take about a second."""
    return RedisEngine(
        url, prefix=unique_prefix(), min_backoff=0.05, max_backoff=0.2, ping_interval=1.0
    )


@pytest.fixture
async def engine(redis_server: RedisServer, recorder: Recorder) -> AsyncIterator[Engine]:
    eng = RedisEngine(redis_server.url, prefix=unique_prefix())
    await eng.start(recorder)
    yield eng
    await eng.close()


class TestRedisEngine(EngineConformance):
    async def test_publish_with_history_off_drops_kept_history(self, engine: Engine) -> None:
        ch = channel()
        await engine.publish(ch, data(1), info=None, history=KEEP)
        await engine.publish(ch, data(2), info=None, history=HistoryOptions(size=0, ttl=300))
        result = await engine.history(ch)
        assert result.publications == []
        assert result.offset == 2


async def wait_until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + 10.0
    while not await condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize("url", ["http://localhost:6379", "redis://localhost:notaport"])
def test_invalid_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError):
        RedisEngine(url)


def test_invalid_prefix_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        RedisEngine("redis://127.0.0.1:1", prefix="a{b}")


def test_engine_factory_builds_a_redis_engine() -> None:
    assert isinstance(create_engine("redis://127.0.0.1:6390/0"), RedisEngine)


@pytest.mark.parametrize(
    "name",
    ["publish", "history", "presence_add", "presence_remove", "presence_get", "presence_expire"],
)
def test_lua_scripts_document_keys_and_argv_in_their_header(name: str) -> None:
    lines = load_lua(name).splitlines()
    header = "\n".join(line for line in lines[: lines.index("")] if line.startswith("--"))
    assert header.startswith(f"-- {name}.lua: ")
    body = "\n".join(lines)
    for ref in sorted(set(re.findall(r"(?:KEYS|ARGV)\[\d+\]", body))):
        assert f"-- {ref}" in header, f"{name}.lua uses {ref} without documenting it"


# ---------------------------------------------------------------- keys


async def test_every_key_has_the_prefix_and_the_channel_hash_tag(
    redis_server: RedisServer,
) -> None:
    from redis.asyncio import Redis

    prefix = unique_prefix()
    eng = RedisEngine(redis_server.url, prefix=prefix)
    await eng.start(Recorder())
    try:
        ch = channel()
        await eng.publish(ch, data(1), info=None, history=KEEP)
        await eng.add_presence(ch, ClientInfo(client="c", user="u"), 60)
        client = Redis.from_url(redis_server.url)
        try:
            raw = await client.keys(f"{prefix}:*")
            keys = sorted(k.decode() if isinstance(k, bytes) else k for k in raw)
        finally:
            await client.aclose()
        assert keys == sorted(
            f"{prefix}:{{{ch}}}:{kind}" for kind in ("meta", "history", "presence", "expiry")
        )
    finally:
        await eng.close()


async def test_two_prefixes_do_not_share_offsets(redis_server: RedisServer) -> None:
    a = RedisEngine(redis_server.url, prefix=unique_prefix())
    b = RedisEngine(redis_server.url, prefix=unique_prefix())
    await a.start(Recorder())
    await b.start(Recorder())
    try:
        ch = channel()
        assert (await a.publish(ch, data(1), info=None, history=KEEP)).offset == 1
        assert (await b.publish(ch, data(1), info=None, history=KEEP)).offset == 1
    finally:
        await a.close()
        await b.close()


# ---------------------------------------------------------------- several nodes


async def test_nodes_on_one_redis_share_offsets_and_fan_out(redis_server: RedisServer) -> None:
    prefix = unique_prefix()
    first_events, second_events = Recorder(), Recorder()
    first = RedisEngine(redis_server.url, prefix=prefix)
    second = RedisEngine(redis_server.url, prefix=prefix)
    await first.start(first_events)
    await second.start(second_events)
    try:
        ch = channel()
        await second.subscribe(ch)
        who = ClientInfo(client="c1", user="u1")
        p1 = await first.publish(ch, data("from first"), info=who, history=KEEP)
        p2 = await second.publish(ch, data("from second"), info=None, history=KEEP)
        assert (p1.offset, p2.offset) == (1, 2)
        assert p1.epoch == p2.epoch
        delivered = await second_events.wait_delivered(ch, 2)
        assert offsets(delivered) == [1, 2]
        assert values(delivered) == ["from first", "from second"]
        assert delivered[0].info == who
        assert first_events.publications == []  # the first node did not subscribe
        # History and presence are shared too.
        assert values((await second.history(ch)).publications) == ["from first", "from second"]
        await first.add_presence(ch, who, 60)
        assert await second.presence(ch) == {"c1": who}
        await first.publish_join(ch, who)
        await second_events.wait_for(lambda: second_events.joins == [(ch, who)], "join")
        # Control orders reach every node.
        order = NodeControl(UNSUBSCRIBE, "u1", ch)
        await second.control(order)
        await first_events.wait_for(lambda: first_events.controls == [order], "first")
        await second_events.wait_for(lambda: second_events.controls == [order], "second")
    finally:
        await first.close()
        await second.close()


# ---------------------------------------------------------------- Redis failures


async def test_redis_restart_is_survived(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hubbub.engines.redis")
    with running_redis() as server:
        events = Recorder()
        eng = fast_engine(server.url)
        await eng.start(events)
        try:
            ch = channel()
            await eng.subscribe(ch)
            before = await eng.publish(ch, data("before"), info=None, history=KEEP)
            await events.wait_delivered(ch, 1)
            assert await eng.ready()

            server.kill()
            await events.wait_for(lambda: events.states == [False], "on_engine_state(False)")
            assert not await eng.ready()
            started = time.monotonic()
            with pytest.raises(EngineUnavailable):
                await eng.publish(ch, data("lost"), info=None, history=KEEP)
            with pytest.raises(EngineUnavailable):
                await eng.history(ch)
            with pytest.raises(EngineUnavailable):
                await eng.presence(ch)
            with pytest.raises(EngineUnavailable):
                await eng.subscribe(channel())
            assert time.monotonic() - started < 3.0, "failures must be quick"

            server.start()  # same port, empty dataset
            await events.wait_for(lambda: events.states == [False, True], "state True")
            await wait_until(eng.ready, "ready() after restart")

            # The subscription was restored and the epoch changed: data was lost.
            after = await eng.publish(ch, data("after"), info=None, history=KEEP)
            assert after.offset == 1
            assert after.epoch != before.epoch
            delivered = await events.wait_delivered(ch, 2)
            assert values(delivered) == ["before", "after"]
            assert [epoch for _, epoch, _ in events.publications] == [before.epoch, after.epoch]
            assert (await eng.history(ch)).epoch == after.epoch
        finally:
            await eng.close()
    messages = [r.getMessage() for r in caplog.records if r.name == "hubbub.engines.redis"]
    assert any("lost" in m for m in messages)
    assert any("link up" in m for m in messages)


async def test_start_without_redis_waits_for_it(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hubbub.engines.redis")
    port = free_port()
    with running_redis(port, start=False) as server:
        events = Recorder()
        eng = fast_engine(server.url)
        started = time.monotonic()
        await eng.start(events)  # does not raise
        try:
            assert time.monotonic() - started < 3.0
            assert not await eng.ready()
            assert events.states == [False]
            with pytest.raises(EngineUnavailable):
                await eng.publish(channel(), data(1), info=None, history=KEEP)
            await asyncio.sleep(0.5)  # a few attempts, each logged
            attempts = [r for r in caplog.records if "unreachable" in r.getMessage()]
            assert len(attempts) >= 2

            server.start()
            await wait_until(eng.ready, "ready() once Redis is up")
            assert events.states == [False, True]
            ch = channel()
            await eng.subscribe(ch)
            pos = await eng.publish(ch, data("hello"), info=None, history=KEEP)
            assert pos.offset == 1
            assert offsets(await events.wait_delivered(ch, 1)) == [1]
        finally:
            await eng.close()


async def test_unreachable_host_fails_within_the_timeouts() -> None:
    # 192.0.2.0/24 is TEST-NET-1: packets go nowhere, connects time out.
    eng = RedisEngine("redis://192.0.2.1:6379/0", connect_timeout=0.3, command_timeout=0.5)
    await eng.start(Recorder())
    try:
        started = time.monotonic()
        with pytest.raises(EngineUnavailable):
            await eng.publish("chat:x", data(1), info=None, history=KEEP)
        assert time.monotonic() - started < 2.0
        assert not await eng.ready()
    finally:
        await eng.close()
