"""``hubbub.Client``: an asyncio client for protocol v1, for services and tests.

It behaves like the browser client (``/hubbub.js``)::

    async with hubbub.Client("ws://127.0.0.1:8000/ws", token=token) as client:
        async for message in client.subscribe("chat:lobby"):
            print(message.offset, message.data)

* it reconnects with exponential backoff and full jitter (``min_delay``,
  ``max_delay``), whatever the reason the connection ended (1006 network loss,
  1012 server restart, 4008 slow consumer, 4009 heartbeat timeout...);
* close code 4003 (origin refused, connection limit, disconnected by the
  server) is final: the client stops and raises :class:`Forbidden`;
* close code 4001 (token missing, invalid or expired) calls ``get_token`` once
  for a new token; without ``get_token``, or when the new token is refused
  too, the client stops and raises :class:`Unauthorized` instead of looping;
* after a reconnect it resubscribes with ``since`` = the last publication seen
  on each channel, so that no publication is missed or delivered twice
  (duplicates are dropped by offset within an epoch). When the hub cannot fill
  the gap (``recovered: false``, or a new epoch) ``on_recover`` is called with
  ``Recovery(recovered=False)``: reload your state;
* it answers the hub's pings, and drops a link on which nothing (not even a
  ping) arrived for ``ping_interval + 10`` seconds;
* batched frames (``batch=True``) are split; malformed frames are logged and
  ignored.

Calls (``publish``, ``rpc``, ``history``...) made while reconnecting wait for
the connection (up to ``timeout``). A call in flight when the link drops
raises :class:`Disconnected`: it may or may not have been applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from hubbub.client.subscription import Subscription
from hubbub.client.types import (
    Callback,
    ClientError,
    Disconnected,
    Forbidden,
    HistoryResult,
    Incoming,
    Message,
    PresenceStats,
    Recovery,
    ServerError,
    State,
    TokenGetter,
    Unauthorized,
    Unsubscribed,
    decoder,
    encode,
)
from hubbub.core.protocol import ClientInfo, StreamPosition, parse_raw

logger = logging.getLogger("hubbub.client")


UNAUTHORIZED: Final = 4001
FORBIDDEN: Final = 4003
_IDLE_MARGIN: Final = 10.0


class Client:
    """An asyncio hubbub client. See the module docstring for its behaviour.

    ``url`` is the hub's WebSocket endpoint (``ws://host:port/ws``). Give a
    ``token`` or a ``get_token`` coroutine function (called for the first
    connection when there is no ``token``, and again once after a 4001).
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        get_token: TokenGetter | None = None,
        batch: bool = False,
        min_delay: float = 0.5,
        max_delay: float = 20.0,
        timeout: float = 10.0,
        **ws_options: Any,
    ) -> None:
        if min_delay < 0 or max_delay < min_delay:
            raise ValueError("need 0 <= min_delay <= max_delay")
        self.url = url
        self.batch = batch
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.timeout = timeout
        self.client_id: str | None = None
        """The hub's id for the current connection (from ``welcome``)."""
        self.user: str | None = None
        self._token = token
        self._get_token = get_token
        self._ws_options = ws_options
        self._state: State = "disconnected"
        self._changed = asyncio.Event()
        self._failure: ClientError | None = None
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._subs: dict[str, Subscription] = {}
        self._pending: dict[
            int, tuple[asyncio.Future[Incoming], Callable[[Incoming], None] | None]
        ] = {}
        self._ids = 0
        self._listeners: dict[str, list[Callable[[Any], object]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def state(self) -> State:
        """``disconnected``, ``connecting``, ``connected``, ``reconnecting`` or ``closed``."""
        return self._state

    def on(self, event: str, callback: Callable[[Any], object]) -> Callable[[], None]:
        """Listen to ``state`` (the new state), ``connected`` (client id),
        ``disconnected`` (close code), ``unauthorized`` (reason) or ``error``
        (a :class:`ServerError` not tied to a call). Returns a function that
        removes the listener."""
        listeners = self._listeners.setdefault(event, [])
        listeners.append(callback)
        return lambda: listeners.remove(callback) if callback in listeners else None

    async def connect(self, *, wait: bool = True) -> None:
        """Start connecting (and reconnecting, until :meth:`close`). With ``wait``,
        return once connected, raising :class:`Unauthorized`, or ``TimeoutError``
        (and closing) when not connected within ``timeout`` seconds."""
        if self._task is None:
            self._failure = None
            self._task = asyncio.create_task(self._run(), name=f"hubbub-client {self.url}")
        if wait:
            try:
                await self._wait_connected()
            except TimeoutError:
                await self.close()
                raise TimeoutError(f"could not connect to {self.url} in {self.timeout} s") from None

    async def close(self) -> None:
        """Close the connection for good; subscriptions' iterations end."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._shutdown(None)

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _set_state(self, state: State) -> None:
        if state == self._state:
            return
        self._state = state
        self._changed.set()
        self._changed = asyncio.Event()
        self._emit("state", state)

    def _emit(self, event: str, value: Any) -> None:
        for callback in list(self._listeners.get(event, ())):
            self._callback(callback, value)

    def _callback(self, callback: Callable[[Any], object] | None, value: Any) -> None:
        if callback is None:
            return
        try:
            result = callback(value)
        except Exception:
            logger.exception("hubbub client callback failed")
            return
        if inspect.isawaitable(result):
            self._spawn(result)

    def _spawn(self, awaitable: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("hubbub client task failed", exc_info=task.exception())

    def _shutdown(self, failure: ClientError | None) -> None:
        self._failure = failure
        for task in list(self._tasks):
            task.cancel()
        self._fail_pending(failure or Disconnected("client closed"))
        for sub in self._subs.values():
            sub._end(failure)
        self._subs.clear()
        self._set_state("closed")

    # -- the connection loop ------------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        refreshed = False
        need_token = self._token is None
        ever_connected = False
        while True:
            self._set_state("reconnecting" if ever_connected or attempt else "connecting")
            if need_token and self._get_token is not None:
                try:
                    self._token = await self._get_token()
                except Exception as exc:
                    return self._unauthorized(f"get_token failed: {exc!r}")
                need_token = False
            code: int | None = None
            welcomed = False
            try:
                ws = await connect(
                    self._connect_url(),
                    max_size=None,
                    ping_interval=None,  # the hub's own ping frames are the heartbeat
                    open_timeout=self.timeout,
                    **self._ws_options,
                )
            except InvalidURI as exc:
                return self._shutdown(ClientError(f"invalid hub URL: {exc}"))
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                logger.debug("cannot connect to %s: %r", self.url, exc)
            else:
                code, welcomed = await self._session(ws)
                ever_connected = ever_connected or welcomed
                self._set_state("disconnected")
                self._emit("disconnected", code)
            if welcomed:
                attempt = 0
                refreshed = False
            if code == FORBIDDEN:
                logger.warning("hubbub client stops: the hub closed with 4003 (forbidden)")
                self._task = None
                return self._shutdown(Forbidden("the hub refused the connection (4003)"))
            if code == UNAUTHORIZED:
                # the token expired or was refused: try one new token, no more
                if self._get_token is None or refreshed:
                    return self._unauthorized("the hub refused the token (4001)")
                refreshed = True
                need_token = True
            self._set_state("reconnecting")
            delay = random.uniform(0, min(self.max_delay, self.min_delay * 2**attempt))
            attempt = min(attempt + 1, 30)
            await asyncio.sleep(delay)

    def _unauthorized(self, reason: str) -> None:
        logger.warning("hubbub client stops: %s", reason)
        self._task = None
        self._shutdown(Unauthorized(reason))
        self._emit("unauthorized", reason)

    def _connect_url(self) -> str:
        parts = urlsplit(self.url)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("token", "batch")]
        if self._token:
            query.append(("token", self._token))
        if self.batch:
            query.append(("batch", "1"))
        return urlunsplit(parts._replace(query=urlencode(query)))

    async def _session(self, ws: ClientConnection) -> tuple[int | None, bool]:
        """Pump one connection's frames; returns its close code and whether it got
        as far as ``welcome``."""
        self._ws = ws
        welcomed = False
        idle = self.timeout  # until welcome tells us the ping interval
        try:
            while True:
                try:
                    async with asyncio.timeout(idle):
                        raw = await ws.recv()
                except TimeoutError:
                    logger.warning("no frame from %s for %.0f s; reconnecting", self.url, idle)
                    ws.transport.abort()
                    return 1006, welcomed
                for frame in self._decode(raw):
                    if frame.type == "welcome":
                        welcomed = True
                        idle = (frame.ping_interval or 25.0) + _IDLE_MARGIN
                        self._on_welcome(ws, frame)
                    elif frame.type == "ping":
                        await ws.send('{"type":"pong"}')
                    else:
                        try:
                            self._dispatch(frame)
                        except Exception:
                            logger.exception("error handling a %r frame", frame.type)
        except ConnectionClosed:
            pass
        finally:
            self._ws = None
            self._fail_pending(Disconnected("connection lost"))
            with contextlib.suppress(Exception):
                await asyncio.shield(ws.close())
        return ws.close_code, welcomed

    def _decode(self, raw: str | bytes) -> list[Incoming]:
        if isinstance(raw, bytes):
            logger.warning("ignoring a binary frame (%d bytes)", len(raw))
            return []
        frames = []
        for line in raw.split("\n"):
            if not line:
                continue
            try:
                frames.append(decoder.decode(line))
            except msgspec.DecodeError as exc:
                logger.warning("ignoring a malformed frame (%s): %.200s", exc, line)
        return frames

    def _on_welcome(self, ws: ClientConnection, frame: Incoming) -> None:
        self.client_id = frame.client
        self.user = frame.user
        self._set_state("connected")
        self._emit("connected", frame.client)
        for sub in list(self._subs.values()):
            self._spawn(self._send_subscribe(sub, ws))

    def _dispatch(self, frame: Incoming) -> None:
        kind = frame.type
        if kind in ("ack", "error"):
            pending = self._pending.pop(frame.id, None) if frame.id is not None else None
            if pending is None:
                if kind == "error":
                    error = ServerError(frame.code or 0, frame.message or "")
                    logger.warning("hubbub error: %s", error)
                    self._emit("error", error)
                return
            future, on_ack = pending
            if future.done():
                return
            if kind == "ack":
                if on_ack is not None:
                    on_ack(frame)  # now, before the frames that follow the ack
                future.set_result(frame)
            else:
                future.set_exception(ServerError(frame.code or 0, frame.message or ""))
            return
        sub = self._subs.get(frame.channel) if frame.channel is not None else None
        if sub is None:
            return
        if kind == "message":
            if sub.subscribed and frame.offset is not None and frame.epoch is not None:
                sub._deliver(
                    Message(
                        sub.channel, parse_raw(frame.data), frame.offset, frame.epoch, frame.info
                    )
                )
        elif kind == "join" and frame.info is not None:
            self._callback(sub.on_join, frame.info)
        elif kind == "leave" and frame.info is not None:
            self._callback(sub.on_leave, frame.info)
        elif kind == "unsubscribe":
            # The server ended it: iteration ends with Unsubscribed, and it is not
            # resubscribed on reconnect.
            del self._subs[sub.channel]
            sub._end(Unsubscribed(sub.channel, frame.reason or ""))

    def _fail_pending(self, error: ClientError) -> None:
        pending, self._pending = self._pending, {}
        for future, _ in pending.values():
            if not future.done():
                future.set_exception(error)
                future.exception()

    # -- commands ---------------------------------------------------------------------

    async def _wait_connected(self) -> ClientConnection:
        async with asyncio.timeout(self.timeout):
            while True:
                if self._failure is not None:
                    raise self._failure
                if self._state == "closed" or self._task is None:
                    raise Disconnected("the client is not connected: call connect()")
                if self._state == "connected" and self._ws is not None:
                    return self._ws
                await self._changed.wait()

    async def _request(
        self,
        ws: ClientConnection,
        frame: dict[str, Any],
        on_ack: Callable[[Incoming], None] | None = None,
    ) -> Incoming:
        if ws is not self._ws:
            raise Disconnected("connection lost")
        self._ids += 1
        frame["id"] = self._ids
        future: asyncio.Future[Incoming] = asyncio.get_running_loop().create_future()
        self._pending[self._ids] = (future, on_ack)
        try:
            await ws.send(encode(frame).decode())
        except ConnectionClosed:
            self._pending.pop(frame["id"], None)
            raise Disconnected("connection lost") from None
        try:
            async with asyncio.timeout(self.timeout):
                return await future
        finally:
            self._pending.pop(frame["id"], None)

    async def _command(self, frame: dict[str, Any]) -> Incoming:
        ws = await self._wait_connected()
        return await self._request(ws, frame)

    def subscribe(
        self,
        channel: str,
        *,
        since: StreamPosition | None = None,
        on_join: Callback[ClientInfo] | None = None,
        on_leave: Callback[ClientInfo] | None = None,
        on_recover: Callback[Recovery] | None = None,
    ) -> Subscription:
        """Subscribe to ``channel``. ``await`` the result to wait for the ``ack``
        (raises :class:`ServerError` if refused), or iterate it directly.
        ``since`` resumes from a saved position (``message.position``)."""
        if channel in self._subs:
            raise ClientError(f"already subscribed to {channel!r}")
        sub = Subscription(
            self, channel, since=since, on_join=on_join, on_leave=on_leave, on_recover=on_recover
        )
        self._register(sub)
        return sub

    def _register(self, sub: Subscription) -> None:
        if self._subs.get(sub.channel) is sub or sub._ended:
            return
        if sub.channel in self._subs:
            raise ClientError(f"already subscribed to {sub.channel!r}")
        if self._failure is not None or self._state == "closed":
            sub._end(self._failure or Disconnected("the client is closed"))
            return
        self._subs[sub.channel] = sub
        if self._state == "connected" and self._ws is not None:
            self._spawn(self._send_subscribe(sub, self._ws))

    async def _send_subscribe(self, sub: Subscription, ws: ClientConnection) -> None:
        since = sub.position
        frame: dict[str, Any] = {"type": "subscribe", "channel": sub.channel}
        if since is not None:
            frame["since"] = {"offset": since.offset, "epoch": since.epoch}

        def on_ack(ack: Incoming) -> None:
            if self._subs.get(sub.channel) is sub:
                sub._on_ack(ack, since)

        try:
            await self._request(ws, frame, on_ack)
        except (Disconnected, TimeoutError):
            return  # retried after the next welcome
        except ServerError as exc:
            if self._subs.get(sub.channel) is sub:
                del self._subs[sub.channel]
            sub._end(exc)

    async def _unsubscribe(self, sub: Subscription) -> None:
        if self._subs.get(sub.channel) is not sub:
            sub._end()
            return
        del self._subs[sub.channel]
        sub._end()
        ws = self._ws
        if ws is not None and self._state == "connected":
            with contextlib.suppress(ClientError, TimeoutError):
                await self._request(ws, {"type": "unsubscribe", "channel": sub.channel})

    async def unsubscribe(self, channel: str) -> None:
        """Unsubscribe from ``channel`` (no-op when not subscribed)."""
        sub = self._subs.get(channel)
        if sub is not None:
            await self._unsubscribe(sub)

    async def publish(self, channel: str, data: Any) -> StreamPosition:
        """Publish ``data`` (any JSON value); returns its offset and epoch."""
        ack = await self._command({"type": "publish", "channel": channel, "data": data})
        return StreamPosition(offset=ack.offset or 0, epoch=ack.epoch or "")

    async def rpc(self, method: str, data: Any = None) -> Any:
        """Call the hub's rpc handler ``method``; returns its result."""
        ack = await self._command({"type": "rpc", "method": method, "data": data})
        return parse_raw(ack.data)

    async def presence(self, channel: str) -> dict[str, ClientInfo]:
        """Who is subscribed to ``channel``: client id -> client info."""
        ack = await self._command({"type": "presence", "channel": channel})
        return ack.clients or {}

    async def presence_stats(self, channel: str) -> PresenceStats:
        """How many clients and distinct users are subscribed to ``channel``."""
        ack = await self._command({"type": "presence_stats", "channel": channel})
        return PresenceStats(ack.num_clients or 0, ack.num_users or 0)

    async def history(
        self,
        channel: str,
        *,
        limit: int | None = None,
        since: StreamPosition | None = None,
        reverse: bool = False,
    ) -> HistoryResult:
        """Publications kept in ``channel``'s history (see SPEC section 2)."""
        frame: dict[str, Any] = {"type": "history", "channel": channel}
        if limit is not None:
            frame["limit"] = limit
        if since is not None:
            frame["since"] = {"offset": since.offset, "epoch": since.epoch}
        if reverse:
            frame["reverse"] = True
        ack = await self._command(frame)
        epoch = ack.epoch or ""
        return HistoryResult(
            [
                Message(channel, parse_raw(p.data), p.offset, epoch, p.info)
                for p in ack.publications or []
            ],
            ack.offset or 0,
            epoch,
        )
