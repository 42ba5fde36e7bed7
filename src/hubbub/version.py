"""The installed version of hubbub."""

from __future__ import annotations

import importlib.metadata


def version() -> str:
    try:
        return importlib.metadata.version("hubbub")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - source tree
        return "0+unknown"
