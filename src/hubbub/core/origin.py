"""The Origin check against cross-site WebSocket hijacking (pure)."""

from __future__ import annotations

from fnmatch import fnmatchcase
from urllib.parse import urlsplit


def origin_allowed(origin: str, host: str, allowed: list[str] | None) -> bool:
    """Whether a browser from ``origin`` may connect to a server reached as ``host``.

    ``allowed=None`` admits the same host only (any scheme, same host and port);
    ``["*"]`` admits every origin; otherwise each entry is an origin such as
    ``https://app.example.com`` or a glob such as ``https://*.example.com``.
    """
    origin = origin.strip().lower()
    if allowed is None:
        try:
            netloc = urlsplit(origin).netloc
        except ValueError:
            return False
        return bool(netloc) and netloc == host.strip().lower()
    return any(
        pattern == "*" or fnmatchcase(origin, pattern.strip().lower().rstrip("/"))
        for pattern in allowed
    )
