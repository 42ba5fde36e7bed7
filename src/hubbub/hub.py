"""The hub: one node's connections, subscriptions and fan-out over an engine.

The hub is the asyncio heart. It accepts connections from a transport, runs
their commands (see :mod:`hubbub.commands`), subscribes this node to channels
in the engine, keeps presence fresh, and hands engine events to its
:class:`~hubbub.fanout.Fanout`, which encodes a publication once and gives the
same frame to every live subscriber: no await, task or copy per subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from hubbub.auth import Credentials, TokenVerifier
from hubbub.commands import execute
from hubbub.config import Settings, with_development_defaults
from hubbub.connection import Connection, DirectWriter, Transport, WriteBatcher
from hubbub.core import protocol
from hubbub.core.channels import Namespaces, is_personal, personal_channel
from hubbub.core.codec import V1, Codec, Command, ServerSub
from hubbub.core.history import HistoryOptions, HistoryResult, is_recovered
from hubbub.core.protocol import ClientInfo, StreamPosition
from hubbub.core.registry import Registry
from hubbub.core.session import Close, Limits, Send, Session
from hubbub.engines import create_engine
from hubbub.engines.base import DISCONNECT, UNSUBSCRIBE, Engine, NodeControl
from hubbub.errors import CloseCode, CommandError, ConfigError, EngineUnavailable, ErrorCode
from hubbub.fanout import Fanout
from hubbub.frames import Frame
from hubbub.metrics import HubMetrics

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Scope

logger = logging.getLogger("hubbub")

Authorizer = Callable[[str, str, str], Awaitable[bool]]
"""``(user, action, channel) -> allowed``; action is subscribe, publish, history or presence."""

Authenticator = Callable[["Scope"], Awaitable[Credentials | None]]
"""Called at the handshake with the ASGI scope; ``None`` falls back to the token."""


@dataclass(frozen=True, slots=True)
class RpcContext:
    """What an rpc handler knows about its caller."""

    hub: Hub
    client: str
    user: str
    credentials: Credentials


RpcHandler = Callable[[RpcContext, Any], Awaitable[Any]]


class Hub:
    """A messaging hub. Mount :attr:`asgi` in any ASGI app, or run ``hubbub serve``.

    ``options`` are :class:`~hubbub.config.Settings` fields (``secret=...``,
    ``namespaces={...}``), used when ``settings`` is not given. ``engine`` is an
    :class:`~hubbub.engines.base.Engine` or a URL (``"memory"``, ``"redis://..."``).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        engine: Engine | str | None = None,
        authorizer: Authorizer | None = None,
        authenticator: Authenticator | None = None,
        **options: Any,
    ) -> None:
        if settings is None:
            try:
                settings = msgspec.convert(options, Settings)
            except msgspec.ValidationError as exc:
                raise ConfigError(f"invalid hub option: {exc}") from None
        elif options:
            raise TypeError("pass either settings or keyword options, not both")
        if not (settings.secret or settings.public_key):
            settings = with_development_defaults(settings)
            logger.warning(
                "hubbub: no secret configured; using a random one (development mode). "
                "Tokens will not survive a restart."
            )
        self.settings = settings
        self.namespaces: Namespaces = settings.namespace_table()
        self.verifier = TokenVerifier(secret=settings.secret, public_key=settings.public_key)
        if engine is None:
            engine = settings.engine
        self.engine: Engine = (
            create_engine(engine, data_dir=settings.data_dir) if isinstance(engine, str) else engine
        )
        self.authorizer = authorizer
        self.authenticator = authenticator
        self.metrics = HubMetrics()
        self.limits = Limits(
            max_message_size=settings.max_message_size,
            rate_limit=settings.rate_limit,
            rate_burst=settings.rate_burst,
            ping_interval=settings.ping_interval,
            pong_timeout=settings.pong_timeout,
            auth_timeout=settings.auth_timeout,
        )
        self.node_id = uuid.uuid4().hex[:12]
        self.started_at = time.time()
        self.connections: dict[str, Connection] = {}
        self.users: dict[str, set[Connection]] = {}
        self.rpc_handlers: dict[str, RpcHandler] = {}
        self.registry: Registry[Connection, Frame] = Registry()
        self._node_channels: set[str] = set()
        self._channel_locks: dict[str, asyncio.Lock] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._batcher = WriteBatcher()
        self.fanout = Fanout(
            registry=self.registry,
            engine=self.engine,
            metrics=self.metrics,
            users=self.users,
            spawn=self._spawn,
            after_leaving=self._after_leaving,
        )
        self._start_lock: asyncio.Lock | None = None
        self._started = False
        self._closing = False
        self._asgi: ASGIApp | None = None

    # -- lifecycle --------------------------------------------------------------

    @property
    def asgi(self) -> ASGIApp:
        """The ASGI app: ``/ws``, health, metrics and (when on) the demo."""
        if self._asgi is None:
            from hubbub.asgi.app import build_app

            self._asgi = build_app(self)
        return self._asgi

    async def start(self) -> None:
        """Start the engine. Called by the ASGI lifespan, or lazily on first use
        (a mounted sub-app gets no lifespan events from Starlette)."""
        if self._started:
            return
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._started:
                return
            await self.engine.start(self.fanout)
            self._started = True
            self._spawn(self._refresh_presence_forever())

    async def close(self) -> None:
        """Close every connection with 1012 (server restarting) and stop the engine."""
        if self._closing:
            return
        self._closing = True
        await asyncio.gather(
            *(c.close(CloseCode.SERVER_RESTART, "server restarting") for c in self.live())
        )
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._started:
            await self.engine.close()
            self._started = False

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[None]:
        """For ``FastAPI(lifespan=hub.lifespan)`` / ``Starlette(lifespan=...)``."""
        await self.start()
        try:
            yield
        finally:
            await self.close()

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def live(self) -> list[Connection]:
        return list(self.connections.values())

    # -- app-facing API -----------------------------------------------------------

    async def publish(
        self,
        channel: str,
        data: Any,
        *,
        raw: bool = False,
        idempotency_key: str | None = None,
    ) -> StreamPosition:
        """Publish ``data`` (any JSON value; or JSON bytes with ``raw=True``) as the server.

        Namespace rules on client publishing do not apply: the server may publish
        anywhere. Returns the publication's offset and epoch. The same
        ``idempotency_key`` on the same channel within 5 minutes publishes once and
        returns the first result."""
        self.namespaces.resolve(channel)
        payload = msgspec.Raw(data) if raw else protocol.raw_json(data)
        return await self.engine_publish(
            channel, payload, info=None, idempotency_key=idempotency_key
        )

    def rpc(self, method: str) -> Callable[[RpcHandler], RpcHandler]:
        """Decorator registering an rpc handler: ``@hub.rpc("echo")``."""

        def register(handler: RpcHandler) -> RpcHandler:
            self.rpc_handlers[method] = handler
            return handler

        return register

    async def disconnect_user(self, user: str) -> None:
        """Close every connection of ``user`` on every node (4003)."""
        await self.start()
        await self.engine.control(NodeControl(DISCONNECT, user))

    async def unsubscribe_user(self, user: str, channel: str) -> None:
        """End ``user``'s subscriptions to ``channel`` on every node: presence and
        ``leave`` as for the client's own unsubscribe, and the client is told (it
        does not resubscribe). Not for the personal channel (400)."""
        self.namespaces.resolve(channel)
        if user and channel == personal_channel(user):
            raise CommandError(ErrorCode.BAD_REQUEST, "the personal channel cannot be unsubscribed")
        await self.start()
        await self.engine.control(NodeControl(UNSUBSCRIBE, user, channel))

    async def engine_publish(
        self,
        channel: str,
        data: msgspec.Raw,
        *,
        info: ClientInfo | None,
        idempotency_key: str | None = None,
    ) -> StreamPosition:
        await self.start()
        options = self.namespaces.resolve(channel)
        if len(data) > self.settings.max_message_size:
            raise CommandError(
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"`data` exceeds max_message_size ({self.settings.max_message_size} bytes)",
            )
        history = (
            HistoryOptions(options.history_size, options.history_ttl)
            if options.history_enabled
            else HistoryOptions(0, 0)
        )
        started = time.perf_counter()
        position = await self.engine.publish(
            channel, data, info=info, history=history, idempotency_key=idempotency_key
        )
        self.metrics.publish_latency.observe(time.perf_counter() - started)
        return position

    # -- connections ----------------------------------------------------------------

    def admit(self, credentials: Credentials | None) -> CloseCode | None:
        """Whether a new connection may open now; the close code if not."""
        if self._closing:
            return CloseCode.SERVER_RESTART
        limit = self.settings.max_connections
        if limit and len(self.connections) >= limit:
            return CloseCode.FORBIDDEN
        per_user = self.settings.max_connections_per_user
        if (
            credentials is not None
            and credentials.user
            and per_user
            and len(self.users.get(credentials.user, ())) >= per_user
        ):
            return CloseCode.FORBIDDEN
        return None

    async def connect(
        self,
        transport: Transport,
        credentials: Credentials | None,
        *,
        batch: bool = False,
        direct: DirectWriter | None = None,
        codec: Codec = V1,
    ) -> Connection:
        """Register an accepted connection. Without credentials it must send
        ``auth`` first. Returns once ``welcome`` (and the personal channel) is live.

        With a codec whose client always sends a connect command first
        (Centrifugo), the credentials are kept for that command, which is
        answered by the welcome."""
        await self.start()
        loop = asyncio.get_running_loop()
        welcome_now = credentials is not None and not codec.explicit_connect
        conn = Connection(
            client_id=uuid.uuid4().hex,
            credentials=(credentials if welcome_now else None) or Credentials(user=""),
            session=Session(self.limits, loop.time(), authenticated=welcome_now, codec=codec),
            transport=transport,
            max_queue_bytes=self.settings.max_queue_bytes,
            batch=batch or codec.batch,
            direct=direct,
            batcher=self._batcher,
            on_close=self._forget,
            codec=codec,
            handshake=None if welcome_now else credentials,
        )
        self.connections[conn.client_id] = conn
        self.metrics.connections.inc()
        conn.start()
        if welcome_now and credentials is not None:
            try:
                await self.welcome(conn, credentials)
            except EngineUnavailable:
                # The personal channel cannot go live (Redis is down): no welcome.
                # 1013 "try again later": clients reconnect with backoff.
                conn.abort(CloseCode.TRY_AGAIN_LATER, "engine unavailable, retry later")
                return conn
        self._schedule_tick(conn)
        return conn

    async def welcome(
        self,
        conn: Connection,
        credentials: Credentials,
        *,
        reply_to: int | None = None,
        recover: dict[str, StreamPosition] | None = None,
    ) -> None:
        """Bind ``credentials`` to ``conn``, go live on its personal channel, say welcome
        (as the reply to command ``reply_to`` where the protocol wants one).

        A codec with :attr:`~hubbub.core.codec.Codec.positioned_welcome` gets the
        personal channel's position in the welcome where history is kept, and the
        publications missed since its position in ``recover``, if any."""
        conn.credentials = credentials
        conn.handshake = None
        conn.info = ClientInfo(
            client=conn.client_id,
            user=credentials.user,
            info=msgspec.UNSET if credentials.info is None else credentials.info,
        )
        subs: list[ServerSub] = []
        synced: HistoryResult | None = None
        channel = personal_channel(credentials.user)
        if credentials.user:
            self.users.setdefault(credentials.user, set()).add(conn)
            conn.session.begin_subscribe(channel)
            positioned = (
                conn.codec.positioned_welcome and self.namespaces.resolve(channel).history_enabled
            )
            since = (recover or {}).get(channel)
            try:
                if positioned:
                    synced, recovered = await self.join(conn, channel, since, presence=False)
                else:
                    self.registry.add_syncing(channel, conn.client_id)
                    await self.node_subscribe(channel)
            except BaseException:
                # Undone, so that an ``auth`` frame may try again.
                conn.session.end_subscribe(channel)
                if self.registry.remove(channel, conn.client_id):
                    self._spawn(self.node_unsubscribe(channel))
                user_conns = self.users.get(credentials.user)
                if user_conns is not None:
                    user_conns.discard(conn)
                    if not user_conns:
                        del self.users[credentials.user]
                raise
            if conn.closed:
                return
            if synced is None:
                for item in self.registry.promote(channel, conn.client_id, conn, -1, ""):
                    conn.enqueue(item.frame)
                subs.append(ServerSub(channel))
            else:
                subs.append(ServerSub.synced(channel, synced, recovered))
        conn.session.authenticated()
        welcome = protocol.Welcome(
            client=conn.client_id, user=credentials.user, ping_interval=self.settings.ping_interval
        )
        conn.send_text(conn.codec.encode_welcome(welcome, reply_to=reply_to, subs=subs))
        if synced is not None:
            self.go_live(conn, channel, synced)  # after the welcome, like a subscribe ack

    async def receive(self, conn: Connection, frame: str | bytes) -> None:
        """Handle one message from ``conn`` (one or more commands, depending on its
        codec); commands run one at a time per connection, in order."""
        loop = asyncio.get_running_loop()
        for action in conn.session.receive_all(frame, loop.time()):
            if conn.closed:
                return
            if isinstance(action, Send):
                if action.error is not None:
                    self.metrics.count_error(action.error)
                conn.send_text(action.frame)
            elif isinstance(action, Close):
                # Graceful: the error frames queued before it (429s before a 4029) go first.
                self.metrics.count_error(action.code)
                await conn.close(action.code, action.reason)
            else:
                await self._execute(conn, action.command)

    async def _execute(self, conn: Connection, command: Command) -> None:
        kind = type(command).__struct_config__.tag
        counter = self.metrics.in_by_type.get(str(kind))
        if counter is not None:
            counter.inc()
        try:
            reply = await execute(self, conn, command)
        except CommandError as exc:
            self.metrics.count_error(exc.code)
            conn.send_text(conn.codec.encode_error(exc.code, exc.message, command.id, exc.kind))
            return
        except Exception:
            reference = secrets.token_hex(4)
            logger.exception("internal error handling %s (ref %s)", kind, reference)
            self.metrics.count_error(ErrorCode.INTERNAL)
            conn.send_text(
                conn.codec.encode_error(
                    ErrorCode.INTERNAL, f"internal error (ref {reference})", command.id
                )
            )
            return
        if reply is not None and command.id is not None:
            conn.send_text(conn.codec.encode_reply(command, reply))

    def _schedule_tick(self, conn: Connection) -> None:
        # (arguments rather than a closure: a few hundred bytes less per connection)
        conn.schedule(conn.session.next_deadline(), self._tick, conn)

    def _tick(self, conn: Connection) -> None:
        action = conn.session.tick(asyncio.get_running_loop().time())
        if isinstance(action, Send):
            conn.send_text(action.frame)
        elif isinstance(action, Close):
            self.metrics.count_error(action.code)
            conn.abort(action.code, action.reason)
            return
        self._schedule_tick(conn)

    def _forget(self, conn: Connection) -> None:
        """Called once when ``conn`` closes: drop it and its subscriptions."""
        if self.connections.pop(conn.client_id, None) is None:
            return
        self.metrics.connections.dec()
        if conn.close_code == CloseCode.SLOW_CONSUMER:
            self.metrics.queue_overflows.inc()
        user_conns = self.users.get(conn.user)
        if user_conns is not None:
            user_conns.discard(conn)
            if not user_conns:
                del self.users[conn.user]
        channels = list(conn.session.channels)
        conn.session.channels.clear()
        for channel in channels:
            self.registry.remove(channel, conn.client_id)
        self.metrics.subscriptions.set(self.registry.subscription_count())
        if channels:
            self._spawn(self._after_leaving(conn, channels))

    async def _after_leaving(self, conn: Connection, channels: Iterable[str]) -> None:
        for channel in channels:
            try:
                await self.leave(conn, channel)
            except Exception as exc:  # engine down: presence expires by itself
                logger.debug("cleanup of %s in %s failed: %r", conn.client_id, channel, exc)

    # -- subscriptions ----------------------------------------------------------------

    async def node_subscribe(self, channel: str) -> None:
        """Make sure this node receives ``channel``'s events."""
        if channel in self._node_channels:
            return
        lock = self._channel_locks.setdefault(channel, asyncio.Lock())
        async with lock:
            if channel not in self._node_channels:
                await self.engine.subscribe(channel)
                self._node_channels.add(channel)
        self._drop_lock(channel, lock)

    async def node_unsubscribe(self, channel: str) -> None:
        """Stop receiving ``channel`` when no local subscriber is left."""
        lock = self._channel_locks.setdefault(channel, asyncio.Lock())
        async with lock:
            if channel in self._node_channels and channel not in self.registry:
                self._node_channels.discard(channel)
                await self.engine.unsubscribe(channel)
        self._drop_lock(channel, lock)

    def _drop_lock(self, channel: str, lock: asyncio.Lock) -> None:
        if not lock.locked() and self._channel_locks.get(channel) is lock:
            del self._channel_locks[channel]

    async def join(
        self, conn: Connection, channel: str, since: StreamPosition | None, *, presence: bool
    ) -> tuple[HistoryResult, bool | None]:
        """Subscribe ``conn`` to ``channel``: returns the position (and the missed
        publications when ``since`` recovers) and ``recovered``. The caller queues
        the ack and then calls :meth:`go_live`."""
        self.registry.add_syncing(channel, conn.client_id)
        try:
            await self.node_subscribe(channel)
            if since is None:
                result = await self.engine.history(channel, limit=0)
                recovered = None
            else:
                result = await self.engine.history(channel, since=since.offset)
                recovered = is_recovered(since, result)
                if not recovered:
                    result = HistoryResult([], result.offset, result.epoch)
            if presence:
                await self.engine.add_presence(channel, conn.info, self.settings.presence_ttl)
        except BaseException:
            if self.registry.remove(channel, conn.client_id):
                self._spawn(self.node_unsubscribe(channel))
            raise
        return result, recovered

    def go_live(self, conn: Connection, channel: str, result: HistoryResult) -> None:
        """Release what was published while ``conn`` was syncing, after its ack."""
        after = result.publications[-1].offset if result.publications else result.offset
        for item in self.registry.promote(channel, conn.client_id, conn, after, result.epoch):
            conn.enqueue(item.frame)
        self.metrics.subscriptions.set(self.registry.subscription_count())

    async def leave(self, conn: Connection, channel: str) -> None:
        """Engine-side cleanup after ``conn`` left ``channel`` (already out of the registry)."""
        if channel not in self.registry:
            await self.node_unsubscribe(channel)
        if is_personal(channel):
            return
        options = self.namespaces.resolve(channel)
        if options.presence:
            await self.engine.remove_presence(channel, conn.client_id)
        if options.join_leave:
            await self.engine.publish_leave(channel, conn.info)

    async def _refresh_presence_forever(self) -> None:
        """Re-add presence of local clients well before ``presence_ttl`` runs out,
        and announce the ``leave`` of entries that expired (their node crashed)."""
        interval = self.settings.presence_ttl / 3
        while True:
            await asyncio.sleep(interval)
            for conn in self.live():
                for channel in list(conn.session.channels):
                    if is_personal(channel) or channel not in self.registry:
                        continue
                    try:
                        if self.namespaces.resolve(channel).presence:
                            await self.engine.add_presence(
                                channel, conn.info, self.settings.presence_ttl
                            )
                    except Exception as exc:
                        logger.debug("presence refresh failed: %r", exc)
            await self.expire_presence()

    async def expire_presence(self) -> None:
        """Collect the expired presence entries of the channels this node has
        subscribers in and publish a ``leave`` for each (where join/leave is on).

        A node that crashed no longer refreshes its clients' entries; any node
        still serving the channel collects them here, and the engine hands each
        expired entry to exactly one node, so each gets one ``leave``. Every
        node runs this every ``presence_ttl / 3``: a crashed node's clients
        leave within ``presence_ttl + presence_ttl / 3`` of the crash."""
        for channel in self.registry.channels():
            if is_personal(channel) or channel not in self.registry:
                continue
            try:
                options = self.namespaces.resolve(channel)
                if not options.presence:
                    continue
                for info in await self.engine.expire_presence(channel):
                    conn = self.connections.get(info.client)
                    if conn is not None and channel in conn.session.channels:
                        # Ours and alive (a refresh came late): put it back, no leave.
                        await self.engine.add_presence(
                            channel, conn.info, self.settings.presence_ttl
                        )
                    elif options.join_leave:
                        await self.engine.publish_leave(channel, info)
            except Exception as exc:
                logger.debug("presence expiry of %s failed: %r", channel, exc)
