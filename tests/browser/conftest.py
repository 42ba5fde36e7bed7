"""Real headless Chromium driven by Playwright: fixtures.

Locally a missing browser skips these tests; in CI it fails them (``support.require``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

from hubbub.hub import Hub
from support import require

from .chromium import CHROMIUM, CHROMIUM_ARGS, LiveServer

if TYPE_CHECKING:
    from playwright.async_api import Browser


@pytest.fixture
def hub_options() -> dict[str, Any]:
    """Development mode (no secret): the demo issues its own tokens."""
    return {"secret": None}


@pytest.fixture
async def live(hub: Hub) -> AsyncIterator[LiveServer]:
    server = LiveServer(hub)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    require(importlib.util.find_spec("playwright") is not None, "playwright is not installed")
    require(CHROMIUM.exists(), f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()
