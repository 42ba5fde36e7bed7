"""The four scenarios: S1 fan-out, S2 chat, S3 idle, S4 connect.

Each returns a plain ``dict`` (what ``--json`` prints). Rates are offered
*publications* per second; deliveries = publications x receivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from hubbub.bench.adapters import Adapter, adapter_for
from hubbub.bench.loadgen import (
    Conn,
    Pacer,
    Publisher,
    Sink,
    Target,
    connect,
    connect_many,
    missing_and_extra,
    subscribe_many,
)
from hubbub.bench.stats import (
    CpuSample,
    ProcessProbe,
    SelfProbe,
    cpu_share,
    percentiles,
)

SCENARIOS = ("s1", "s2", "s3", "s4")

#: A generator process above this share of one core is probably the bottleneck.
SATURATED = 0.9


class Ui(Protocol):
    def status(self, text: str) -> None: ...

    def log(self, text: str) -> None: ...


@dataclass(slots=True)
class BenchConfig:
    url: str = "ws://127.0.0.1:8000/ws"
    protocol: str = "hubbub"
    secret: str | None = None
    namespace: str = "bench"
    connections: int = 1000
    rates: list[float] | None = None
    step: float = 1.5
    start_deliveries: float = 10_000
    max_steps: int = 12
    duration: float = 5.0
    drain: float = 3.0
    fixed_deliveries: float = 20_000
    p99_limit_ms: float = 100.0
    sample: int = 32
    pad: int = 0
    rooms: int = 100
    room_size: int = 10
    concurrency: int = 100
    server_pids: list[int] = field(default_factory=list)

    def target(self) -> Target:
        parts = urlsplit(self.url)
        return Target(parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/")

    def adapter(self) -> Adapter:
        adapter = adapter_for(self.protocol)
        if hasattr(adapter, "namespace") and self.protocol == "hubbub":
            adapter.namespace = self.namespace
        return adapter

    def tokens(self, count: int, prefix: str = "bench") -> list[str | None]:
        if not self.secret:
            return [None]
        from hubbub.auth import issue_token

        return [issue_token(self.secret, f"{prefix}-{i}", ttl=3600) for i in range(count)]


@dataclass(slots=True)
class Step:
    rate: float
    offered_deliveries: float
    published_rate: float = 0.0
    delivered: int = 0
    delivered_rate: float = 0.0
    lost: int = 0
    duplicated: int = 0
    closed: int = 0
    latency_ms: dict[str, float | None] = field(default_factory=dict)
    samples: int = 0
    server_cpu: float | None = None  # cores
    server_us_per_delivery: float | None = None
    server_rss_mb: float | None = None
    generator_cpu: float = 0.0  # cores
    errors: dict[str, int] = field(default_factory=dict)
    ok: bool = False
    note: str = ""


class Run:
    """What one scenario run shares: config, probes, the latency sink, the UI."""

    def __init__(self, config: BenchConfig, ui: Ui) -> None:
        self.config = config
        self.ui = ui
        self.adapter = config.adapter()
        self.target = config.target()
        self.sink = Sink()
        self.ids = itertools.count(1)
        self.server = ProcessProbe(config.server_pids) if config.server_pids else None
        self.me = SelfProbe()

    def server_sample(self) -> CpuSample | None:
        return self.server.sample() if self.server is not None else None

    def sample_every(self, count: int) -> int:
        return max(1, count // max(1, self.config.sample))

    async def open(self, count: int, label: str, prefix: str = "bench") -> list[Conn]:
        tokens = self.config.tokens(count, prefix)
        every = self.sample_every(count)

        def progress(done: int) -> None:
            if done % 50 == 0 or done == count:
                self.ui.status(f"{label}: connected {done}/{count}")

        return await connect_many(
            self.target,
            self.adapter,
            count,
            tokens=tokens,
            sample_every=every,
            sink=self.sink,
            concurrency=self.config.concurrency,
            progress=progress,
        )

    async def subscribe(self, pairs: Sequence[tuple[Conn, str]], label: str) -> None:
        self.ui.status(f"{label}: subscribing {len(pairs)}")
        await subscribe_many(pairs, ids=self.ids)
        for conn, _ in pairs:
            conn.counting()

    async def step(
        self, label: str, pacer: Pacer, receivers: Sequence[Conn], rate: float, fanout: int
    ) -> Step:
        config = self.config
        result = Step(rate=rate, offered_deliveries=rate * fanout)
        self.sink.latencies = []
        self.sink.errors = {}
        missing0, extra0 = missing_and_extra(receivers, pacer.by_channel)
        received0 = sum(c.received for c in receivers)
        server0 = self.server_sample()
        me0 = self.me.sample()
        start = time.monotonic()

        async def show() -> None:
            while True:
                await asyncio.sleep(0.25)
                elapsed = max(time.monotonic() - start, 1e-9)
                got = sum(c.received for c in receivers) - received0
                self.ui.status(
                    f"{label}: {rate:,.0f} msg/s offered ({rate * fanout:,.0f} deliveries/s), "
                    f"{got / elapsed:,.0f} deliveries/s received, "
                    f"{len(self.sink.latencies)} latency samples"
                )

        shower = asyncio.ensure_future(show())
        try:
            result.published_rate = await pacer.run(rate, config.duration)
            deadline = time.monotonic() + config.drain
            while time.monotonic() < deadline:
                missing, _ = missing_and_extra(receivers, pacer.by_channel)
                if missing <= missing0:
                    break
                await asyncio.sleep(0.05)
        finally:
            shower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await shower
        end = time.monotonic()
        server1 = self.server_sample()
        me1 = self.me.sample()
        missing, extra = missing_and_extra(receivers, pacer.by_channel)
        result.delivered = sum(c.received for c in receivers) - received0
        result.delivered_rate = result.delivered / (end - start)
        result.lost = max(0, missing - missing0)
        result.duplicated = max(0, extra - extra0)
        result.closed = sum(1 for c in receivers if not c.open)
        result.latency_ms = percentiles(self.sink.latencies)
        result.samples = len(self.sink.latencies)
        result.errors = dict(self.sink.errors)
        result.generator_cpu = round(cpu_share(me0, me1), 3)
        if server0 is not None and server1 is not None:
            result.server_cpu = round(cpu_share(server0, server1), 3)
            if result.delivered:
                used = server1.cpu - server0.cpu
                result.server_us_per_delivery = round(used / result.delivered * 1e6, 2)
            result.server_rss_mb = round(server1.rss / 2**20, 1)
        p99 = result.latency_ms.get("p99")
        result.ok = (
            result.lost == 0
            and result.duplicated == 0
            and result.closed == 0
            and p99 is not None
            and p99 <= config.p99_limit_ms
        )
        notes = []
        if result.published_rate < 0.95 * rate:
            notes.append("generator could not offer the rate")
        if result.generator_cpu > SATURATED:
            notes.append("generator saturated")
        if result.errors:
            notes.append("server errors: " + ", ".join(result.errors))
        result.note = "; ".join(notes)
        self.ui.log(_step_line(label, result))
        return result

    def rates(self, fanout: int) -> list[float] | None:
        """Explicit rates, or ``None`` to step geometrically until failure."""
        return self.config.rates


def _step_line(label: str, s: Step) -> str:
    lat = s.latency_ms
    cpu = f", server {s.server_us_per_delivery} µs/delivery" if s.server_us_per_delivery else ""
    verdict = "ok" if s.ok else "FAIL"
    note = f" [{s.note}]" if s.note else ""
    return (
        f"{label}: {s.offered_deliveries:,.0f}/s offered -> {s.delivered_rate:,.0f}/s delivered, "
        f"p99 {lat.get('p99')} ms, lost {s.lost}, dup {s.duplicated}, closed {s.closed}{cpu}, "
        f"generator {s.generator_cpu:.0%} -> {verdict}{note}"
    )


async def _stepped(
    run: Run, label: str, pacer: Pacer, receivers: Sequence[Conn], fanout: int
) -> list[Step]:
    config = run.config
    steps: list[Step] = []
    if config.rates:
        for rate in config.rates:
            step = await run.step(label, pacer, receivers, rate, fanout)
            steps.append(step)
            if not step.ok or step.closed:
                break
        return steps
    rate = config.start_deliveries / fanout
    for _ in range(config.max_steps):
        step = await run.step(label, pacer, receivers, rate, fanout)
        steps.append(step)
        if not step.ok:
            break
        rate *= config.step
    return steps


def _summary(steps: Sequence[Step]) -> dict[str, Any]:
    good = [s for s in steps if s.ok]
    best = max(good, key=lambda s: s.delivered_rate) if good else None
    return {
        "sustainable_deliveries_per_s": round(best.delivered_rate) if best else 0,
        "sustainable_p99_ms": best.latency_ms.get("p99") if best else None,
        "generator_limited": bool(best and steps and steps[-1].ok),
        "steps": [asdict(s) for s in steps],
    }


async def _close(conns: Sequence[Conn]) -> None:
    for conn in conns:
        conn.close()
    await asyncio.sleep(0.2)


async def fanout(run: Run) -> dict[str, Any]:
    """S1: one channel, N subscribers, one publisher; rate stepped up."""
    config = run.config
    n = config.connections
    channel = run.adapter.channel("fanout")
    subscribers = await run.open(n, "S1")
    publisher_conn = await connect(
        run.target,
        run.adapter,
        token=(config.tokens(1, "publisher")[0]),
        sampled=True,
        sink=run.sink,
    )
    try:
        await run.subscribe([(c, channel) for c in subscribers], "S1")
        pacer = Pacer([Publisher(publisher_conn, channel, 1)], pad=config.pad)
        # warm-up, then the fixed-rate point for CPU per delivery
        fixed_rate = config.fixed_deliveries / n
        await run.step("S1 warm-up", pacer, subscribers, min(2000 / n, fixed_rate), n)
        fixed = await run.step("S1 fixed", pacer, subscribers, fixed_rate, n)
        steps = await _stepped(run, "S1", pacer, subscribers, n)
    finally:
        await _close([*subscribers, publisher_conn])
    result = _summary(steps)
    result.update(
        scenario="s1",
        connections=n,
        fixed=asdict(fixed),
        cpu_us_per_delivery_at_fixed=fixed.server_us_per_delivery,
        fixed_deliveries_per_s=config.fixed_deliveries,
    )
    return result


async def chat(run: Run) -> dict[str, Any]:
    """S2: ``rooms`` rooms of ``room_size`` members, every member publishing."""
    config = run.config
    size = config.room_size
    total = config.rooms * size
    conns = await run.open(total, "S2")
    try:
        pairs = [(c, run.adapter.channel(f"room-{i // size}")) for i, c in enumerate(conns)]
        await run.subscribe(pairs, "S2")
        pacer = Pacer([Publisher(c, ch, i + 1) for i, (c, ch) in enumerate(pairs)], pad=config.pad)
        first = config.rates[0] if config.rates else config.start_deliveries / size
        await run.step("S2 warm-up", pacer, conns, min(2000 / size, first), size)
        steps = await _stepped(run, "S2", pacer, conns, size)
    finally:
        await _close(conns)
    result = _summary(steps)
    result.update(scenario="s2", rooms=config.rooms, room_size=size)
    return result


async def idle(run: Run) -> dict[str, Any]:
    """S3: N idle (authenticated when a secret is given) connections; server RSS each."""
    config = run.config
    n = config.connections
    before = run.server_sample()
    me0 = run.me.sample()
    start = time.monotonic()
    conns = await run.open(n, "S3")
    elapsed = time.monotonic() - start
    run.ui.status(f"S3: {n} connections open; settling")
    await asyncio.sleep(2.0)
    after = run.server_sample()
    me1 = run.me.sample()
    still_open = sum(1 for c in conns if c.open)
    await _close(conns)
    result: dict[str, Any] = {
        "scenario": "s3",
        "connections": n,
        "open_after_settle": still_open,
        "connect_seconds": round(elapsed, 2),
        "generator_cpu": round(cpu_share(me0, me1), 3),
        "authenticated": bool(config.secret),
    }
    if before is not None and after is not None:
        result["server_rss_mb_before"] = round(before.rss / 2**20, 1)
        result["server_rss_mb_after"] = round(after.rss / 2**20, 1)
        result["server_rss_kb_per_connection"] = round((after.rss - before.rss) / n / 1024, 1)
    run.ui.log(
        f"S3: {n} idle connections, "
        f"{result.get('server_rss_kb_per_connection', '?')} KB server RSS each"
    )
    return result


async def connect_storm(run: Run) -> dict[str, Any]:
    """S4: N connections, each handshake (+JWT) + subscribe + one round trip."""
    config = run.config
    n = config.connections
    tokens = config.tokens(n, "connect")
    semaphore = asyncio.Semaphore(config.concurrency)
    durations: list[float] = []
    conns: list[Conn] = []
    failures: dict[str, int] = {}
    server0 = run.server_sample()
    me0 = run.me.sample()

    async def one(i: int) -> None:
        async with semaphore:
            began = time.monotonic()
            try:
                conn = await connect(
                    run.target,
                    run.adapter,
                    token=tokens[i % len(tokens)],
                    sampled=True,
                    sink=run.sink,
                )
                conns.append(conn)
                await conn.subscribe(run.adapter.channel(f"connect-{i % 100}"), next(run.ids))
                await conn.round_trip(next(run.ids))
            except Exception as exc:
                key = type(exc).__name__ + (f": {exc}"[:80] if str(exc) else "")
                failures[key] = failures.get(key, 0) + 1
                return
            durations.append(time.monotonic() - began)
            if len(durations) % 100 == 0:
                run.ui.status(f"S4: {len(durations)}/{n} connected")

    start = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(n)))
    wall = time.monotonic() - start
    server1 = run.server_sample()
    me1 = run.me.sample()
    await _close(conns)
    result: dict[str, Any] = {
        "scenario": "s4",
        "connections": n,
        "concurrency": config.concurrency,
        "succeeded": len(durations),
        "failures": failures,
        "connections_per_s": round(len(durations) / wall, 1) if wall else 0,
        "latency_ms": percentiles(durations),
        "generator_cpu": round(cpu_share(me0, me1), 3),
        "authenticated": bool(config.secret),
    }
    if server0 is not None and server1 is not None:
        result["server_cpu"] = round(cpu_share(server0, server1), 3)
        if durations:
            used = server1.cpu - server0.cpu
            result["server_us_per_connection"] = round(used / len(durations) * 1e6, 1)
    run.ui.log(
        f"S4: {result['connections_per_s']:,} connections/s, "
        f"p99 {result['latency_ms']['p99']} ms, failures {sum(failures.values())}"
    )
    return result


RUNNERS: dict[str, Callable[[Run], Awaitable[dict[str, Any]]]] = {
    "s1": fanout,
    "s2": chat,
    "s3": idle,
    "s4": connect_storm,
}


async def run_scenarios(config: BenchConfig, names: Sequence[str], ui: Ui) -> dict[str, Any]:
    """Run ``names`` one after the other against one server."""
    results: dict[str, Any] = {}
    for name in names:
        run = Run(config, ui)
        try:
            results[name] = await RUNNERS[name](run)
        except Exception as exc:  # one scenario failing must not lose the others
            ui.log(f"{name.upper()} failed: {type(exc).__name__}: {exc}")
            results[name] = {"scenario": name, "error": f"{type(exc).__name__}: {exc}"}
        await asyncio.sleep(0.5)
    return results
