"""Engines, chosen by the scheme of the ``engine`` setting.

``memory`` is the single-process default; ``redis://``, ``rediss://`` and
``unix://`` URLs select the Redis engine. New engines register a factory in
:data:`FACTORIES`; nothing else in hubbub names a concrete engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from hubbub.engines.base import Engine
from hubbub.errors import ConfigError

EngineFactory = Callable[[str, str | None], Engine]


def _memory(url: str, data_dir: str | None) -> Engine:
    from hubbub.engines.memory import MemoryEngine

    return MemoryEngine(data_dir=data_dir)


def _redis(url: str, data_dir: str | None) -> Engine:
    from hubbub.engines.redis import RedisEngine

    return RedisEngine(url)


FACTORIES: Mapping[str, EngineFactory] = MappingProxyType(
    {"memory": _memory, "redis": _redis, "rediss": _redis, "unix": _redis}
)


def scheme_of(url: str) -> str:
    return url.partition("://")[0] if "://" in url else url


def create_engine(url: str, *, data_dir: str | None = None) -> Engine:
    """Build the engine named by ``url`` (``memory`` or ``redis://host:port/db``)."""
    factory = FACTORIES.get(scheme_of(url))
    if factory is None:
        raise ConfigError(
            f"unknown engine {url!r}: use 'memory' or a redis:// URL "
            f"(known schemes: {', '.join(sorted(FACTORIES))})"
        )
    return factory(url, data_dir)


def is_single_process(url: str) -> bool:
    """Whether the engine only works within one process (``--workers`` > 1 is refused)."""
    return scheme_of(url) == "memory"
