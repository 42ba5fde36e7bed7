"""One client connection on the asyncio side: a bounded outbound queue and its writer.

Fan-out calls :meth:`Connection.enqueue`, which never awaits: it appends an
already-encoded frame and wakes the single writer task. When what hubbub holds
for the connection passes ``max_queue_bytes`` the client is too slow: its queue
is dropped and it is closed with 4008, so it can reconnect and recover from
history, while every other subscriber carries on untouched.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Protocol

from hubbub.auth import Credentials
from hubbub.core import protocol
from hubbub.core.session import Session
from hubbub.errors import CloseCode

logger = logging.getLogger("hubbub.connection")

#: How long a graceful close waits for queued frames to be written.
GRACEFUL_FLUSH_TIMEOUT = 1.0


class Transport(Protocol):
    """What a connection needs from the WebSocket below it (ASGI or other)."""

    async def send(self, text: str) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


class Connection:
    """A client: who it is, its protocol session, its outbound queue."""

    __slots__ = (
        "_closed",
        "_closer",
        "_on_close",
        "_queue",
        "_timer",
        "_transport",
        "_wakeup",
        "_writer",
        "batch",
        "client_id",
        "close_code",
        "credentials",
        "info",
        "max_queue_bytes",
        "queued_bytes",
        "session",
    )

    def __init__(
        self,
        *,
        client_id: str,
        credentials: Credentials,
        session: Session,
        transport: Transport,
        max_queue_bytes: int,
        batch: bool = False,
        on_close: Callable[[Connection], None] | None = None,
    ) -> None:
        self.client_id = client_id
        self.credentials = credentials
        self.session = session
        self.info = protocol.ClientInfo(client=client_id, user=credentials.user)
        self.max_queue_bytes = max_queue_bytes
        self.batch = batch
        self.queued_bytes = 0
        self.close_code: int | None = None
        self._transport = transport
        self._queue: deque[tuple[str, int]] = deque()
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._closer: asyncio.Task[None] | None = None
        self._on_close = on_close

    @property
    def user(self) -> str:
        return self.credentials.user

    @property
    def closed(self) -> bool:
        return self._closed

    def start(self) -> None:
        self._writer = asyncio.get_running_loop().create_task(
            self._write_loop(), name=f"hubbub-writer-{self.client_id}"
        )

    # -- outbound ---------------------------------------------------------------

    def enqueue(self, frame: str, size: int) -> None:
        """Queue an encoded frame of ``size`` bytes. Never blocks."""
        if self._closed:
            return
        self.queued_bytes += size
        if self.queued_bytes > self.max_queue_bytes:
            self.abort(CloseCode.SLOW_CONSUMER, "outbound queue overflow (slow consumer)")
            return
        self._queue.append((frame, size))
        self._wakeup.set()

    def send_text(self, frame: str) -> None:
        """Queue a frame encoded as ``str`` (replies; not the fan-out path)."""
        self.enqueue(frame, len(frame.encode()) if not frame.isascii() else len(frame))

    async def _write_loop(self) -> None:
        queue = self._queue
        transport = self._transport
        try:
            while True:
                if not queue:
                    if self._closed:
                        return  # drained for a graceful close
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                if self.batch and len(queue) > 1:
                    frames = []
                    while queue:
                        frame, size = queue.popleft()
                        self.queued_bytes -= size
                        frames.append(frame)
                    await transport.send("\n".join(frames))
                else:
                    frame, size = queue.popleft()
                    self.queued_bytes -= size
                    await transport.send(frame)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the peer went away mid-send
            logger.debug("writer of %s stopped: %r", self.client_id, exc)
            self.abort(CloseCode.GOING_AWAY, "send failed")

    # -- closing ----------------------------------------------------------------

    def abort(self, code: int, reason: str) -> None:
        """Close now, dropping anything queued (slow consumer, protocol violation)."""
        if self._closed:
            return
        self._mark_closed(code)
        self._queue.clear()
        self.queued_bytes = 0
        if self._writer is not None and self._writer is not asyncio.current_task():
            self._writer.cancel()
        self._closer = asyncio.get_running_loop().create_task(self._close_transport(code, reason))

    async def wait_closed(self) -> None:
        """Wait until a close started by :meth:`abort` was handed to the transport."""
        if self._closer is not None:
            await self._closer

    async def close(self, code: int, reason: str) -> None:
        """Close after the queued frames were written (graceful close)."""
        if self._closed:
            return
        self._mark_closed(code)
        writer = self._writer
        if writer is not None and writer is not asyncio.current_task():
            # The writer flushes what is queued and returns; never wait long for it.
            self._wakeup.set()
            done, _ = await asyncio.wait({writer}, timeout=GRACEFUL_FLUSH_TIMEOUT)
            if not done:
                writer.cancel()
        await self._close_transport(code, reason)

    def _mark_closed(self, code: int) -> None:
        self._closed = True
        self.close_code = code
        self.session.close()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._on_close is not None:
            self._on_close(self)

    async def _close_transport(self, code: int, reason: str) -> None:
        try:
            await self._transport.close(code, reason)
        except Exception as exc:  # already gone
            logger.debug("close of %s failed: %r", self.client_id, exc)

    def finished(self) -> None:
        """The transport is gone (peer closed): stop the writer and timers."""
        if not self._closed:
            self._mark_closed(CloseCode.GOING_AWAY)
            self._queue.clear()
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()

    # -- timers -----------------------------------------------------------------

    def schedule(self, when: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` at loop time ``when`` (one timer per connection)."""
        if self._closed:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_at(when, callback)
