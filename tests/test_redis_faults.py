"""What clients, publishers and /ready see when Redis or a node fails.

Every test starts its own redis-server on a free port (never the shared 6379) and
kills or starts it as the scenario needs; a restarted redis-server has no
persistence, so it comes back empty and channels get a new epoch.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from cluster import API_KEY, Node, hubbub_serve, nodes, ready, token, wait_ready
from hubbub.errors import EngineUnavailable
from redis_server import running_redis
from support import Client, client, free_port

pytestmark = pytest.mark.redis

CHAT = {"namespaces": {"chat": {"history_size": 5000, "history_ttl": 600}}}
LOOSE = {"rate_limit": 10_000, "rate_burst": 10_000}
CHANNEL = "chat:live"


class Publisher:
    """Publishes with an id every ``interval`` s and keeps every reply."""

    def __init__(self, c: Client, interval: float = 0.02) -> None:
        self.client = c
        self.interval = interval
        self.replies: list[dict[str, Any]] = []
        self.stop = asyncio.Event()

    async def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            reply = await self.client.request("publish", channel=CHANNEL, data={"n": n}, timeout=5)
            self.replies.append(reply)
            n += 1
            await asyncio.sleep(self.interval)

    def acks(self, epoch: str | None = None) -> list[int]:
        return [
            r["offset"]
            for r in self.replies
            if r["type"] == "ack" and (epoch is None or r["epoch"] == epoch)
        ]

    def errors(self) -> list[dict[str, Any]]:
        return [r for r in self.replies if r["type"] == "error"]

    async def wait(self, condition: Any, what: str, within: float = 10.0) -> None:
        deadline = time.monotonic() + within
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.02)


async def drain(c: Client, into: list[tuple[str, int]], *, until: Any, within: float) -> None:
    """Read ``message`` frames into ``(epoch, offset)`` pairs until ``until()``."""
    deadline = time.monotonic() + within
    while not until():
        message = await c.next("message", timeout=max(0.01, deadline - time.monotonic()))
        into.append((message["epoch"], message["offset"]))


def contiguous(offsets: list[int]) -> bool:
    return offsets == list(range(offsets[0], offsets[0] + len(offsets)))


async def test_redis_restart_while_publishing() -> None:
    with running_redis() as redis:
        async with (
            nodes(redis.url, 2, fast=True, **CHAT, **LOOSE) as (a, b),
            client(a.address, token=token("stayer")) as stayer,
            client(b.address, token=token("writer")) as writer,
        ):
            await stayer.ok("subscribe", channel=CHANNEL)
            publisher = Publisher(writer)
            task = asyncio.create_task(publisher.run())
            try:
                await _restart_scenario(redis, a, b, stayer, publisher)
            finally:
                publisher.stop.set()
                await asyncio.wait_for(task, 10)


async def _restart_scenario(
    redis: Any, a: Node, b: Node, stayer: Client, publisher: Publisher
) -> None:
    # A subscriber on B that will be away during the outage.
    async with client(b.address, token=token("mover")) as mover:
        await mover.ok("subscribe", channel=CHANNEL)
        await publisher.wait(lambda: len(publisher.acks()) >= 20, "20 acks")
        last = await mover.next("message")
        position = {"offset": last["offset"], "epoch": last["epoch"]}
    old_epoch = position["epoch"]

    redis.kill()
    for node in (a, b):
        await wait_ready(node, 503)
    with pytest.raises(EngineUnavailable):
        await a.hub.publish(CHANNEL, "during the outage")
    async with httpx.AsyncClient(base_url=b.http, timeout=5) as http:
        reply = await http.post(
            "/api/publish",
            json={"channel": CHANNEL, "data": "during the outage"},
            headers={"Authorization": f"apikey {API_KEY}"},
        )
        assert reply.status_code == 503, reply.text
        assert (await http.get("/health")).status_code == 200
    # Publishes during the outage fail with 503, and the connections stay open.
    await publisher.wait(lambda: len(publisher.errors()) >= 3, "3 errors")
    assert {e["code"] for e in publisher.errors()} == {503}
    await stayer.send({"type": "ping"})
    await stayer.next("pong")
    # A new connection cannot go live without its personal channel: 1013, try again later.
    connections = len(a.hub.connections)
    async with client(a.address, token=token("late"), welcome=False) as late:
        assert await late.closed() == 1013
    assert len(a.hub.connections) == connections

    redis.start()  # same port, empty: every channel gets a new epoch
    for node in (a, b):
        await wait_ready(node, 200)
    await publisher.wait(
        lambda: any(r.get("epoch", old_epoch) != old_epoch for r in publisher.replies),
        "an ack in the new epoch",
    )
    new_epoch = next(
        r["epoch"] for r in publisher.replies if r.get("epoch", old_epoch) != old_epoch
    )
    await publisher.wait(lambda: len(publisher.acks(new_epoch)) >= 20, "20 acks after")
    publisher.stop.set()
    await publisher.wait(lambda: publisher.replies[-1]["type"] == "ack", "the last reply")

    # Never a silent drop: every publish was answered, ack or 503.
    assert all(r["type"] == "ack" or r["code"] == 503 for r in publisher.replies)
    # The subscriber that stayed connected got every acknowledged publication of the
    # old epoch, then the new epoch from its first offset: no gap it was not told of.
    seen: list[tuple[str, int]] = []
    acked_new = publisher.acks(new_epoch)
    await drain(
        stayer,
        seen,
        until=lambda: bool(seen) and seen[-1] == (new_epoch, acked_new[-1]),
        within=10,
    )
    before = [offset for epoch, offset in seen if epoch == old_epoch]
    after = [offset for epoch, offset in seen if epoch == new_epoch]
    assert [epoch for epoch, _ in seen] == [old_epoch] * len(before) + [new_epoch] * len(after)
    assert before[0] == 1
    assert contiguous(before)
    assert set(publisher.acks(old_epoch)) <= set(before)
    assert after[0] == 1
    assert contiguous(after)
    assert set(acked_new) <= set(after)

    # The subscriber that was away is told that history was lost: recovered false.
    async with client(a.address, token=token("mover")) as mover:
        ack = await mover.ok("subscribe", channel=CHANNEL, since=position)
        assert ack["recovered"] is False
        assert ack["epoch"] == new_epoch
        assert ack["publications"] == []
        assert ack["offset"] >= acked_new[-1]
        # From the new position recovery is exact again.
        await mover.ok("unsubscribe", channel=CHANNEL)
        since = {"offset": acked_new[0], "epoch": new_epoch}
        again = await mover.ok("subscribe", channel=CHANNEL, since=since)
        assert again["recovered"] is True
        assert [p["offset"] for p in again["publications"]] == list(
            range(acked_new[0] + 1, again["offset"] + 1)
        )


@pytest.mark.slow
async def test_a_killed_node_leaves_presence_with_one_leave_each(tmp_path: Path) -> None:
    ttl = 2.0
    with (
        running_redis() as redis,
        hubbub_serve(
            "--engine", redis.url, log_dir=tmp_path, wait="/ready", HUBBUB_PRESENCE_TTL=str(ttl)
        ) as doomed,
    ):
        async with nodes(redis.url, 2, presence_ttl=ttl, **CHAT) as (y, z):
            async with contextlib.AsyncExitStack() as stack:
                watchers = [
                    await stack.enter_async_context(client(n.address, token=token(f"w{i}")))
                    for i, n in enumerate((y, z))
                ]
                for w in watchers:
                    await w.ok("subscribe", channel=CHANNEL)
                victims = [
                    await stack.enter_async_context(client(doomed.address, token=token(f"v{i}")))
                    for i in range(2)
                ]
                positions: list[dict[str, Any]] = []
                for v in victims:
                    ack = await v.ok("subscribe", channel=CHANNEL)
                    positions.append({"offset": ack["offset"], "epoch": ack["epoch"]})
                victim_ids = {v.welcome["client"] for v in victims}
                presence = (await watchers[0].ok("presence", channel=CHANNEL))["clients"]
                assert len(presence) == 4

                doomed.kill()
                killed_at = time.monotonic()
                # Publications go on meanwhile; the victims will recover them elsewhere.
                published = [(await y.hub.publish(CHANNEL, {"n": i})).offset for i in range(5)]
                for w in watchers:
                    left: set[str] = set()
                    while left != victim_ids:
                        frame = await w.next("leave", timeout=ttl * 3)
                        left.add(frame["info"]["client"])
                elapsed = time.monotonic() - killed_at
                assert elapsed <= ttl + ttl / 3 + 1.0, elapsed
                clients = (await watchers[1].ok("presence", channel=CHANNEL))["clients"]
                assert set(clients) == {w.welcome["client"] for w in watchers}
                # Exactly one leave per victim, even though two nodes collect expiries.
                await asyncio.sleep(ttl / 3 * 2)
                for w in watchers:
                    assert not [f for f in w.frames if f["type"] == "leave"], w.frames

            # The victims' clients reconnect to a surviving node and recover exactly.
            for i, position in enumerate(positions):
                async with client(z.address, token=token(f"v{i}")) as v:
                    ack = await v.ok("subscribe", channel=CHANNEL, since=position)
                    assert ack["recovered"] is True
                    assert [p["offset"] for p in ack["publications"]] == published


@pytest.mark.slow
async def test_redis_unreachable_at_startup(tmp_path: Path) -> None:
    with (
        running_redis(free_port(), start=False) as redis,
        hubbub_serve("--engine", redis.url, log_dir=tmp_path) as node,
    ):
        # Up and healthy, not ready; it says what it is doing.
        assert await ready(node.address) == 503
        deadline = time.monotonic() + 5
        while node.stderr.count("unreachable") < 3:
            assert time.monotonic() < deadline, node.stderr
            await asyncio.sleep(0.1)
        assert "reconnecting to Redis" in node.stderr
        assert node.process.poll() is None

        redis.start()
        await wait_ready(node.address, 200, within=10)
        assert "link up" in node.stderr
        async with client(node.address, token=token("alice")) as c:
            await c.ok("subscribe", channel=CHANNEL)
            ack = await c.ok("publish", channel=CHANNEL, data="hello")
            assert ack["offset"] == 1
            assert (await c.next("message"))["data"] == "hello"
