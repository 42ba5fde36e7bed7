"""The node's one pub/sub link to Redis: subscribe with confirmation, reconnect.

Why not ``redis.asyncio.client.PubSub``: its ``subscribe()`` returns once the
command is *sent*, not confirmed, and on a broken link it reconnects and
resubscribes silently inside whichever call notices. The engine needs the
opposite on both counts: ``subscribe()`` must return only after Redis
confirmed it (so no later publication is missed), and the hub must learn when
the link was lost and when it is back (to re-check positions for gaps). So
the link drives one plain ``redis.asyncio`` connection itself:

* one reader task reads every reply and message in arrival order, which is
  Redis' order, hence offset order per channel;
* ``subscribe()`` sends ``SUBSCRIBE`` and waits for the reader to see its
  confirmation (confirmations of one name arrive in the order sent);
* on any error the reader drops the connection, fails pending subscribes,
  reports ``False``, and reconnects with exponential backoff and jitter; once
  every wanted channel (and the control channel) is confirmed again it
  reports ``True``;
* a silent link (a dead peer behind a NAT, no RST) is noticed by a ``PING``
  after ``ping_interval`` s without traffic and no answer within another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Callable

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import RedisError

from hubbub.errors import EngineUnavailable

__all__ = ["PubSubLink"]

log = logging.getLogger("hubbub.engines.redis")

#: Called for every message: (hubbub channel or None for the control channel, payload).
MessageHandler = Callable[[str | None, bytes], None]
StateHandler = Callable[[bool], None]


class PubSubLink:
    """One pub/sub connection, its subscriptions and its reconnect loop."""

    def __init__(
        self,
        connect: Callable[[], AbstractConnection],
        control: str,
        on_message: MessageHandler,
        on_state: StateHandler,
        *,
        timeout: float,
        ping_interval: float,
        min_backoff: float,
        max_backoff: float,
        where: str,
    ) -> None:
        self._connect = connect
        self._control = control.encode()
        self._on_message = on_message
        self._on_state = on_state
        self._timeout = timeout
        self._ping_interval = ping_interval
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._where = where
        # Wanted subscriptions: pub/sub name -> hubbub channel. Resubscribed
        # after every reconnect.
        self._names: dict[bytes, str] = {}
        self._pending: dict[bytes, deque[asyncio.Future[None]]] = {}
        # Set only while the connection is up and every wanted name confirmed.
        self._conn: AbstractConnection | None = None
        self._write_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._first_attempt = asyncio.Event()
        self._reported = True

    @property
    def connected(self) -> bool:
        return self._conn is not None

    async def start(self) -> None:
        """Start the reader; return after its first connection attempt, whatever
        its outcome (later attempts continue in the background)."""
        self._task = asyncio.create_task(self._run(), name="hubbub-redis-pubsub")
        await self._first_attempt.wait()

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def subscribe(self, name: str, channel: str) -> None:
        """Subscribe and wait for Redis' confirmation (``EngineUnavailable`` when
        the link is down or the confirmation does not come in time)."""
        key = name.encode()
        conn = self._conn
        if conn is None:
            raise EngineUnavailable("Redis pub/sub link is down, retry later")
        self._names[key] = channel
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(key, deque()).append(future)
        try:
            await self._send(conn, "SUBSCRIBE", key)
            async with asyncio.timeout(self._timeout):
                await future
        except BaseException as exc:
            waiters = self._pending.get(key)
            if waiters is not None and future in waiters:
                waiters.remove(future)
            self._names.pop(key, None)
            if isinstance(exc, RedisError | OSError):
                raise EngineUnavailable(f"Redis pub/sub subscribe failed: {exc}") from None
            raise

    async def unsubscribe(self, name: str) -> None:
        key = name.encode()
        if self._names.pop(key, None) is None:
            return
        conn = self._conn
        if conn is None:
            return  # the next connection will not subscribe to it
        # A failure means the link is failing: the reader reconnects without this name.
        with contextlib.suppress(RedisError, OSError, EngineUnavailable):
            await self._send(conn, "UNSUBSCRIBE", key)

    async def _send(self, conn: AbstractConnection, *args: str | bytes) -> None:
        async with self._write_lock:
            if self._conn is not conn:
                # Never let send_command() reconnect a connection we dropped.
                raise EngineUnavailable("Redis pub/sub link is down, retry later")
            await conn.send_command(*args, check_health=False)

    # ------------------------------------------------------------------ reader

    async def _run(self) -> None:
        attempt = 0
        while True:
            conn = self._connect()
            up = False
            try:
                await self._establish(conn)
                up = True
                attempt = 0
                self._conn = conn
                log.info("Redis pub/sub link up at %s (%d channels)", self._where, len(self._names))
                self._set_state(True)
                self._first_attempt.set()
                await self._read(conn)
            except (RedisError, OSError, EngineUnavailable) as exc:
                if up:
                    log.warning("Redis pub/sub link to %s lost: %s", self._where, exc)
                else:
                    log.warning(
                        "Redis at %s unreachable (attempt %d): %s", self._where, attempt + 1, exc
                    )
            except Exception:
                log.exception("Redis pub/sub link to %s failed unexpectedly", self._where)
            finally:
                self._conn = None
                self._fail_pending()
                await conn.disconnect(nowait=True)
            self._set_state(False)
            self._first_attempt.set()
            attempt += 1
            delay = min(self._max_backoff, self._min_backoff * 2 ** min(attempt, 30))
            delay *= random.uniform(0.5, 1.0)
            log.info("reconnecting to Redis at %s in %.2f s", self._where, delay)
            await asyncio.sleep(delay)

    async def _establish(self, conn: AbstractConnection) -> None:
        """Connect and (re)subscribe the control channel and every wanted name."""
        await conn.connect()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        names = [self._control, *self._names]
        await conn.send_command("SUBSCRIBE", *names, check_health=False)
        waiting = set(names)
        while waiting:
            response = await conn.read_response(timeout=self._timeout, disconnect_on_error=False)
            if response is None:
                raise TimeoutError("Redis did not confirm SUBSCRIBE in time")
            if response[0] == b"subscribe":
                waiting.discard(response[1])
            else:
                self._dispatch(response)

    async def _read(self, conn: AbstractConnection) -> None:
        awaiting_pong = False
        while True:
            response = await conn.read_response(
                timeout=self._ping_interval, disconnect_on_error=False
            )
            if response is None:
                if awaiting_pong:
                    raise TimeoutError(f"no answer to PING within {self._ping_interval} s")
                await self._send(conn, "PING")
                awaiting_pong = True
                continue
            awaiting_pong = False
            self._dispatch(response)

    def _dispatch(self, response: list[bytes]) -> None:
        kind = response[0]
        if kind == b"message":
            name = response[1]
            if name == self._control:
                channel = None
            else:
                channel = self._names.get(name)
                if channel is None:
                    return  # unsubscribed meanwhile
            try:
                self._on_message(channel, response[2])
            except Exception:
                log.exception("failed to handle a pub/sub message on %r", name)
        elif kind == b"subscribe":
            waiters = self._pending.get(response[1])
            if waiters:
                future = waiters.popleft()
                if not waiters:
                    del self._pending[response[1]]
                if not future.done():
                    future.set_result(None)

    def _fail_pending(self) -> None:
        pending, self._pending = self._pending, {}
        for waiters in pending.values():
            for future in waiters:
                if not future.done():
                    future.set_exception(EngineUnavailable("Redis pub/sub link lost"))

    def _set_state(self, ready: bool) -> None:
        if ready != self._reported:
            self._reported = ready
            self._on_state(ready)
