"""Several nodes on one Redis behave as one hub, over real sockets.

In-process nodes (each a ``Hub(engine="redis://…")`` under its own uvicorn) and real
``hubbub serve --engine redis://… [--workers 2]`` subprocesses, all on a private
redis-server started on a free port (never the shared one on 6379).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cluster import API_KEY, hubbub_serve, nodes, token
from redis_server import RedisServer, running_redis
from support import Client, client, publish_paced, read_across_reconnects

pytestmark = pytest.mark.redis

CHAT = {"namespaces": {"chat": {"history_size": 5000, "history_ttl": 600}}}
LOOSE = {"rate_limit": 10_000, "rate_burst": 10_000}


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


async def next_data(c: Client, channel: str) -> Any:
    message = await c.next("message")
    assert message["channel"] == channel, message
    return message["data"]


async def test_publications_cross_nodes(redis: RedisServer) -> None:
    async with (
        nodes(redis.url, 3, **CHAT) as (a, b, c),
        client(a.address, token=token("alice")) as on_a,
        client(b.address, token=token("bob")) as on_b,
    ):
        await on_a.ok("subscribe", channel="chat:lobby")
        await on_b.ok("subscribe", channel="chat:lobby")
        # A client on B publishes: both nodes' subscribers get it, with one offset.
        ack = await on_b.ok("publish", channel="chat:lobby", data={"from": "bob"})
        for c_ in (on_a, on_b):
            message = await c_.next("message")
            assert (message["data"], message["offset"]) == ({"from": "bob"}, ack["offset"])
            assert message["info"]["user"] == "bob"
        # The app on node C publishes.
        position = await c.hub.publish("chat:lobby", {"from": "server C"})
        assert position.offset == ack["offset"] + 1
        assert await next_data(on_a, "chat:lobby") == {"from": "server C"}
        assert await next_data(on_b, "chat:lobby") == {"from": "server C"}
        # Personal channel: alice is on A; notifications come from B and from C.
        await b.hub.publish("#alice", {"note": 1})
        await c.hub.publish("#alice", {"note": 2})
        assert await next_data(on_a, "#alice") == {"note": 1}
        assert await next_data(on_a, "#alice") == {"note": 2}
        assert not [f for f in on_b.frames if f.get("channel") == "#alice"]


async def test_presence_join_leave_and_disconnect_user_across_nodes(redis: RedisServer) -> None:
    async with (
        nodes(redis.url, 3) as (a, b, c),
        client(a.address, token=token("alice", info={"name": "Alice"})) as alice,
    ):
        await alice.ok("subscribe", channel="room:blue")
        async with (
            client(b.address, token=token("bob")) as bob,
            client(c.address, token=token("carol")) as carol,
        ):
            await bob.ok("subscribe", channel="room:blue")
            join = await alice.next("join")
            assert join["info"] == {"client": bob.welcome["client"], "user": "bob"}
            # Presence asked on C (carol is not even subscribed) sees A's and B's clients.
            clients = (await carol.ok("presence", channel="room:blue"))["clients"]
            assert {k: v["user"] for k, v in clients.items()} == {
                alice.welcome["client"]: "alice",
                bob.welcome["client"]: "bob",
            }
            assert clients[alice.welcome["client"]]["info"] == {"name": "Alice"}
            stats = await carol.ok("presence_stats", channel="room:blue")
            assert (stats["num_clients"], stats["num_users"]) == (2, 2)
            await bob.ok("unsubscribe", channel="room:blue")
            leave = await alice.next("leave")
            assert leave["info"]["client"] == bob.welcome["client"]
        # alice has a second connection, on B; the API of node C disconnects her everywhere.
        async with (
            client(b.address, token=token("alice")) as alice2,
            httpx.AsyncClient(base_url=c.http) as http,
        ):
            reply = await http.post(
                "/api/users/alice/disconnect", headers={"Authorization": f"apikey {API_KEY}"}
            )
            assert reply.status_code == 200, reply.text
            assert await alice.closed() == 4003
            assert await alice2.closed() == 4003


async def test_exact_recovery_when_reconnecting_to_another_node(redis: RedisServer) -> None:
    """Like tests/test_recovery.py, but each reconnect goes to another node and the
    two publishers publish on two other nodes: every offset exactly once, in order."""
    channel = "chat:recovery"
    per_publisher = 500
    async with nodes(redis.url, 3, **CHAT, **LOOSE) as cluster:
        seen, hops = await read_across_reconnects(
            [node.address for node in cluster],
            lambda: token("reader"),
            channel,
            total=2 * (per_publisher + 1),
            publishers=lambda: asyncio.gather(
                publish_paced(cluster[1].address, token("w1"), channel, per_publisher),
                publish_paced(cluster[2].address, token("w2"), channel, per_publisher),
            ),
            rng=random.Random(11),
        )
    assert hops >= 3
    assert seen == list(range(1, 2 * (per_publisher + 1) + 1))


# ---------------------------------------------------------------- hubbub serve


async def _info(address: str, http: httpx.AsyncClient) -> dict[str, Any]:
    # A new TCP connection per request, so that either worker may answer.
    reply = await http.get(
        f"http://{address}/api/info",
        headers={"Authorization": f"apikey {API_KEY}", "Connection": "close"},
    )
    assert reply.status_code == 200, reply.text
    result: dict[str, Any] = reply.json()
    return result


async def _connections_by_worker(address: str, expected: int) -> dict[str, int]:
    """Each worker's connection count, learned by asking /api/info until both answered
    and the counts add up."""
    workers: dict[str, int] = {}
    async with httpx.AsyncClient(timeout=2) as http:
        for _ in range(200):
            info = await _info(address, http)
            workers[info["node"]] = info["connections"]
            if len(workers) >= 2 and sum(workers.values()) == expected:
                break
    return workers


@pytest.mark.slow
async def test_hubbub_serve_workers_2_broadcasts_to_both_workers(
    redis: RedisServer, tmp_path: Path
) -> None:
    with hubbub_serve(
        "--engine", redis.url, "--workers", "2", log_dir=tmp_path, wait="/ready"
    ) as node:
        async with contextlib.AsyncExitStack() as stack:
            clients: list[Client] = []
            workers: dict[str, int] = {}

            async def join() -> Client:
                c = await stack.enter_async_context(client(node.address, token=token("u")))
                await c.ok("subscribe", channel="chat:all")
                return c

            # The workers share one listening socket and whichever is idle accepts; connect
            # in bursts (keeping one worker busy) until both have clients.
            while len(clients) < 200 and (len(workers) < 2 or 0 in workers.values()):
                clients += await asyncio.gather(*(join() for _ in range(20)))
                workers = await _connections_by_worker(node.address, len(clients))
            assert len(workers) == 2, f"one worker took every connection: {workers}"
            assert all(count > 0 for count in workers.values()), workers
            assert sum(workers.values()) == len(clients)
            assert len({c.welcome["client"] for c in clients}) == len(clients)
            # One publish (through either worker) reaches every client on both workers.
            ack = await clients[0].ok("publish", channel="chat:all", data="to everyone")
            for c in clients:
                message = await c.next("message")
                assert (message["data"], message["offset"]) == ("to everyone", ack["offset"])
            # And the server API of whichever worker answers publishes to all as well.
            async with httpx.AsyncClient(timeout=5) as http:
                reply = await http.post(
                    f"http://{node.address}/api/publish",
                    json={"channel": "chat:all", "data": "via api"},
                    headers={"Authorization": f"apikey {API_KEY}"},
                )
                assert reply.status_code == 200, reply.text
            for c in clients:
                assert (await c.next("message"))["data"] == "via api"


@pytest.mark.slow
async def test_two_hubbub_serve_nodes_and_an_in_process_one(
    redis: RedisServer, tmp_path: Path
) -> None:
    with (
        hubbub_serve("--engine", redis.url, log_dir=tmp_path, wait="/ready") as x,
        hubbub_serve("--engine", redis.url, log_dir=tmp_path, wait="/ready") as y,
    ):
        async with (
            nodes(redis.url, 1) as (z,),
            client(x.address, token=token("alice")) as on_x,
            client(y.address, token=token("bob")) as on_y,
        ):
            await on_x.ok("subscribe", channel="chat:lobby")
            await on_y.ok("subscribe", channel="chat:lobby")
            await on_y.ok("publish", channel="chat:lobby", data="from y")
            assert await next_data(on_x, "chat:lobby") == "from y"
            assert await next_data(on_y, "chat:lobby") == "from y"
            await z.hub.publish("#alice", "from z")
            assert await next_data(on_x, "#alice") == "from z"
            await z.hub.disconnect_user("bob")
            assert await on_y.closed() == 4003


async def test_fan_out_costs_one_redis_message_per_node(redis: RedisServer) -> None:
    """However many subscribers a node has, Redis sends it each publication once."""
    from redis.asyncio import Redis

    quiet = {"namespaces": {"wide": {"join_leave": False}}}  # no join PUBLISHes
    async with nodes(redis.url, 2, **quiet) as (a, b), contextlib.AsyncExitStack() as stack:
        subscribers = []
        for i in range(20):
            c = await stack.enter_async_context(client((a, b)[i % 2].address, token=token(f"u{i}")))
            await c.ok("subscribe", channel="wide:x")
            subscribers.append(c)
        control = Redis.from_url(redis.url)
        try:
            (_, nodes_subscribed) = await control.execute_command(
                "PUBSUB", "NUMSUB", "hubbub:{wide:x}"
            )
            assert nodes_subscribed == 2
            await a.hub.publish("wide:warm-up", 0)  # loads the publish script into Redis
            await control.config_resetstat()
            for i in range(10):
                await a.hub.publish("wide:x", i)
            for c in subscribers:
                assert [(await c.next("message"))["data"] for _ in range(10)] == list(range(10))
            stats = await control.info("commandstats")
        finally:
            await control.aclose()
        # One script run and one PUBLISH per publication: Redis delivers it to each of
        # the two subscribed nodes, which fan out to their 10 local subscribers each.
        assert stats["cmdstat_evalsha"]["calls"] == 10, stats
        assert stats["cmdstat_publish"]["calls"] == 10
