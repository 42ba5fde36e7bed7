"""The side-by-side benchmark: every peer, the same scenarios, one command.

    python -m benchmarks.run --quick          # < 5 minutes
    python -m benchmarks.run                  # full, < 20 minutes
    python -m benchmarks.run --peers websockets,hubbub-memory --scenarios s1

Each peer is started as its own process on a free port, driven by the
``hubbub bench`` generator (in this process), and stopped. Peers that need
Redis get a private ``redis-server`` on a free port (never a shared one).
Results go to ``benchmarks/results/<date>-<mode>.{json,md}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from hubbub.bench.report import RichUi, print_report
from hubbub.bench.scenarios import BenchConfig, run_scenarios
from hubbub.bench.stats import machine_info

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SECRET = "bench-secret-bench-secret-bench-secret"  # benchmarks/hubbub.toml
PY = sys.executable


@dataclass
class Peer:
    name: str
    title: str
    protocol: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    redis: bool = False
    authenticated: bool = False
    packages: tuple[str, ...] = ()


def uvicorn_cmd(app: str) -> list[str]:
    return [PY, "-m", "uvicorn", app, "--loop", "uvloop", "--log-level", "warning", "--port"]


def hubbub_cmd(*extra: str) -> list[str]:
    return [PY, "-m", "benchmarks.peers.hubbub_server", *extra, "--port"]


PEERS: dict[str, Peer] = {
    p.name: p
    for p in [
        Peer(
            "fastapi",
            "FastAPI tutorial ConnectionManager (uvicorn)",
            "mini",
            uvicorn_cmd("benchmarks.peers.fastapi_manager:app"),
            packages=("fastapi",),
        ),
        Peer(
            "channels-memory",
            "Django Channels, in-memory layer (uvicorn)",
            "mini",
            uvicorn_cmd("benchmarks.peers.channels_app:application"),
            env={"CHANNEL_LAYER": "memory"},
            packages=("channels",),
        ),
        Peer(
            "channels-redis",
            "Django Channels, channels_redis (uvicorn)",
            "mini",
            uvicorn_cmd("benchmarks.peers.channels_app:application"),
            env={"CHANNEL_LAYER": "redis"},
            redis=True,
            packages=("channels", "channels-redis"),
        ),
        Peer(
            "socketio",
            "python-socketio with rooms (uvicorn)",
            "socketio",
            uvicorn_cmd("benchmarks.peers.socketio_rooms:app"),
            packages=("python-socketio",),
        ),
        Peer(
            "websockets",
            "websockets + broadcast() (uvloop)",
            "mini",
            [PY, "-m", "benchmarks.peers.websockets_broadcast", "--port"],
            packages=("websockets",),
        ),
        Peer(
            "hubbub-memory",
            "hubbub, memory engine (direct writes, JWT)",
            "hubbub",
            hubbub_cmd(),
            authenticated=True,
            packages=("hubbub", "uvicorn", "websockets"),
        ),
        Peer(
            "hubbub-redis-2w",
            "hubbub, Redis engine, 2 workers (JWT)",
            "hubbub",
            hubbub_cmd("--workers", "2", "--engine", "{redis}"),
            redis=True,
            authenticated=True,
            packages=("hubbub", "uvicorn", "redis"),
        ),
        # the uvicorn WebSocket implementations under hubbub (--ws-compare)
        Peer(
            "hubbub-ws-wsproto",
            "hubbub, memory, uvicorn ws=wsproto",
            "hubbub",
            hubbub_cmd("--ws", "wsproto"),
            authenticated=True,
        ),
        Peer(
            "hubbub-ws-websockets",
            "hubbub, memory, uvicorn ws=websockets",
            "hubbub",
            hubbub_cmd("--ws", "websockets"),
            authenticated=True,
        ),
        Peer(
            "hubbub-ws-websockets-sansio",
            "hubbub, memory, uvicorn ws=websockets-sansio",
            "hubbub",
            hubbub_cmd("--ws", "websockets-sansio"),
            authenticated=True,
        ),
    ]
}
DEFAULT_PEERS = [
    "fastapi", "channels-memory", "channels-redis", "socketio", "websockets",
    "hubbub-memory", "hubbub-redis-2w",
]  # fmt: skip
WS_COMPARE = [
    "hubbub-memory",
    "hubbub-ws-wsproto",
    "hubbub-ws-websockets",
    "hubbub-ws-websockets-sansio",
]


@dataclass(frozen=True)
class Mode:
    name: str
    s1_sizes: tuple[int, ...]
    s1_rates: dict[int, list[float]]  # per subscriber count: publications/s
    s2_rates: list[float]
    s3_connections: int
    s4_connections: int
    duration: float
    drain: float


QUICK = Mode(
    "quick",
    s1_sizes=(1000,),
    s1_rates={1000: [10, 20, 40, 60, 80, 100]},
    s2_rates=[500, 1000, 2000, 3000],
    s3_connections=2000,
    s4_connections=1000,
    duration=2.0,
    drain=2.0,
)
FULL = Mode(
    "full",
    s1_sizes=(1000, 5000),
    s1_rates={
        1000: [10, 20, 30, 40, 50, 60, 80, 100, 120, 160, 200, 240, 280],
        5000: [2, 4, 6, 8, 12, 16, 20, 30, 40],
    },
    s2_rates=[500, 1000, 2000, 3000, 4000, 6000],
    s3_connections=5000,
    s4_connections=2000,
    duration=4.0,
    drain=3.0,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"not listening on {port} after {timeout} s")


@contextlib.contextmanager
def redis_server() -> Iterator[tuple[str, int]]:
    """A private redis-server on a free port: (url, pid)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="hubbub-bench-redis-") as directory:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", directory],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_port(port, process)
            yield f"redis://127.0.0.1:{port}/0", process.pid
        finally:
            process.terminate()
            process.wait(10)


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.flushall()
    client.close()


@contextlib.contextmanager
def running(peer: Peer, redis_url: str | None, log: Path) -> Iterator[tuple[int, int]]:
    """Start ``peer`` on a free port: (port, pid)."""
    port = free_port()
    command = [c.replace("{redis}", redis_url or "") for c in peer.command] + [str(port)]
    env = {**os.environ, **peer.env, "PYTHONPATH": str(ROOT)}
    if redis_url:
        env["REDIS_URL"] = redis_url
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True
        )
    try:
        wait_port(port, process)
        time.sleep(1.0 if peer.name.endswith("2w") else 0.3)  # let every worker start
        yield port, process.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def versions() -> dict[str, str]:
    names = ["hubbub", "uvicorn", "websockets", "wsproto", "uvloop", "msgspec", "starlette",
             "fastapi", "channels", "channels-redis", "django", "python-socketio",
             "python-engineio", "redis", "psutil"]  # fmt: skip
    found: dict[str, str] = {}
    for name in names:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    with contextlib.suppress(Exception):
        out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True)
        found["redis-server"] = out.stdout.split()[2].removeprefix("v=")
    return found


def scenario_configs(mode: Mode, peer: Peer, scenarios: list[str]) -> list[tuple[str, BenchConfig]]:
    base = BenchConfig(
        protocol=peer.protocol,
        secret=SECRET if peer.authenticated else None,
        duration=mode.duration,
        drain=mode.drain,
    )
    plans: list[tuple[str, BenchConfig]] = []
    if "s1" in scenarios:
        for n in mode.s1_sizes:
            plans.append((f"s1-{n}", replace(base, connections=n, rates=mode.s1_rates[n])))
    if "s2" in scenarios:
        plans.append(("s2", replace(base, rates=mode.s2_rates)))
    if "s3" in scenarios:
        plans.append(("s3", replace(base, connections=mode.s3_connections)))
    if "s4" in scenarios:
        plans.append(("s4", replace(base, connections=mode.s4_connections)))
    return plans


def run_peer(
    peer: Peer, mode: Mode, scenarios: list[str], console: Console, log: Path
) -> dict[str, Any]:
    missing = [p for p in peer.packages if not _installed(p)]
    if missing:
        return {"skipped": f"not installed: {', '.join(missing)}"}
    if peer.name == "hubbub-redis-2w":
        reason = redis_engine_unusable()
        if reason:
            return {"skipped": reason}
    results: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        redis_url = redis_pid = None
        if peer.redis:
            try:
                redis_url, redis_pid = stack.enter_context(redis_server())
            except RuntimeError as exc:
                return {"skipped": str(exc)}
        for key, config in scenario_configs(mode, peer, scenarios):
            if redis_url:
                flush_redis(redis_url)
            # a fresh server per scenario: S3's RSS baseline is not inflated by S1
            try:
                with running(peer, redis_url, log) as (port, pid):
                    config.url = f"ws://127.0.0.1:{port}/ws"
                    config.server_pids = [pid] + ([redis_pid] if redis_pid else [])
                    name = key.split("-")[0]
                    console.rule(f"{peer.name}: {key}")
                    with RichUi(console) as ui:
                        outcome = _loop_run(run_scenarios(config, [name], ui))
                    results[key] = outcome[name]
            except RuntimeError as exc:
                results[key] = {"error": f"server did not start: {exc}"}
    return results


def _loop_run(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def _installed(package: str) -> bool:
    try:
        importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def redis_engine_unusable() -> str | None:
    """Why hubbub's Redis engine cannot be benchmarked yet, or None."""
    try:
        from hubbub.engines import create_engine

        create_engine("redis://127.0.0.1:1/0")
    except Exception as exc:
        return f"hubbub Redis engine not usable yet: {type(exc).__name__}: {exc}"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the < 5 minute mode")
    parser.add_argument(
        "--peers",
        default=",".join(DEFAULT_PEERS),
        help=f"comma-separated, from: {', '.join(PEERS)}",
    )
    parser.add_argument(
        "--ws-compare",
        action="store_true",
        help="only hubbub: its direct writes against uvicorn's wsproto, websockets "
        "and websockets-sansio implementations (S1)",
    )
    parser.add_argument("--scenarios", default="s1,s2,s3,s4")
    parser.add_argument("--out", default=None, help="results file stem (default: date-mode)")
    args = parser.parse_args()
    mode = QUICK if args.quick else FULL
    peers = WS_COMPARE if args.ws_compare else [p.strip() for p in args.peers.split(",")]
    scenarios = ["s1"] if args.ws_compare else args.scenarios.split(",")
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        parser.error(f"unknown peer(s) {unknown}")
    console = Console()
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC)
    stem = args.out or f"{stamp:%Y%m%d-%H%M}-{'ws-compare' if args.ws_compare else mode.name}"
    log = RESULTS / f"{stem}.servers.log"
    document: dict[str, Any] = {
        "date": stamp.isoformat(timespec="seconds"),
        "command": " ".join(["python -m benchmarks.run", *sys.argv[1:]]),
        "mode": mode.name,
        "machine": {**machine_info(), "load_average_at_start": os.getloadavg()},
        "versions": versions(),
        "peers": {},
    }
    started = time.monotonic()
    for name in peers:
        peer = PEERS[name]
        console.rule(f"[bold]{peer.title}")
        result = run_peer(peer, mode, scenarios, console, log)
        document["peers"][name] = {"title": peer.title, "results": result}
        if "skipped" in result:
            console.print(f"[yellow]skipped: {result['skipped']}[/]")
        else:
            print_report(console, result)
        (RESULTS / f"{stem}.json").write_text(json.dumps(document, indent=2))
    document["seconds"] = round(time.monotonic() - started)
    document["machine"]["load_average_at_end"] = os.getloadavg()
    (RESULTS / f"{stem}.json").write_text(json.dumps(document, indent=2))
    from benchmarks.summary import markdown

    (RESULTS / f"{stem}.md").write_text(markdown(document))
    console.print(f"results: {RESULTS / stem}.json and .md ({document['seconds']} s)")


if __name__ == "__main__":
    main()
