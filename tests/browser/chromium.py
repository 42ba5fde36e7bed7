"""Helpers for the browser tests: a restartable live server, pages, screenshots.

Nothing here downloads a browser: Playwright launches ``/usr/bin/chromium``
(the Debian ``chromium`` package).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn

from hubbub.asgi.serve import uvicorn_options
from hubbub.hub import Hub

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

CHROMIUM = Path(os.environ.get("HUBBUB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
ARTIFACTS = ROOT / "test-artifacts"


class LiveServer:
    """uvicorn serving one hub, which can be stopped and started again on the same
    port while the hub (and its memory engine's history) lives on."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    async def start(self) -> None:
        options = uvicorn_options(self.hub.settings)
        # lifespan off: stopping uvicorn must not close the hub (it is "restarted")
        options.update(host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        server = uvicorn.Server(uvicorn.Config(self.hub.asgi, **options))
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("server stopped during start-up")
            await asyncio.sleep(0.01)
        self.port = server.servers[0].sockets[0].getsockname()[1]
        self._server, self._task = server, task

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await asyncio.wait_for(self._task, 15)
        self._server = self._task = None


async def new_page(browser: Browser, errors: list[str] | None = None) -> Page:
    """A page in a fresh context (its own localStorage, like another person's
    browser); uncaught page errors are appended to ``errors``."""
    context = await browser.new_context(viewport={"width": 1200, "height": 760})
    page = await context.new_page()
    if errors is not None:
        page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page


async def screenshot(page: Page, name: str, *, docs: bool = True) -> None:
    """Save a screenshot under test-artifacts/. With ``HUBBUB_UPDATE_SCREENSHOTS=1``
    also refresh the README's copy in docs/screenshots/ (committed by hand, so
    that a test run leaves the work tree clean)."""
    ARTIFACTS.mkdir(exist_ok=True)
    data = await page.screenshot(type="png")
    (ARTIFACTS / name).write_bytes(data)
    if docs and os.environ.get("HUBBUB_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / name).write_bytes(data)
