"""The demo chat, the dashboard and hubbub.js in real headless Chromium."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from hubbub.auth import issue_token
from hubbub.hub import Hub
from support import IN_CI

from .chromium import LiveServer, new_page, screenshot

try:
    from playwright.async_api import Browser, Page, WebSocketRoute, expect
except ImportError:  # pragma: no cover - CI installs the dev extra
    if IN_CI:
        raise
    pytest.skip("playwright is not installed", allow_module_level=True)

pytestmark = pytest.mark.timeout(20)

LOBBY = ".messages[data-room='lobby']"
XSS = [
    "<img src=x onerror=\"window.__pwned='img'\">",
    "<script>window.__pwned='script'</script>",
    "<svg onload=\"window.__pwned='svg'\"></svg>",
]
NICK = "<img src=x onerror=alert(1)>"  # fits the 32-character nickname limit


async def join(page: Page, live: LiveServer, nickname: str, path: str = "/") -> None:
    await page.goto(live.url + path)
    await page.fill("#nickname", nickname)
    await page.click("#join")
    await expect(page.locator("#status")).to_have_attribute("data-state", "connected")


async def say(page: Page, text: str) -> None:
    await page.fill("#text", text)
    await page.press("#text", "Enter")


def texts(page: Page, room: str = "lobby") -> Any:
    return page.locator(f".messages[data-room='{room}'] .msg .text")


async def test_two_pages_chat(browser: Browser, live: LiveServer) -> None:
    errors: list[str] = []
    ada, bea = await new_page(browser, errors), await new_page(browser, errors)
    await join(ada, live, "Ada")
    await join(bea, live, "Bea")
    await expect(ada.locator("#online li")).to_have_count(2)
    await expect(ada.locator(f"{LOBBY} .notice")).to_have_text(["Bea joined"])

    await say(ada, "Hi Bea! The hub is up.")
    await expect(texts(bea)).to_have_text(["Hi Bea! The hub is up."])
    await say(bea, "Hello Ada, does history work too?")
    await say(ada, "Open another tab and see.")
    expected = [
        "Hi Bea! The hub is up.",
        "Hello Ada, does history work too?",
        "Open another tab and see.",
    ]
    for page in (ada, bea):
        await expect(texts(page)).to_have_text(expected)
    await expect(bea.locator(f"{LOBBY} .msg.first .author")).to_have_text(["Ada", "Bea", "Ada"])

    # a third person gets the history on join, and can switch rooms
    cy = await new_page(browser, errors)
    await join(cy, live, "Cy")
    await expect(texts(cy)).to_have_text(expected)
    await cy.fill("#new-room-name", "random")
    await cy.press("#new-room-name", "Enter")
    await expect(cy.locator("#room-name")).to_have_text("random")
    await say(cy, "anyone here?")
    await expect(texts(cy, "random")).to_have_text(["anyone here?"])
    await expect(ada.locator("#online li")).to_have_count(3)

    await screenshot(ada, "demo.png")
    assert errors == []


async def test_user_content_is_never_html(browser: Browser, live: LiveServer) -> None:
    errors: list[str] = []
    mallory = await new_page(browser, errors)
    victim = await new_page(browser, errors)
    dialogs: list[str] = []
    victim.on("dialog", lambda dialog: dialogs.append(dialog.message))
    await join(mallory, live, NICK)
    await join(victim, live, "Victim")
    for payload in XSS:
        await say(mallory, payload)
    await expect(texts(victim)).to_have_text(XSS)
    await expect(victim.locator(f"{LOBBY} .msg.first .author")).to_have_text([NICK])
    await expect(victim.locator("#online li")).to_have_count(2)
    await asyncio.sleep(0.3)  # give any injected handler a chance to run
    for page in (mallory, victim):
        assert await page.evaluate("window.__pwned") is None
        assert await page.locator("#app img, #app script, #app svg").count() == 0
    assert dialogs == []
    assert errors == []


async def test_presence_updates_when_a_page_closes(browser: Browser, live: LiveServer) -> None:
    ada, bea = await new_page(browser), await new_page(browser)
    await join(ada, live, "Ada")
    await join(bea, live, "Bea")
    await expect(ada.locator("#online li")).to_have_text(["Ada(you)", "Bea"])
    await expect(ada.locator("#online-count")).to_have_text("2")
    await bea.context.close()
    await expect(ada.locator("#online li")).to_have_text(["Ada(you)"])
    await expect(ada.locator("#online-count")).to_have_text("1")
    await expect(ada.locator(f"{LOBBY} .notice")).to_have_text(["Bea joined", "Bea left"])


RAW_CLIENT = """
async ([token]) => {
  const { Hubbub } = await import("/hubbub.js");
  window.received = [];
  window.recoveries = [];
  window.states = [];
  const hub = new Hubbub("/ws", { token, minDelay: 100, maxDelay: 1000 });
  hub.on("state", (s) => window.states.push(s));
  hub.subscribe("chat:lobby", {
    onMessage: (m) => window.received.push(m.data.text),
    onRecover: (r) => window.recoveries.push(r),
  });
  hub.connect();
  window.hub = hub;
}
"""


async def test_a_page_survives_a_server_restart(
    browser: Browser, live: LiveServer, hub: Hub
) -> None:
    errors: list[str] = []
    raw = await new_page(browser, errors)
    await raw.goto(live.url + "/health")  # any page of the hub's origin
    token = issue_token(hub.settings.secret or "", "raw-page")
    await raw.evaluate(RAW_CLIENT, [token])
    demo = await new_page(browser, errors)
    await join(demo, live, "Ada")
    await raw.wait_for_function("window.hub.state === 'connected'")
    await expect(demo.locator("#online li")).to_have_count(2)

    before = [f"before {i}" for i in range(1, 4)]
    for text in before:
        await hub.publish("chat:lobby", {"text": text})
    await expect(texts(demo)).to_have_text(before)
    await raw.wait_for_function("window.received.length === 3")

    await live.stop()
    await expect(demo.locator("#banner")).to_be_visible()
    await expect(demo.locator("#status")).to_have_attribute("data-state", "reconnecting")
    await raw.wait_for_function("window.states.includes('reconnecting')")
    during = [f"while away {i}" for i in range(1, 6)]
    for text in during:
        await hub.publish("chat:lobby", {"text": text})
    await asyncio.sleep(0.5)  # let the clients retry against a closed port
    await live.start()  # same hub, same port

    await expect(demo.locator("#status")).to_have_attribute(
        "data-state", "connected", timeout=12_000
    )
    await expect(demo.locator("#banner")).to_be_hidden()
    await raw.wait_for_function("window.hub.state === 'connected'", timeout=12_000)
    after = ["after 1"]
    await hub.publish("chat:lobby", {"text": after[0]})
    everything = before + during + after
    await expect(texts(demo)).to_have_text(everything)  # each exactly once, in order
    await raw.wait_for_function(f"window.received.length >= {len(everything)}")
    await asyncio.sleep(0.2)
    assert await raw.evaluate("window.received") == everything
    recoveries = await raw.evaluate("window.recoveries")
    assert [(r["recovered"], r["missed"]) for r in recoveries] == [(True, len(during))]
    assert errors == []


async def test_dashboard(browser: Browser, live: LiveServer) -> None:
    ada, bea = await new_page(browser), await new_page(browser)
    await join(ada, live, "Ada")
    await join(bea, live, "Bea")
    dashboard = await new_page(browser)
    await dashboard.goto(live.url + "/dashboard")
    await expect(dashboard.locator("#status")).to_have_attribute("data-state", "connected")
    await expect(dashboard.locator("#v-connections")).to_have_text("2")
    await expect(dashboard.locator("#top td").first).to_have_text("chat:lobby")
    for i in range(20):
        await say(ada if i % 2 else bea, f"message {i}")
        await asyncio.sleep(0.2)
    await expect(dashboard.locator("#v-out")).not_to_have_text("0")
    await screenshot(dashboard, "dashboard.png")


UNAUTHORIZED_CLIENT = """
async ([withGetToken]) => {
  const { Hubbub } = await import("/hubbub.js");
  const calls = [];
  const options = { token: "not-a-jwt", minDelay: 50, maxDelay: 100 };
  if (withGetToken) options.getToken = async () => (calls.push(1), "still-not-a-jwt");
  const hub = new Hubbub("/ws", options);
  const closes = [];
  hub.on("disconnected", ({ code }) => closes.push(code));
  const reason = await new Promise((resolve) => {
    hub.on("unauthorized", ({ reason }) => resolve(reason));
    hub.connect();
  });
  await new Promise((resolve) => setTimeout(resolve, 500));  // no reconnect loop
  return { reason, closes, calls: calls.length, state: hub.state };
}
"""


@pytest.mark.parametrize(("with_get_token", "closes"), [(False, [4001]), (True, [4001, 4001])])
async def test_4001_stops_instead_of_looping(
    browser: Browser, live: LiveServer, with_get_token: bool, closes: list[int]
) -> None:
    page = await new_page(browser)
    await page.goto(live.url + "/health")
    result = await page.evaluate(UNAUTHORIZED_CLIENT, [with_get_token])
    assert result["closes"] == closes
    assert result["calls"] == (1 if with_get_token else 0)
    assert result["state"] == "closed"
    assert result["reason"]


FAKE_WELCOME = '{"type":"welcome","client":"c1","user":"u","ping_interval":25,"version":"1"}'

JS_CLIENT = """
async () => {
  const { Hubbub } = await import("/hubbub.js");
  window.received = [];
  window.closes = [];
  window.pongs = 0;
  const hub = new Hubbub("/ws", { token: "t", minDelay: 50, maxDelay: 100 });
  hub.on("disconnected", ({ code }) => window.closes.push(code));
  hub.on("forbidden", ({ reason }) => { window.forbidden = reason; });
  hub.subscribe("c", { onMessage: (m) => window.received.push([m.offset, m.data]) });
  hub.connect();
  window.hub = hub;
}
"""


async def test_js_client_ignores_broken_frames_and_reconnects(
    browser: Browser, live: LiveServer
) -> None:
    """A scripted fake hub (Playwright's WebSocket routing): broken frames are
    skipped, 4008/1012/4009 reconnect, and the resubscribe carries ``since``."""
    errors: list[str] = []
    page = await new_page(browser, errors)
    subscribes: list[dict[str, Any]] = []
    pongs: list[int] = []
    codes = [4008, 1012, 4009]
    closing: list[asyncio.Future[None]] = []

    def handler(ws: WebSocketRoute) -> None:
        n = len(subscribes)

        def on_message(raw: str | bytes) -> None:
            frame = json.loads(raw)
            if frame["type"] == "pong":
                pongs.append(n)
            elif frame["type"] == "subscribe":
                subscribes.append(frame)
                ack = {"type": "ack", "id": frame["id"], "offset": n, "epoch": "e"}
                if "since" in frame:
                    ack.update(recovered=True, publications=[])
                message = {"type": "message", "channel": "c", "offset": n + 1, "epoch": "e"}
                # the ack and the message in one batch, then a duplicate, then junk
                ws.send(json.dumps(ack) + "\n" + json.dumps({**message, "data": n}))
                ws.send(json.dumps({**message, "data": "duplicate"}))
                for junk in ("not json", "[1]", '{"no":"type"}', "\n\n", '{"type":"wat"}'):
                    ws.send(junk)
                ws.send(b"\x00binary")
                ws.send('{"type":"message","channel":"c","offset":null}\n{"type":"ping"}')
                if n < len(codes):
                    closing.append(asyncio.ensure_future(ws.close(code=codes[n], reason="test")))

        ws.on_message(on_message)
        ws.send(FAKE_WELCOME)

    await page.route_web_socket(lambda url: url.endswith("/ws?token=t"), handler)
    await page.goto(live.url + "/health")
    await page.evaluate(JS_CLIENT)
    await page.wait_for_function("window.received.length === 4 && window.hub.state === 'connected'")
    assert await page.evaluate("window.received") == [[1, 0], [2, 1], [3, 2], [4, 3]]
    assert await page.evaluate("window.closes") == codes
    assert [s.get("since") for s in subscribes] == [
        None,
        {"offset": 1, "epoch": "e"},
        {"offset": 2, "epoch": "e"},
        {"offset": 3, "epoch": "e"},
    ]
    assert len(pongs) >= 4
    assert errors == []


async def test_js_client_stops_on_forbidden(browser: Browser, live: LiveServer) -> None:
    """4003 (origin refused, connection limit, kicked by the server) is final:
    the client emits ``forbidden`` and does not reconnect into the same refusal."""
    errors: list[str] = []
    page = await new_page(browser, errors)
    connections: list[WebSocketRoute] = []
    closing: list[asyncio.Future[None]] = []

    def handler(ws: WebSocketRoute) -> None:
        connections.append(ws)
        ws.send(FAKE_WELCOME)
        closing.append(asyncio.ensure_future(ws.close(code=4003, reason="kicked")))

    await page.route_web_socket(lambda url: url.endswith("/ws?token=t"), handler)
    await page.goto(live.url + "/health")
    await page.evaluate(JS_CLIENT)
    await page.wait_for_function("window.forbidden === 'kicked'")
    await asyncio.sleep(0.5)  # longer than the client's backoff would be
    assert await page.evaluate("window.hub.state") == "closed"
    assert await page.evaluate("window.closes") == [4003]
    assert len(connections) == 1
    assert errors == []
