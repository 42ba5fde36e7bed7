"""The Origin check (cross-site WebSocket hijacking)."""

from __future__ import annotations

import pytest

from hubbub.core.origin import origin_allowed


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        ("http://localhost:8000", "localhost:8000", True),
        ("https://LOCALHOST:8000", "localhost:8000", True),
        ("http://evil.example", "localhost:8000", False),
        ("http://localhost:8001", "localhost:8000", False),
        ("http://localhost", "localhost:8000", False),
        ("http://localhost:8000.evil.example", "localhost:8000", False),
        ("null", "localhost:8000", False),
        ("", "localhost:8000", False),
        ("http://[::1", "localhost:8000", False),
        ("http://example.com", "", False),
    ],
)
def test_same_host_by_default(origin: str, host: str, allowed: bool) -> None:
    assert origin_allowed(origin, host, None) is allowed


def test_allowed_list() -> None:
    allowed = ["https://app.example.com", "https://*.example.org/"]
    assert origin_allowed("https://app.example.com", "hub:8000", allowed)
    assert origin_allowed("HTTPS://APP.EXAMPLE.COM", "hub:8000", allowed)
    assert not origin_allowed("http://app.example.com", "hub:8000", allowed)
    assert origin_allowed("https://a.example.org", "hub:8000", allowed)
    assert not origin_allowed("https://evil.example", "hub:8000", allowed)
    # An explicit list replaces the same-host default.
    assert not origin_allowed("http://hub:8000", "hub:8000", allowed)


def test_star_and_empty_list() -> None:
    assert origin_allowed("http://anything.example", "hub", ["*"])
    assert not origin_allowed("http://hub", "hub", [])
