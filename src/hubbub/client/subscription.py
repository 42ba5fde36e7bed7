"""A subscription of :class:`hubbub.client.Client`: an async iterator of messages."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from hubbub.client.types import (
    Callback,
    Disconnected,
    End,
    Incoming,
    Message,
    Recovery,
)
from hubbub.core.protocol import ClientInfo, StreamPosition, parse_raw

if TYPE_CHECKING:
    from hubbub.client.client import Client


class Subscription:
    """A channel subscription: ``await`` it to wait for the first ``ack``, and
    ``async for`` over it for its :class:`Message` s, in offset order, each once.

    Iteration ends when the subscription is unsubscribed or the client closes
    (and raises :class:`Unauthorized`, :class:`ServerError` or, when the server
    ended it, :class:`Unsubscribed`, when that is why).
    Messages wait in an unbounded queue until read.
    """

    def __init__(
        self,
        client: Client,
        channel: str,
        *,
        since: StreamPosition | None,
        on_join: Callback[ClientInfo] | None,
        on_leave: Callback[ClientInfo] | None,
        on_recover: Callback[Recovery] | None,
    ) -> None:
        self.client = client
        self.channel = channel
        self.epoch: str | None = since.epoch if since else None
        self.offset: int = since.offset if since else -1
        self.on_join = on_join
        self.on_leave = on_leave
        self.on_recover = on_recover
        self.subscribed = False
        self._queue: asyncio.Queue[Message | End] = asyncio.Queue()
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._ended = False

    @property
    def position(self) -> StreamPosition | None:
        """The last publication seen (or the subscribe position), for ``since``."""
        if self.epoch is None:
            return None
        return StreamPosition(offset=max(self.offset, 0), epoch=self.epoch)

    def __await__(self) -> Generator[Any, None, Subscription]:
        return self._wait_ready().__await__()

    async def _wait_ready(self) -> Subscription:
        self.client._register(self)
        await asyncio.shield(self._ready)
        return self

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Message:
        if not self._ready.done():
            await self._wait_ready()
        item = await self._queue.get()
        if isinstance(item, End):
            self._queue.put_nowait(item)  # later calls end too
            if item.error is not None:
                raise item.error
            raise StopAsyncIteration
        return item

    async def unsubscribe(self) -> None:
        """Stop receiving this channel and end the iteration."""
        await self.client._unsubscribe(self)

    # -- driven by the client ---------------------------------------------------------

    def _on_ack(self, frame: Incoming, since: StreamPosition | None) -> None:
        epoch = frame.epoch or ""
        offset = frame.offset if frame.offset is not None else 0
        missed: int | None = None
        if since is not None and frame.recovered:
            publications = frame.publications or []
            missed = 0
            for p in publications:
                if self._deliver(
                    Message(self.channel, parse_raw(p.data), p.offset, epoch, p.info), notify=False
                ):
                    missed += 1
        if self.epoch != epoch or self.offset < offset:
            self.epoch, self.offset = epoch, offset
        self.subscribed = True
        if not self._ready.done():
            self._ready.set_result(None)
        if since is not None:
            recovery = Recovery(bool(frame.recovered), missed, offset, epoch)
            self.client._callback(self.on_recover, recovery)

    def _deliver(self, message: Message, *, notify: bool = True) -> bool:
        if message.epoch == self.epoch and message.offset <= self.offset:
            return False  # seen already
        changed = self.epoch is not None and message.epoch != self.epoch
        self.epoch, self.offset = message.epoch, message.offset
        if changed and notify:
            # the channel's history was lost on the hub: the app should reload
            self.client._callback(
                self.on_recover, Recovery(False, None, message.offset, message.epoch)
            )
        self._queue.put_nowait(message)
        return True

    def _end(self, error: BaseException | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        self.subscribed = False
        if not self._ready.done():
            self._ready.set_exception(error or Disconnected("subscription ended"))
            self._ready.exception()  # mark retrieved: awaiting it is optional
        self._queue.put_nowait(End(error))
