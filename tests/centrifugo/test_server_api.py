"""Centrifugo's HTTP server API, driven by ``cent`` (pycent, from PyPI) and raw HTTP."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from hubbub.hub import Hub
from support import client, require

KEY = "test-api-key"
CHANNEL = "chat:api"


@pytest.fixture
def hub_options() -> dict[str, Any]:
    return {"namespaces": {"chat": {"history_size": 100, "history_ttl": 600}}}


@pytest.mark.parametrize("prefix", ["/api", "/centrifugo/api"])
async def test_pycent_against_hubbub(
    server: str, hub: Hub, make_token: Callable[..., str], prefix: str
) -> None:
    require(importlib.util.find_spec("cent") is not None, "cent (pycent) is not installed")
    from cent import (
        AsyncClient,
        BroadcastRequest,
        ChannelsRequest,
        DisconnectRequest,
        HistoryRequest,
        InfoRequest,
        PresenceRequest,
        PresenceStatsRequest,
        PublishRequest,
        UnsubscribeRequest,
    )

    async with client(server, token=make_token("ann")) as ann:
        await ann.ok("subscribe", channel=CHANNEL)
        async with AsyncClient(f"http://{server}{prefix}", KEY) as cent:
            published = await cent.publish(PublishRequest(channel=CHANNEL, data={"n": 1}))
            message = await ann.next("message")
            assert (message["data"], message["offset"]) == ({"n": 1}, published.offset)
            assert message["epoch"] == published.epoch

            broadcast = await cent.broadcast(
                BroadcastRequest(channels=[CHANNEL, "chat:other"], data={"n": 2})
            )
            assert [r.result.offset for r in broadcast.responses] == [published.offset + 1, 1]

            history = await cent.history(HistoryRequest(channel=CHANNEL, limit=-1))
            assert [p.data for p in history.publications] == [{"n": 1}, {"n": 2}]
            assert (history.offset, history.epoch) == (published.offset + 1, published.epoch)

            presence = await cent.presence(PresenceRequest(channel=CHANNEL))
            assert [c.user for c in presence.presence.values()] == ["ann"]
            stats = await cent.presence_stats(PresenceStatsRequest(channel=CHANNEL))
            assert (stats.num_clients, stats.num_users) == (1, 1)

            channels = await cent.channels(ChannelsRequest(pattern="chat:*"))
            assert channels.channels[CHANNEL].num_clients == 1

            info = await cent.info(InfoRequest())
            assert info.nodes[0].num_clients == 1

            await cent.unsubscribe(UnsubscribeRequest(user="ann", channel=CHANNEL))
            gone = await ann.next("unsubscribe")
            assert gone["channel"] == CHANNEL
            for _ in range(100):  # presence is removed right after the push
                presence = await cent.presence(PresenceRequest(channel=CHANNEL))
                if not presence.presence:
                    break
                await asyncio.sleep(0.01)
            assert presence.presence == {}

            await cent.disconnect(DisconnectRequest(user="ann"))
            assert await ann.closed() == 4003  # v1 client: hubbub's own close code


async def test_raw_http_as_in_centrifugo_docs(server: str, hub: Hub) -> None:
    async with httpx.AsyncClient(base_url=f"http://{server}") as http:
        # curl --header "X-API-Key: <KEY>" --request POST --data '{...}' .../api/publish
        ok = await http.post(
            "/api/publish", headers={"X-API-Key": KEY}, json={"channel": "news", "data": {}}
        )
        assert ok.status_code == 200
        assert set(ok.json()["result"]) == {"offset", "epoch"}
        # Authorization: apikey on /centrifugo/api is Centrifugo's too
        auth = await http.post(
            "/centrifugo/api/history",
            headers={"Authorization": f"apikey {KEY}"},
            json={"channel": "news", "since": {"offset": 0, "epoch": "gone"}},
        )
        assert auth.json() == {"error": {"code": 112, "message": "unrecoverable position"}}
        bad = await http.post("/api/publish", headers={"X-API-Key": KEY}, json={"data": 1})
        assert bad.status_code == 200
        assert bad.json()["error"]["code"] == 107
        missing = await http.post("/centrifugo/api/subscribe", headers={"X-API-Key": KEY}, json={})
        assert missing.json()["error"]["code"] == 108
        one_client = await http.post(
            "/centrifugo/api/unsubscribe",
            headers={"X-API-Key": KEY},
            json={"user": "ann", "channel": "news", "client": "c1"},
        )
        assert one_client.json()["error"]["code"] == 107
        wrong = await http.post("/api/info", headers={"X-API-Key": "wrong"}, json={})
        assert wrong.status_code == 401
        # hubbub's own API keeps its paths and answers
        own = await http.post(
            "/api/publish",
            headers={"Authorization": f"apikey {KEY}"},
            json={"channel": "news", "data": {}},
        )
        assert own.status_code == 200
        assert set(own.json()) == {"offset", "epoch"}
