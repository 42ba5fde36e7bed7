"""The Redis engine: any number of hubbub processes and machines behave as one.

**Publish** is one Lua script (``lua/publish.lua``): it increments the
channel's offset in a meta hash, appends to the channel's history, refreshes
expiries, creates the epoch when the meta hash is missing, and ``PUBLISH``-es
the publication, all atomically. Redis runs one script at a time, so the
pub/sub order every node sees equals the offset order, and a node that saw
offset N can always find N-1 in history. The payload is encoded once, by
this process; the script only prefixes the offset it assigned.

**History** is a Redis Stream per channel whose entry ids are the offsets
(``<offset>-0``). Why a stream rather than a list: ``since``/``reverse``/
``limit`` are plain ``XRANGE``/``XREVRANGE`` calls by offset, O(log n + k),
with no index arithmetic that a gap (history turned off for a while, a
trimmed head) would break; ``XADD MAXLEN`` keeps exactly ``history_size``
entries. Each entry carries its own expiry time (``history_ttl`` after its
publish, by the Redis clock) and reads drop expired entries from the head, so
an old publication disappears on time even on a busy channel; the stream key
itself expires ``history_ttl`` after the last publish. The meta hash (epoch
and top offset) lives ``meta_ttl`` (default one day) after the last publish,
at least as long as history. When it is gone, because it expired or Redis
lost its data, the next publish or read creates a **new random epoch** at
offset 0, so clients holding an old position get ``recovered: false``.

**Presence** is a hash (client -> ClientInfo) plus a sorted set of expiry
times per channel; entries not refreshed within ``ttl`` are skipped by reads
and removed by ``expire_presence`` (``lua/presence_expire.lua``), which hands
each one to exactly one node: that is how a crashed node's clients leave, with
one ``leave`` event each. Times come from the Redis clock so that nodes with
skewed clocks agree.

**Idempotent publishes** store ``<offset>:<epoch>`` under a key per
(channel, idempotency key) for ``IDEMPOTENCY_TTL``, checked and written by
the same publish script, so concurrent retries publish exactly once.

**Fan-out** uses one pub/sub connection per node (:mod:`.pubsub`). Join,
leave and publications of a channel travel on the channel's pub/sub channel,
node control orders (disconnect or unsubscribe a user) on a control channel
every node subscribes to.

**Failures**: commands use short connect/read timeouts and no retries, so
while Redis is down publish, history and presence raise ``EngineUnavailable``
within about ``command_timeout`` instead of hanging. A failed command is not
retried because a publish may have run before the link broke (a retry could
publish twice); the caller decides. The pub/sub link reconnects on its own,
with backoff, and reports ``on_engine_state``.

Connections speak RESP2: pub/sub replies are plain arrays, and redis-py's
check of pooled connections for a dead peer is skipped under RESP3.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Final

from msgspec import Raw
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from hubbub.core.history import HistoryOptions, HistoryResult, new_epoch
from hubbub.core.presence import PresenceStats
from hubbub.core.protocol import ClientInfo, Publication, StreamPosition
from hubbub.engines.base import IDEMPOTENCY_TTL, EngineEvents, NodeControl
from hubbub.engines.redis import codec
from hubbub.engines.redis.pubsub import PubSubLink
from hubbub.engines.redis.scripts import Scripts
from hubbub.errors import ConfigError, EngineUnavailable

__all__ = ["RedisEngine"]

#: Stream ids are unsigned 64-bit; larger ``since`` values cannot match anything.
_MAX_OFFSET: Final = 2**63
#: Expired presence entries removed per script call (``presence_expire.lua``'s LIMIT).
_EXPIRE_BATCH: Final = 1000
_UNAVAILABLE: Final = (RedisConnectionError, RedisTimeoutError, ReadOnlyError, OutOfMemoryError)


class _NoEvents:
    """Events sink before ``start()``: nothing to tell anyone yet."""

    def on_publication(self, channel: str, epoch: str, publication: Publication) -> None:
        pass

    def on_join(self, channel: str, info: ClientInfo) -> None:
        pass

    def on_leave(self, channel: str, info: ClientInfo) -> None:
        pass

    def on_control(self, command: NodeControl) -> None:
        pass

    def on_engine_state(self, ready: bool) -> None:
        pass


class RedisEngine:
    """Broker, history and presence on Redis (Redis >= 5.0, or a
    managed equivalent; keys are Cluster-ready).

    ``url``: ``redis://[user:password@]host:port/db``, ``rediss://`` or
    ``unix://``; ``prefix``: first part of every key and pub/sub channel.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "hubbub",
        meta_ttl: float = 86400.0,
        connect_timeout: float = 1.0,
        command_timeout: float = 2.0,
        ping_interval: float = 5.0,
        min_backoff: float = 0.1,
        max_backoff: float = 5.0,
        max_connections: int = 64,
    ) -> None:
        if not prefix or any(c in prefix for c in "{} "):
            raise ConfigError(f"redis prefix {prefix!r}: must be non-empty, without braces")
        for name, value in (
            ("connect_timeout", connect_timeout),
            ("command_timeout", command_timeout),
            ("ping_interval", ping_interval),
            ("min_backoff", min_backoff),
            ("max_backoff", max_backoff),
        ):
            if not value > 0:
                raise ConfigError(f"redis engine: {name} must be > 0, got {value!r}")
        try:
            self._pool = BlockingConnectionPool.from_url(
                url,
                protocol=2,
                socket_connect_timeout=connect_timeout,
                socket_timeout=command_timeout,
                retry=Retry(NoBackoff(), 0),
                health_check_interval=0,
                max_connections=max_connections,
                timeout=command_timeout,
            )
        except (ValueError, TypeError) as exc:
            # Never echo the URL: it may hold a password.
            raise ConfigError(f"invalid Redis URL: {exc}") from None
        kwargs = self._pool.connection_kwargs
        self._where = str(kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}")
        self._client = Redis(connection_pool=self._pool)
        self._scripts = Scripts(self._client)
        self._keys = codec.Keys(prefix)
        self._meta_ttl = meta_ttl
        self._command_timeout = command_timeout
        self._events: EngineEvents = _NoEvents()
        self._link = PubSubLink(
            self._new_pubsub_connection,
            self._keys.control,
            self._on_message,
            self._on_state,
            timeout=command_timeout,
            ping_interval=ping_interval,
            min_backoff=min_backoff,
            max_backoff=max_backoff,
            where=self._where,
        )

    def __repr__(self) -> str:
        return f"RedisEngine({self._where!r}, prefix={self._keys.prefix!r})"

    # ------------------------------------------------------------------ lifecycle

    async def start(self, events: EngineEvents) -> None:
        """Connect the pub/sub link. An unreachable Redis is not an error: the
        link keeps retrying in the background and ``ready()`` stays False."""
        self._events = events
        await self._link.start()

    async def close(self) -> None:
        await self._link.close()
        await self._client.aclose()
        await self._pool.aclose()

    async def ready(self) -> bool:
        if not self._link.connected:
            return False
        try:
            return bool(await self._client.ping())
        except (*_UNAVAILABLE, OSError):
            return False

    # ------------------------------------------------------------------ broker + history

    async def publish(
        self,
        channel: str,
        data: Raw,
        *,
        info: ClientInfo | None,
        history: HistoryOptions,
        idempotency_key: str | None = None,
    ) -> StreamPosition:
        keys = self._keys
        script_keys = [keys.meta(channel), keys.history(channel)]
        args: list[str | bytes | int] = [
            keys.pubsub(channel),
            codec.publication_tail(data, info),
            max(history.size, 0),
            _ms(history.ttl),
            self._meta_ms(history.ttl),
            new_epoch(),
        ]
        if idempotency_key is not None:
            script_keys.append(keys.idempotency(channel, idempotency_key))
            args.append(_ms(IDEMPOTENCY_TTL))
        with _unavailable("publish"):
            offset, epoch = await self._scripts.publish(keys=script_keys, args=args)
        return StreamPosition(offset=offset, epoch=epoch.decode())

    async def publish_join(self, channel: str, info: ClientInfo) -> None:
        await self._publish_event(channel, codec.join(info))

    async def publish_leave(self, channel: str, info: ClientInfo) -> None:
        await self._publish_event(channel, codec.leave(info))

    async def control(self, command: NodeControl) -> None:
        with _unavailable("control"):
            await self._client.publish(self._keys.control, codec.control(command))
        if not self._link.connected:
            # Other nodes got it through Redis; this one cannot hear it now.
            self._events.on_control(command)

    async def subscribe(self, channel: str) -> None:
        await self._link.subscribe(self._keys.pubsub(channel), channel)

    async def unsubscribe(self, channel: str) -> None:
        await self._link.unsubscribe(self._keys.pubsub(channel))

    async def history(
        self,
        channel: str,
        *,
        since: int | None = None,
        limit: int | None = None,
        reverse: bool = False,
    ) -> HistoryResult:
        command, first, last = "XRANGE", "-", "+"
        if reverse:
            command, first, last = "XREVRANGE", "+", "-"
        count = -1 if limit is None else max(limit, 0)
        if since is not None:
            if reverse:
                first = f"{min(since, _MAX_OFFSET) - 1}-0"
                if since <= 1:
                    count = 0
            else:
                first = f"{since + 1}-0"
                if since >= _MAX_OFFSET:
                    count = 0
        keys = self._keys
        with _unavailable("history"):
            result = await self._scripts.history(
                keys=(keys.meta(channel), keys.history(channel)),
                args=(new_epoch(), self._meta_ms(0), command, first, last, count),
            )
        return HistoryResult(
            publications=[codec.decode_publication(raw) for raw in result[2:]],
            offset=int(result[0]),
            epoch=result[1].decode(),
        )

    # ------------------------------------------------------------------ presence

    async def add_presence(self, channel: str, info: ClientInfo, ttl: float) -> None:
        keys = self._keys
        with _unavailable("add_presence"):
            await self._scripts.presence_add(
                keys=(keys.presence(channel), keys.expiry(channel)),
                args=(info.client, codec.encode_info(info), max(_ms(ttl), 1)),
            )

    async def remove_presence(self, channel: str, client: str) -> None:
        keys = self._keys
        with _unavailable("remove_presence"):
            await self._scripts.presence_remove(
                keys=(keys.presence(channel), keys.expiry(channel)), args=(client,)
            )

    async def presence(self, channel: str) -> dict[str, ClientInfo]:
        keys = self._keys
        with _unavailable("presence"):
            flat = await self._scripts.presence_get(
                keys=(keys.presence(channel), keys.expiry(channel)), args=("0",)
            )
        return {flat[i].decode(): codec.decode_info(flat[i + 1]) for i in range(0, len(flat), 2)}

    async def presence_stats(self, channel: str) -> PresenceStats:
        keys = self._keys
        with _unavailable("presence_stats"):
            values = await self._scripts.presence_get(
                keys=(keys.presence(channel), keys.expiry(channel)), args=("1",)
            )
        users = {codec.decode_user(value) for value in values}
        return PresenceStats(num_clients=len(values), num_users=len(users))

    async def expire_presence(self, channel: str) -> list[ClientInfo]:
        keys = self._keys
        gone: list[ClientInfo] = []
        while True:
            with _unavailable("expire_presence"):
                values = await self._scripts.presence_expire(
                    keys=(keys.presence(channel), keys.expiry(channel)), args=()
                )
            gone.extend(codec.decode_info(value) for value in values)
            if len(values) < _EXPIRE_BATCH:
                return gone

    # ------------------------------------------------------------------ internals

    async def _publish_event(self, channel: str, envelope: bytes) -> None:
        with _unavailable("publish"):
            await self._client.publish(self._keys.pubsub(channel), envelope)

    def _meta_ms(self, history_ttl: float) -> int:
        """Meta must outlive the history it numbers; 0 means no expiry."""
        if self._meta_ttl <= 0:
            return 0
        return _ms(max(self._meta_ttl, history_ttl))

    def _new_pubsub_connection(self) -> AbstractConnection:
        # Outside the pool: the link owns it for the node's lifetime.
        pool = self._pool
        connection: AbstractConnection = pool.connection_class(**pool.connection_kwargs)
        return connection

    def _on_message(self, channel: str | None, payload: bytes) -> None:
        envelope = codec.decode_envelope(payload)
        events = self._events
        if channel is None:
            if isinstance(envelope, codec.Control):
                events.on_control(envelope.command)
        elif isinstance(envelope, codec.PublicationEnvelope):
            events.on_publication(channel, envelope.epoch, envelope.publication)
        elif isinstance(envelope, codec.Join):
            events.on_join(channel, envelope.info)
        elif isinstance(envelope, codec.Leave):
            events.on_leave(channel, envelope.info)

    def _on_state(self, ready: bool) -> None:
        self._events.on_engine_state(ready)


def _ms(seconds: float) -> int:
    return max(int(seconds * 1000), 0)


@contextlib.contextmanager
def _unavailable(operation: str) -> Iterator[None]:
    """Turn "Redis cannot answer now" into ``EngineUnavailable`` (503, retry
    later); other Redis errors are bugs and propagate as they are."""
    try:
        yield
    except (*_UNAVAILABLE, OSError) as exc:
        raise EngineUnavailable(f"Redis unavailable during {operation}: {exc}") from None
