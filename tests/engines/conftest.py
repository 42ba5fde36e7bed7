"""Fixtures shared by the engine tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from redis_server import RedisServer, running_redis

from .conformance import Recorder


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server for the whole session (never the shared 6379).
    Tests isolate themselves with a unique key prefix; tests that kill or
    restart Redis start their own server instead."""
    with running_redis() as server:
        yield server


@pytest.fixture
def recorder() -> Recorder:
    """Events recorder for engine fixtures used outside an ``EngineConformance``
    subclass (inside one, the class's own ``recorder`` fixture answers)."""
    return Recorder()
