"""Fan-out through Redis vs in one process: 1,000 subscribers, one publisher.

    .venv/bin/python -m benchmarks.redis_fanout                 # 20,40 pub/s, 10 s each
    .venv/bin/python -m benchmarks.redis_fanout --rates 10,20,40,80 --duration 10

Two setups, each driven by ``hubbub bench --scenario s1`` (1,000 subscribers on
one channel, one publisher at fixed rates, latency from a timestamp in the
payload, loss and duplicate checks):

* ``memory``: one ``hubbub serve`` node, the memory engine;
* ``redis x2``: ``hubbub serve --workers 2 --engine redis://…``: two hub nodes
  (worker processes) on one private redis-server, the subscribers split between
  them by the kernel (the split is read from each node's ``/api/info``).

For the Redis setup it also counts what Redis did per publication
(``INFO commandstats`` / ``INFO stats`` deltas and ``PUBSUB NUMSUB``) to show
that fan-out costs one pub/sub message per *node*, not per subscriber.
The redis-server is private (free port, no persistence); the shared one on
6379 is never touched.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import redis

from benchmarks.run import free_port, redis_server

ROOT = Path(__file__).resolve().parent.parent
HUBBUB = str(Path(sys.executable).with_name("hubbub"))
CONFIG = ROOT / "benchmarks" / "hubbub.toml"
SECRET = "bench-secret-bench-secret-bench-secret"  # benchmarks/hubbub.toml
API_KEY = "bench-api-key"
CHANNEL_NAMESPACE = "bench"


@contextlib.contextmanager
def hubbub_serve(*args: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    env = {**os.environ, "HUBBUB_LOG_LEVEL": "warning"}
    process = subprocess.Popen(
        [HUBBUB, "serve", "--config", str(CONFIG), "--port", str(port),
         "--log-level", "warning", *args],
        env=env,
        start_new_session=True,
    )  # fmt: skip
    try:
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=0.5).status_code == 200:
                    break
            time.sleep(0.05)
        else:
            raise RuntimeError("hubbub serve did not become ready")
        yield process, port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def server_pids(process: subprocess.Popen[bytes]) -> str:
    """The server's pid: ``hubbub bench`` adds its children (the workers) itself."""
    return str(process.pid)


def nodes_split(port: int, seconds: float) -> dict[str, int]:
    """Each node's connection count, sampled from /api/info while the bench runs."""
    best: dict[str, int] = {}
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=2) as http:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                info = http.get(
                    f"http://127.0.0.1:{port}/api/info",
                    headers={"Authorization": f"apikey {API_KEY}", "Connection": "close"},
                ).json()
                best[info["node"]] = max(best.get(info["node"], 0), info["connections"])
            time.sleep(0.05)
    return best


def bench(port: int, pids: str, rates: str, duration: float, n: int) -> dict[str, Any]:
    out = subprocess.run(
        [HUBBUB, "bench", "--url", f"ws://127.0.0.1:{port}/ws", "--scenario", "s1",
         "-n", str(n), "--rates", rates, "--duration", str(duration),
         "--fixed", "20000", "--secret", SECRET, "--namespace", CHANNEL_NAMESPACE,
         "--server-pid", pids, "--json"],
        capture_output=True,
        text=True,
        check=True,
    )  # fmt: skip
    start = out.stdout.index("{")
    result: dict[str, Any] = json.loads(out.stdout[start:])
    return result


async def probe(port: int, client: redis.Redis, subscribers: int, publications: int) -> Any:
    """What Redis does per publication with ``subscribers`` spread over the nodes:
    reset Redis' counters, publish through the HTTP API, wait until every
    subscriber got everything, read the counters."""
    import websockets

    from hubbub.auth import issue_token

    channel = f"{CHANNEL_NAMESPACE}:probe"
    url = f"ws://127.0.0.1:{port}/ws?token={issue_token(SECRET, 'probe')}"
    async with contextlib.AsyncExitStack() as stack:
        conns = [
            await stack.enter_async_context(websockets.connect(url)) for _ in range(subscribers)
        ]
        for ws in conns:
            await ws.recv()  # welcome
            await ws.send(json.dumps({"type": "subscribe", "id": 1, "channel": channel}))
            await ws.recv()  # ack
        numsub = client.execute_command("PUBSUB", "NUMSUB", f"hubbub:{{{channel}}}")[1]
        client.config_resetstat()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for i in range(publications):
                reply = await http.post(
                    "/api/publish",
                    json={"channel": channel, "data": {"i": i}},
                    headers={"Authorization": f"apikey {API_KEY}"},
                )
                reply.raise_for_status()
        for ws in conns:
            for _ in range(publications):
                frame = json.loads(await ws.recv())
                assert frame["type"] == "message", frame
        stats: dict[str, Any] = client.info("stats")
        commands: dict[str, Any] = client.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in commands.items()}
    return {
        "subscribers": subscribers,
        "nodes_subscribed_in_redis (PUBSUB NUMSUB)": int(numsub),
        "publications": publications,
        "redis_commands": calls,
        "pubsub_messages_sent_per_publication": round(
            int(stats.get("total_pubsub_messages", 0)) / publications, 2
        )
        if "total_pubsub_messages" in stats
        else None,
        "redis_net_output_bytes_per_publication": round(
            int(stats["total_net_output_bytes"]) / publications
        ),
    }


def steps(result: dict[str, Any]) -> list[dict[str, Any]]:
    s1 = result["results"]["s1"]
    rows = []
    for step in [*s1["steps"], {**s1["fixed"], "fixed": True}]:
        rows.append(
            {
                "offered_pub_per_s": step["rate"],
                "deliveries_per_s": round(step["delivered_rate"]),
                "p50_ms": step["latency_ms"].get("p50"),
                "p99_ms": step["latency_ms"].get("p99"),
                "lost": step["lost"],
                "dup": step["duplicated"],
                "server_cpu_us_per_delivery": step.get("server_us_per_delivery"),
                "server_rss_mb": step.get("server_rss_mb"),
                "step": "fixed (CPU per delivery)" if step.get("fixed") else "rate",
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="20,40", help="publications/s per step")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per step")
    parser.add_argument("-n", type=int, default=1000, help="subscribers")
    parser.add_argument("--json", dest="json_out", type=Path, default=None)
    args = parser.parse_args()

    report: dict[str, Any] = {"subscribers": args.n, "rates": args.rates}
    with hubbub_serve() as (process, port):
        print("memory engine, 1 node ...", flush=True)
        result = bench(port, server_pids(process), args.rates, args.duration, args.n)
        report["memory"] = {"steps": steps(result)}

    with (
        redis_server() as (redis_url, _),
        hubbub_serve("--engine", redis_url, "--workers", "2") as (
            process,
            port,
        ),
    ):
        print("redis engine, 2 nodes (--workers 2) ...", flush=True)
        client = redis.Redis.from_url(redis_url)
        split: dict[str, int] = {}
        sampler = threading.Thread(
            target=lambda: split.update(nodes_split(port, 20.0)), daemon=True
        )
        sampler.start()
        result = bench(port, server_pids(process), args.rates, args.duration, args.n)
        sampler.join()
        report["redis"] = {
            "steps": steps(result),
            "subscribers_per_node": sorted(split.values()),
            "cost_in_redis": asyncio.run(probe(port, client, 200, 100)),
        }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json_out:
        args.json_out.write_text(text + "\n")


if __name__ == "__main__":
    main()
