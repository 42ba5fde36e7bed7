"""A page with the npm Centrifugo SDK bundle and a page with /hubbub.js, in real
headless Chromium, exchanging messages through one hub."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from hubbub.auth import issue_token
from hubbub.hub import Hub
from support import IN_CI

from .chromium import LiveServer, new_page

try:
    from playwright.async_api import Browser, Route
except ImportError:  # pragma: no cover - CI installs the dev extra
    if IN_CI:
        raise
    pytest.skip("playwright is not installed", allow_module_level=True)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "centrifugo"))
from tests.centrifugo.node_sdk import SDK_BUNDLE, ensure_node_sdk

pytestmark = pytest.mark.timeout(30)

CHANNEL = "chat:mixed"

SDK_PAGE = """
async ([token, channel]) => {
  await new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = "/sdk/centrifuge.js";  // the npm bundle, served by the test's route
    script.onload = resolve;
    script.onerror = reject;
    document.head.appendChild(script);
  });
  window.received = [];
  const url = `ws://${location.host}/connection/websocket`;
  const client = new Centrifuge(url, { token });
  const sub = client.newSubscription(channel);
  sub.on("publication", (ctx) => window.received.push([ctx.offset, ctx.data.text]));
  sub.on("unsubscribed", (ctx) => (window.ended = [ctx.code, ctx.reason]));
  client.connect();
  sub.subscribe();
  await sub.ready(5000);
  window.sub = sub;
}
"""

HUBBUB_PAGE = """
async ([token, channel]) => {
  const { Hubbub } = await import("/hubbub.js");
  window.received = [];
  const hub = new Hubbub("/ws", { token });
  hub.subscribe(channel, {
    onMessage: (m) => window.received.push([m.offset, m.data.text]),
    onUnsubscribe: (e) => (window.ended = e.reason),
  });
  hub.connect();
  window.hub = hub;
}
"""


async def test_sdk_page_and_hubbub_js_page_talk(
    browser: Browser, live: LiveServer, hub: Hub
) -> None:
    ensure_node_sdk()
    secret = hub.settings.secret or ""
    errors: list[str] = []
    sdk_page = await new_page(browser, errors)

    async def bundle(route: Route) -> None:
        await route.fulfill(path=SDK_BUNDLE, content_type="text/javascript")

    await sdk_page.route("**/sdk/centrifuge.js", bundle)
    await sdk_page.goto(live.url + "/health")
    await sdk_page.evaluate(SDK_PAGE, [issue_token(secret, "sdk-page"), CHANNEL])

    js_page = await new_page(browser, errors)
    await js_page.goto(live.url + "/health")
    await js_page.evaluate(HUBBUB_PAGE, [issue_token(secret, "js-page"), CHANNEL])
    await js_page.wait_for_function("window.hub.state === 'connected'")
    async with asyncio.timeout(5):  # both pages live in the channel
        while len(hub.registry.get(CHANNEL) or ()) < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    await sdk_page.evaluate("window.sub.publish({text: 'hello from the Centrifugo SDK'})")
    await js_page.evaluate(f"window.hub.publish({CHANNEL!r}, {{text: 'hello from hubbub.js'}})")
    expected = [[1, "hello from the Centrifugo SDK"], [2, "hello from hubbub.js"]]
    for page in (sdk_page, js_page):
        await page.wait_for_function("window.received.length >= 2")
        assert await page.evaluate("window.received") == expected

    # The server API's unsubscribe ends both pages' subscriptions for good.
    await hub.unsubscribe_user("sdk-page", CHANNEL)
    await hub.unsubscribe_user("js-page", CHANNEL)
    await sdk_page.wait_for_function("window.ended !== undefined")
    assert await sdk_page.evaluate("window.ended") == [2000, "server unsubscribe"]
    assert await sdk_page.evaluate("window.sub.state") == "unsubscribed"
    await js_page.wait_for_function("window.ended !== undefined")
    assert await js_page.evaluate("window.ended") == "unsubscribed by the server"
    assert await js_page.evaluate(f"window.hub.getSubscription({CHANNEL!r})") is None
    assert CHANNEL not in hub.registry
    assert errors == []
