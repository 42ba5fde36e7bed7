"""The memory engine: the conformance suite (in memory and with ``data_dir``),
plus durability: restarts, SIGKILL, bad data directories, idle-stream expiry."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from hubbub.core.history import HistoryOptions
from hubbub.core.protocol import ClientInfo, StreamPosition, parse_raw
from hubbub.engines.base import IDEMPOTENCY_TTL, Engine
from hubbub.engines.memory import HISTORY_FILE, MemoryEngine
from hubbub.errors import ConfigError, EngineUnavailable

from .conformance import KEEP, EngineConformance, Recorder, data, offsets, publish_many, values

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(params=["in-memory", "data-dir"])
async def engine(
    request: pytest.FixtureRequest, recorder: Recorder, tmp_path: Path
) -> AsyncIterator[Engine]:
    data_dir = tmp_path / "data" if request.param == "data-dir" else None
    eng = MemoryEngine(data_dir=data_dir)
    await eng.start(recorder)
    yield eng
    await eng.close()


class TestMemoryEngine(EngineConformance):
    pass


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def epochs(*names: str) -> Iterator[str]:
    yield from names


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "hubbub-data"


async def started(engine: MemoryEngine) -> MemoryEngine:
    await engine.start(Recorder())
    return engine


# ---------------------------------------------------------------- restarts


async def test_history_survives_a_restart(data_dir: Path) -> None:
    first = await started(MemoryEngine(data_dir=data_dir))
    who = ClientInfo(client="c1", user="u1", info=data({"name": "Ann"}))
    positions = [
        await first.publish("chat:a", data({"n": i}), info=who, history=KEEP) for i in range(1, 6)
    ]
    await publish_many(first, "chat:b", 3)
    before_a = await first.history("chat:a")
    never = await first.history("chat:never")
    await first.close()

    second = await started(MemoryEngine(data_dir=data_dir))
    after_a = await second.history("chat:a")
    assert after_a == before_a
    assert after_a.position == positions[-1]
    assert after_a.publications[0].info == who
    assert values(after_a.publications) == [{"n": i} for i in range(1, 6)]
    assert (await second.history("chat:b")).offset == 3
    # The epoch of a channel only ever read is remembered too.
    assert (await second.history("chat:never")).position == never.position
    # Offsets continue in the same epoch.
    pos = await second.publish("chat:a", data("next"), info=None, history=KEEP)
    assert pos == StreamPosition(offset=6, epoch=positions[0].epoch)
    await second.close()


async def test_without_data_dir_a_restart_gives_a_new_epoch() -> None:
    first = await started(MemoryEngine(epoch_factory=epochs("e1", "e2").__next__))
    assert (await first.publish("c", data(1), info=None, history=KEEP)).epoch == "e1"
    await first.close()
    second = await started(MemoryEngine(epoch_factory=epochs("e3").__next__))
    result = await second.history("c")
    assert result.position == StreamPosition(offset=0, epoch="e3")
    await second.close()


async def test_restore_honours_ttl_and_size(data_dir: Path) -> None:
    clock = FakeClock()
    first = await started(MemoryEngine(data_dir=data_dir, clock=clock))
    await publish_many(first, "short", 3, HistoryOptions(size=10, ttl=10))
    await publish_many(first, "small", 20, HistoryOptions(size=4, ttl=1000))
    epoch = (await first.history("short")).epoch
    await first.close()
    db = sqlite3.connect(data_dir / HISTORY_FILE)
    try:
        (rows,) = db.execute("SELECT count(*) FROM publications WHERE channel = 'small'").fetchone()
    finally:
        db.close()
    assert rows == 4  # trimmed in the publish transactions

    clock.now += 11
    second = await started(MemoryEngine(data_dir=data_dir, clock=clock))
    short = await second.history("short")
    assert short.publications == []
    assert short.position == StreamPosition(offset=3, epoch=epoch)
    assert offsets((await second.history("small")).publications) == [17, 18, 19, 20]
    await second.close()


async def test_ttl_shortened_later_expires_older_entries_no_later(data_dir: Path) -> None:
    clock = FakeClock()
    first = await started(MemoryEngine(data_dir=data_dir, clock=clock))
    await first.publish("c", data(1), info=None, history=HistoryOptions(size=10, ttl=100))
    await first.publish("c", data(2), info=None, history=HistoryOptions(size=10, ttl=5))
    await first.close()
    clock.now += 6
    second = await started(MemoryEngine(data_dir=data_dir, clock=clock))
    # Offset 1 would outlive offset 2: both go, so history never has a hole.
    assert (await second.history("c")).publications == []
    await second.close()


async def test_idle_streams_are_forgotten_after_meta_ttl(data_dir: Path) -> None:
    clock = FakeClock()
    names = epochs("e1", "e2", "e3", "e4")
    eng = await started(
        MemoryEngine(data_dir=data_dir, clock=clock, meta_ttl=100, epoch_factory=names.__next__)
    )
    await publish_many(eng, "idle", 2, HistoryOptions(size=10, ttl=10))
    await publish_many(eng, "long", 1, HistoryOptions(size=10, ttl=500))
    clock.now += 50
    await publish_many(eng, "busy", 1)
    assert eng.stream_count == 3
    clock.now += 60  # idle: 110 s old, past meta_ttl; busy: 60 s; long: history alive
    eng.sweep()
    assert eng.stream_count == 2
    # The next use starts a new stream: a new epoch at offset 0.
    assert (await eng.history("idle")).position == StreamPosition(offset=0, epoch="e4")
    assert (await eng.history("busy")).position == StreamPosition(offset=1, epoch="e3")
    assert (await eng.history("long")).position == StreamPosition(offset=1, epoch="e2")
    await eng.close()


async def test_idempotency_keys_survive_a_restart_and_expire(data_dir: Path) -> None:
    clock = FakeClock()
    first = await started(MemoryEngine(data_dir=data_dir, clock=clock))
    pos = await first.publish("c", data(1), info=None, history=KEEP, idempotency_key="k")
    await first.close()
    second = await started(MemoryEngine(data_dir=data_dir, clock=clock))
    again = await second.publish("c", data(1), info=None, history=KEEP, idempotency_key="k")
    assert again == pos
    clock.now += IDEMPOTENCY_TTL + 1
    later = await second.publish("c", data(1), info=None, history=KEEP, idempotency_key="k")
    assert later.offset == pos.offset + 1
    second.sweep()
    await second.close()
    db = sqlite3.connect(data_dir / HISTORY_FILE)
    try:
        rows = db.execute('SELECT key, "offset" FROM idempotency').fetchall()
    finally:
        db.close()
    assert rows == [("k", later.offset)]


async def test_lookup_drops_an_expired_stream_without_a_sweep() -> None:
    clock = FakeClock()
    eng = await started(
        MemoryEngine(clock=clock, meta_ttl=100, epoch_factory=epochs("e1", "e2").__next__)
    )
    await eng.publish("c", data(1), info=None, history=HistoryOptions(size=10, ttl=10))
    clock.now += 101
    pos = await eng.publish("c", data(2), info=None, history=KEEP)
    assert pos == StreamPosition(offset=1, epoch="e2")
    await eng.close()


async def test_a_failed_write_is_not_acknowledged(data_dir: Path) -> None:
    eng = await started(MemoryEngine(data_dir=data_dir))
    await eng.publish("c", data(1), info=None, history=KEEP)
    store = eng._store
    assert store is not None
    store._conn.close()
    with pytest.raises(EngineUnavailable):
        await eng.publish("c", data(2), info=None, history=KEEP)
    assert await eng.ready() is False
    assert (await eng.history("c")).offset == 1
    eng._store = None
    await eng.close()


# ---------------------------------------------------------------- bad data dirs


@pytest.fixture
def corrupt_dir(data_dir: Path) -> Path:
    data_dir.mkdir()
    (data_dir / HISTORY_FILE).write_bytes(b"this is not sqlite " * 500)
    return data_dir


async def test_corrupt_file_is_a_config_error(corrupt_dir: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        await MemoryEngine(data_dir=corrupt_dir).start(Recorder())
    assert str(corrupt_dir / HISTORY_FILE) in str(caught.value)
    assert "not a database" in str(caught.value)


@pytest.fixture
def blocked_dir(tmp_path: Path) -> Path:
    """A data_dir that cannot be created, even by root: its parent is a file."""
    blocker = tmp_path / "file"
    blocker.write_text("a regular file, not a directory")
    return blocker / "data"


async def test_uncreatable_data_dir_is_a_config_error(blocked_dir: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        await MemoryEngine(data_dir=blocked_dir).start(Recorder())
    assert str(blocked_dir) in str(caught.value)
    assert "cannot create directory" in str(caught.value)


@pytest.fixture
def read_only_dir(data_dir: Path) -> Iterator[Path]:
    if not hasattr(os, "geteuid") or os.geteuid() == 0:
        pytest.skip("root ignores directory permissions (see test_uncreatable_data_dir)")
    data_dir.mkdir()
    data_dir.chmod(0o500)
    yield data_dir
    data_dir.chmod(0o700)


async def test_read_only_data_dir_is_a_config_error(read_only_dir: Path) -> None:
    with pytest.raises(ConfigError, match="not writable") as caught:
        await MemoryEngine(data_dir=read_only_dir).start(Recorder())
    assert str(read_only_dir) in str(caught.value)


async def test_second_engine_on_the_same_dir_is_refused(data_dir: Path) -> None:
    first = await started(MemoryEngine(data_dir=data_dir))
    with pytest.raises(ConfigError, match="another hubbub process") as caught:
        await MemoryEngine(data_dir=data_dir, lock_timeout=0.05).start(Recorder())
    assert str(data_dir / HISTORY_FILE) in str(caught.value)
    await first.close()
    second = await started(MemoryEngine(data_dir=data_dir))
    await second.close()


async def test_not_running_is_unavailable() -> None:
    eng = MemoryEngine()
    with pytest.raises(EngineUnavailable):
        await eng.publish("c", data(1), info=None, history=KEEP)
    await eng.start(Recorder())
    await eng.close()
    assert await eng.ready() is False
    with pytest.raises(EngineUnavailable):
        await eng.history("c")


# ---------------------------------------------------------------- crash


CRASH_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from hubbub.core.history import HistoryOptions
    from hubbub.core.protocol import raw_json
    from hubbub.engines.memory import MemoryEngine

    class Events:
        def on_publication(self, *args): pass
        def on_join(self, *args): pass
        def on_leave(self, *args): pass
        def on_control(self, *args): pass
        def on_engine_state(self, *args): pass

    async def main():
        engine = MemoryEngine(data_dir=sys.argv[1], sweep_interval=0)
        await engine.start(Events())
        keep = HistoryOptions(size=1_000_000, ttl=3600)
        n = 0
        while True:
            n += 1
            pos = await engine.publish("crash", raw_json({"n": n}), info=None, history=keep)
            print(pos.offset, pos.epoch, flush=True)

    asyncio.run(main())
    """
)


def publish_until_killed(data_dir: Path, count: int) -> list[tuple[int, str]]:
    """Run CRASH_CHILD, SIGKILL it after ``count`` acks; every ack it printed."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    child = subprocess.Popen(
        [sys.executable, "-c", CRASH_CHILD, str(data_dir)],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert child.stdout is not None
    acked: list[tuple[int, str]] = []
    try:
        while len(acked) < count:
            line = child.stdout.readline()
            assert line, f"child exited early with {child.wait()}"
            offset, epoch = line.split()
            acked.append((int(offset), epoch))
        os.kill(child.pid, signal.SIGKILL)
        # Lines still in the pipe were acknowledged too.
        for line in child.stdout:
            if line.endswith("\n"):
                offset, epoch = line.split()
                acked.append((int(offset), epoch))
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    return acked


@pytest.fixture
def acked_before_kill(data_dir: Path) -> list[tuple[int, str]]:
    return publish_until_killed(data_dir, 3000)


async def test_acknowledged_publishes_survive_sigkill(
    data_dir: Path, acked_before_kill: list[tuple[int, str]]
) -> None:
    acked = acked_before_kill
    eng = await started(MemoryEngine(data_dir=data_dir))
    result = await eng.history("crash")
    await eng.close()
    kept = {pub.offset: parse_raw(pub.data) for pub in result.publications}
    assert {epoch for _, epoch in acked} == {result.epoch}
    assert result.offset >= acked[-1][0]
    for offset, _ in acked:
        assert kept[offset] == {"n": offset}
    assert offsets(result.publications) == list(range(1, result.offset + 1))


async def test_crash_test_child_really_runs(data_dir: Path) -> None:
    """Guard: the child script above must work when run normally for a moment."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CRASH_CHILD,
        str(data_dir),
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    first = await asyncio.wait_for(proc.stdout.readline(), 30)
    proc.kill()
    await proc.wait()
    assert first.split()[0] == b"1"
