"""Connections, subscriptions and paced publishing: the load generator proper.

Cost model (the generator shares 2 cores with the server it measures):

- a *sampled* connection parses every frame it receives: publisher id,
  sequence and timestamp are read with three byte searches, which gives exact
  loss/duplicate accounting (per-publisher sequences) and the latency sample;
- every other connection only counts publications (``WsProtocol.marker_hits``,
  one ``bytearray.count`` per read); its loss is ``expected - received``;
- one pacing task publishes for all publishers: every tick it sends the
  publications that are due by now, round-robin over the publishers, one write
  per publisher connection per tick.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hubbub.bench.adapters import Adapter, Reply
from hubbub.bench.wsclient import WsProtocol, open_ws

#: Pacing tick of the publisher task (seconds).
TICK = 0.002


@dataclass(slots=True)
class Target:
    host: str
    port: int
    path: str = "/ws"


@dataclass(slots=True)
class Sink:
    """Where sampled connections put what they measure; swapped per step."""

    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)


class Conn:
    """A connected client with its counters."""

    __slots__ = (
        "adapter",
        "channels",
        "dups",
        "gaps",
        "last",
        "parsed",
        "proto",
        "sampled",
        "sink",
        "waiters",
    )

    def __init__(self, proto: WsProtocol, adapter: Adapter, sampled: bool, sink: Sink) -> None:
        self.proto = proto
        self.adapter = adapter
        self.sampled = sampled
        self.sink = sink
        self.channels: list[str] = []
        self.waiters: list[tuple[Callable[[Reply], bool], asyncio.Future[Reply]]] = []
        self.parsed = 0  # publications seen while parsing
        self.last: dict[int, int] = {}  # publisher -> last sequence (sampled only)
        self.dups = 0
        self.gaps = 0
        proto.ping_marker = adapter.ping_marker
        proto.pong_reply = adapter.pong_reply
        proto.on_text = self._on_text

    def replay(self) -> None:
        """Handle the frames that arrived with the handshake reply."""
        early, self.proto.early = self.proto.early, []
        for payload in early:
            self._on_text(payload)

    # -- receiving ------------------------------------------------------------------

    @property
    def received(self) -> int:
        return self.parsed + self.proto.marker_hits

    @property
    def open(self) -> bool:
        return not self.proto.closed.done()

    def counting(self) -> None:
        """Stop parsing (unless sampled): count publications with a byte search."""
        if not self.sampled:
            self.proto.parse_all = False

    def _on_text(self, payload: bytes) -> None:
        marker = self.adapter.marker
        if marker in payload:
            for part in payload.split(b"\n") if b"\n" in payload else (payload,):
                if marker in part:
                    self._publication(part)
            return
        reply = self.adapter.reply(payload)
        if reply.kind == "ping":
            self.proto.send(self.adapter.pong_reply)
            return
        if reply.kind == "error":
            key = reply.detail[:60]
            self.sink.errors[key] = self.sink.errors.get(key, 0) + 1
        for i, (match, future) in enumerate(self.waiters):
            if match(reply):
                del self.waiters[i]
                if not future.done():
                    future.set_result(reply)
                return

    def _publication(self, part: bytes) -> None:
        self.parsed += 1
        if not self.sampled:
            return
        try:
            i = part.index(b'"p":') + 4
            publisher = int(part[i : part.index(b",", i)])
            i = part.index(b'"s":', i) + 4
            seq = int(part[i : part.index(b",", i)])
            i = part.index(b'"t":', i) + 4
            sent = float(part[i : part.index(b"}", i)])
        except ValueError:
            return
        self.sink.latencies.append(time.time() - sent)
        last = self.last.get(publisher, 0)
        if seq == last + 1:
            self.last[publisher] = seq
        elif seq <= last:
            self.dups += 1
        else:
            self.gaps += seq - last - 1
            self.last[publisher] = seq

    # -- requests ----------------------------------------------------------------------

    def waiter(self, match: Callable[[Reply], bool]) -> asyncio.Future[Reply]:
        """Register interest in a reply (synchronously: nothing can slip past)."""
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self.waiters.append((match, future))
        return future

    async def wait(self, future: asyncio.Future[Reply], time_limit: float) -> Reply:
        try:
            return await asyncio.wait_for(_either(future, self.proto.closed), time_limit)
        finally:
            self.waiters[:] = [w for w in self.waiters if w[1] is not future]

    async def expect(
        self, match: Callable[[Reply], bool], frame: bytes | None, time_limit: float
    ) -> Reply:
        future = self.waiter(match)
        if frame is not None:
            self.proto.send(frame)
        return await self.wait(future, time_limit)

    async def subscribe(self, channel: str, id: int, time_limit: float = 30.0) -> None:
        reply = await self.expect(
            lambda r: r.kind in ("ack", "error") and r.id == id,
            self.adapter.subscribe(channel, id),
            time_limit,
        )
        if reply.kind != "ack":
            raise RuntimeError(f"subscribe to {channel} refused: {reply.detail}")
        self.channels.append(channel)

    async def round_trip(self, id: int, time_limit: float = 30.0) -> None:
        await self.expect(
            lambda r: r.kind == "pong" or (r.kind == "ack" and r.id == id),
            self.adapter.ping(id),
            time_limit,
        )

    def close(self) -> None:
        self.proto.close()


async def _either(future: asyncio.Future[Reply], closed: asyncio.Future[None]) -> Reply:
    waiting: set[asyncio.Future[Any]] = {future, closed}
    done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    if future in done:
        return future.result()
    raise ConnectionError("connection closed")


async def connect(
    target: Target,
    adapter: Adapter,
    *,
    token: str | None,
    sampled: bool,
    sink: Sink,
    time_limit: float = 30.0,
) -> Conn:
    """Open one connection and wait until it is ready (``welcome`` for hubbub)."""
    proto = await open_ws(
        target.host,
        target.port,
        adapter.path(target.path, token),
        marker=adapter.marker,
        time_limit=time_limit,
    )
    conn = Conn(proto, adapter, sampled, sink)
    if adapter.needs_ready:
        ready = conn.waiter(lambda r: r.kind in ("ready", "error"))
        conn.replay()
        for frame in adapter.hello:
            proto.send(frame)
        reply = await conn.wait(ready, time_limit)
        if reply.kind != "ready":
            raise RuntimeError(f"refused: {reply.detail}")
    else:
        conn.replay()
        for frame in adapter.hello:
            proto.send(frame)
    return conn


async def connect_many(
    target: Target,
    adapter: Adapter,
    count: int,
    *,
    tokens: Sequence[str | None],
    sample_every: int,
    sink: Sink,
    concurrency: int = 100,
    progress: Callable[[int], None] | None = None,
) -> list[Conn]:
    """Open ``count`` connections, ``concurrency`` handshakes at a time, in order."""
    conns: list[Conn | None] = [None] * count
    semaphore = asyncio.Semaphore(concurrency)
    done = 0

    async def one(i: int) -> None:
        nonlocal done
        async with semaphore:
            conns[i] = await connect(
                target,
                adapter,
                token=tokens[i % len(tokens)] if tokens else None,
                sampled=i % sample_every == 0,
                sink=sink,
            )
        done += 1
        if progress is not None:
            progress(done)

    await asyncio.gather(*(one(i) for i in range(count)))
    return [c for c in conns if c is not None]


async def subscribe_many(
    pairs: Sequence[tuple[Conn, str]], *, concurrency: int = 200, ids: itertools.count[int]
) -> None:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(conn: Conn, channel: str) -> None:
        async with semaphore:
            await conn.subscribe(channel, next(ids))

    await asyncio.gather(*(one(c, ch) for c, ch in pairs))


@dataclass(slots=True)
class Publisher:
    conn: Conn
    channel: str
    id: int
    seq: int = 0


class Pacer:
    """Publishes at an offered rate, round-robin over ``publishers``."""

    def __init__(self, publishers: Sequence[Publisher], *, pad: int = 0) -> None:
        self.publishers = list(publishers)
        self.published = 0
        self.by_channel: dict[str, int] = {}
        self._next = 0
        self._pad = b'"x":"' + b"x" * pad + b'",' if pad else b""

    async def run(self, rate: float, duration: float) -> float:
        """Publish ``rate`` messages/s for ``duration`` s; returns the achieved rate."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent = 0
        publishers = self.publishers
        count = len(publishers)
        by_channel = self.by_channel
        pad = self._pad
        while True:
            now = loop.time()
            elapsed = now - start
            if elapsed >= duration:
                break
            due = int(rate * elapsed) + 1 - sent
            if due > 0:
                stamp = time.time()
                batches: dict[Conn, list[bytes]] = {}
                for _ in range(due):
                    pub = publishers[self._next]
                    self._next = (self._next + 1) % count
                    pub.seq += 1
                    data = b'{%s"p":%d,"s":%d,"t":%.6f}' % (pad, pub.id, pub.seq, stamp)
                    frame = pub.conn.adapter.publish(pub.channel, data)
                    batches.setdefault(pub.conn, []).append(frame)
                    by_channel[pub.channel] = by_channel.get(pub.channel, 0) + 1
                for conn, frames in batches.items():
                    conn.proto.send_many(frames)
                sent += due
                self.published += due
            await asyncio.sleep(TICK)
        return sent / max(loop.time() - start, 1e-9)


def expected_for(conns: Sequence[Conn], by_channel: dict[str, int]) -> int:
    return sum(by_channel.get(ch, 0) for c in conns for ch in c.channels)


def missing_and_extra(conns: Sequence[Conn], by_channel: dict[str, int]) -> tuple[int, int]:
    """Publications not (yet) received, and received more than once, over ``conns``."""
    missing = extra = 0
    for c in conns:
        expected = sum(by_channel.get(ch, 0) for ch in c.channels)
        got = c.received
        if c.sampled:
            extra += c.dups
            got -= c.dups
        if got < expected:
            missing += expected - got
        elif got > expected:
            extra += got - expected
    return missing, extra
