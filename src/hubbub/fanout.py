"""Engine events to frames: one node's fan-out.

:class:`Fanout` is the hub's :class:`~hubbub.engines.base.EngineEvents`. A
publication is encoded once into a :class:`~hubbub.frames.Frame` and handed to
each live subscriber's connection, which takes it without awaiting; subscribers
still syncing get it buffered (see :mod:`hubbub.core.registry`). It also keeps
each channel's delivery in offset order across a lost engine link: a gap is
filled from history before newer publications go out.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from hubbub.connection import Connection
from hubbub.core import protocol
from hubbub.core.protocol import ClientInfo, Publication
from hubbub.core.registry import Buffered, ChannelSubscribers, Registry
from hubbub.engines.base import DISCONNECT, UNSUBSCRIBE, Engine, NodeControl
from hubbub.errors import CloseCode
from hubbub.frames import Frame
from hubbub.metrics import HubMetrics

logger = logging.getLogger("hubbub")


class Fanout:
    """Delivers engine events to this node's connections."""

    def __init__(
        self,
        *,
        registry: Registry[Connection, Frame],
        engine: Engine,
        metrics: HubMetrics,
        users: dict[str, set[Connection]],
        spawn: Callable[[Awaitable[Any]], None],
        after_leaving: Callable[[Connection, Iterable[str]], Awaitable[None]] | None = None,
    ) -> None:
        self._registry = registry
        self._engine = engine
        self._metrics = metrics
        self._users = users
        self._spawn = spawn
        self._after_leaving = after_leaving
        """Engine-side cleanup (presence, ``leave``) once a connection left channels."""

    def on_publication(self, channel: str, epoch: str, publication: Publication) -> None:
        subs = self._registry.get(channel)
        if subs is None:
            return
        if subs.held is not None:
            subs.held.append((epoch, publication))
            return
        if epoch == subs.epoch and subs.offset >= 0 and publication.offset > subs.offset + 1:
            logger.warning(
                "gap in %s: %d -> %d; fetching the missed publications",
                channel,
                subs.offset,
                publication.offset,
            )
            subs.held = [(epoch, publication)]
            self._spawn(self._fill_gap(channel))
            return
        self._deliver(subs, channel, epoch, publication)

    def _deliver(
        self,
        subs: ChannelSubscribers[Connection, Frame],
        channel: str,
        epoch: str,
        publication: Publication,
    ) -> None:
        if epoch == subs.epoch and publication.offset <= subs.offset:
            return  # already delivered (a gap fill overlapped the live stream)
        subs.epoch = epoch
        subs.offset = publication.offset
        message = protocol.Message(
            channel=channel,
            data=publication.data,
            offset=publication.offset,
            epoch=epoch,
            info=publication.info,
        )
        # Encoded in v1 now; other protocols' subscribers take frame.variant(codec),
        # encoded on first use: once per protocol in use, never once per subscriber.
        frame = Frame(protocol.encode_json(message), push=message)
        # A copy of the pointers: an overflowing queue closes its connection (4008),
        # which removes it from ``subs.live`` in the middle of this loop.
        for conn in tuple(subs.live.values()):
            conn.enqueue(frame)
        if subs.syncing:
            for buffer in subs.syncing.values():
                buffer.append(Buffered(publication.offset, epoch, frame))
        self._metrics.out_messages.inc(len(subs.live))

    def _broadcast_event(self, channel: str, frame: Frame, skip: str) -> None:
        subs = self._registry.get(channel)
        if subs is None:
            return
        for client, conn in tuple(subs.live.items()):  # enqueue may close (see _deliver)
            if client != skip:
                conn.enqueue(frame)

    def on_join(self, channel: str, info: ClientInfo) -> None:
        join = protocol.Join(channel=channel, info=info)
        frame = Frame(protocol.encode_json(join), push=join)
        self._broadcast_event(channel, frame, info.client)

    def on_leave(self, channel: str, info: ClientInfo) -> None:
        leave = protocol.Leave(channel=channel, info=info)
        frame = Frame(protocol.encode_json(leave), push=leave)
        self._broadcast_event(channel, frame, info.client)

    def on_control(self, command: NodeControl) -> None:
        if command.action == DISCONNECT:
            for conn in list(self._users.get(command.user, ())):
                conn.abort(CloseCode.FORBIDDEN, "disconnected by the server")
        elif command.action == UNSUBSCRIBE:
            self._unsubscribe_user(command.user, command.channel)
        else:
            logger.warning("ignoring an unknown node control action %r", command.action)

    def _unsubscribe_user(self, user: str, channel: str) -> None:
        """End the live subscriptions of ``user``'s connections to ``channel``: out of
        the registry now (nothing newer reaches them), then the ``unsubscribe`` push
        behind what is already queued, then presence and ``leave`` as for a client's
        own unsubscribe. A subscribe still in progress is not touched: it began
        after the order, as far as this node can tell."""
        subs = self._registry.get(channel)
        if subs is None:
            return
        conns = [
            conn
            for conn in self._users.get(user, ())
            if conn.client_id in subs.live and channel in conn.session.channels
        ]
        if not conns:
            return
        push = protocol.ServerUnsubscribe(channel=channel, reason="unsubscribed by the server")
        frame = Frame(protocol.encode_json(push), push=push)
        for conn in conns:
            conn.session.end_subscribe(channel)
            self._registry.remove(channel, conn.client_id)
            conn.enqueue(frame)
        self._metrics.subscriptions.set(self._registry.subscription_count())
        if self._after_leaving is not None:
            for conn in conns:
                self._spawn(self._after_leaving(conn, (channel,)))

    def on_engine_state(self, ready: bool) -> None:
        if not ready:
            logger.warning("engine link lost; delivery resumes when it is back")
            return
        logger.info("engine link is back; checking %d channels for gaps", len(self._registry))
        for channel in self._registry.channels():
            subs = self._registry.get(channel)
            if subs is not None and subs.held is None and subs.offset >= 0:
                subs.held = []
                self._spawn(self._fill_gap(channel))

    async def _fill_gap(self, channel: str) -> None:
        """Deliver what this node missed in ``channel``, then what was held meanwhile.

        If the engine lost that history (new epoch, e.g. Redis restarted empty)
        subscribers get the new epoch's kept publications from its start, then
        the held ones: they see the new epoch and know to recover what came
        before it, and miss nothing of the new one that history still holds."""
        subs = self._registry.get(channel)
        if subs is None:
            return
        try:
            result = await self._engine.history(channel, since=subs.offset)
            if result.epoch != subs.epoch:
                result = await self._engine.history(channel, since=0)
            for publication in result.publications:
                self._deliver(subs, channel, result.epoch, publication)
        except Exception as exc:
            logger.warning("could not fetch missed publications of %s: %r", channel, exc)
        finally:
            held, subs.held = subs.held or [], None
            for epoch, publication in held:
                self._deliver(subs, channel, epoch, publication)
