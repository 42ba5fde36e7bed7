"""The Redis engine: fan-out over pub/sub, history in streams, presence with
expiry, offsets assigned atomically by Lua scripts (see :mod:`.engine`)."""

from hubbub.engines.redis.engine import RedisEngine

__all__ = ["RedisEngine"]
