"""Helpers for the browser tests: a restartable live server, pages, screenshots.

Nothing here downloads a browser: Playwright launches ``/usr/bin/chromium``
(the Debian ``chromium`` package).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from support import LiveServer

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

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "LiveServer", "new_page", "screenshot"]


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
