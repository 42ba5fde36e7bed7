"""One client connection on the asyncio side: what it holds outbound, and how it is sent.

Fan-out calls :meth:`Connection.enqueue`, which never awaits. There are two
ways down, chosen by what the server offers:

* **direct** (``hubbub serve``, see :mod:`hubbub.asgi.direct`): frames are
  gathered until the end of the event loop's current iteration, then written to
  the socket's transport with one call — the shared, ready WebSocket bytes of a
  lone frame, several frames at once under load, or (``?batch=1``) one message
  joining them with ``\n``. What the kernel did not take waits in the
  transport's buffer;
* **queued** (any ASGI server): the frame is appended to a bounded queue that one
  writer task drains with ASGI sends, several frames per WebSocket message when
  the client asked for batching.

Either way, when what hubbub holds for the connection passes ``max_queue_bytes``
the client is too slow: it is closed with 4008, so it can reconnect and recover
from history, while every other subscriber carries on untouched.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Protocol

from hubbub.auth import Credentials
from hubbub.core import protocol
from hubbub.core.codec import V1, Codec
from hubbub.core.session import Session
from hubbub.errors import CloseCode
from hubbub.frames import Frame, frame_text

logger = logging.getLogger("hubbub.connection")

#: How long a graceful close waits for queued frames to be written.
GRACEFUL_FLUSH_TIMEOUT = 1.0
#: How long a closed connection that does not read its close frame keeps its socket.
ABORT_GRACE = 5.0


class Transport(Protocol):
    """What a connection needs from the WebSocket below it (ASGI or other)."""

    async def send(self, text: str) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


class DirectWriter(Protocol):
    """A socket that takes ready WebSocket frames without awaiting."""

    def write(self, wire: bytes) -> None: ...

    def buffered(self) -> int:
        """Bytes written that the kernel has not taken yet."""
        ...

    def abort_after(self, delay: float) -> None:
        """Drop the socket if it is still open after ``delay`` seconds."""
        ...


class WriteBatcher:
    """Flushes, once per event-loop iteration, every direct connection that has
    frames waiting: one write call per connection however many frames came."""

    __slots__ = ("_dirty", "_scheduled")

    def __init__(self) -> None:
        self._dirty: list[Connection] = []
        self._scheduled = False

    def mark(self, conn: Connection) -> None:
        self._dirty.append(conn)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        dirty, self._dirty = self._dirty, []
        self._scheduled = False
        for conn in dirty:
            conn.flush()


class Connection:
    """A client: who it is, its protocol session, what it holds outbound."""

    __slots__ = (
        "_batcher",
        "_closed",
        "_closer",
        "_direct",
        "_on_close",
        "_pending",
        "_push_codec",
        "_queue",
        "_timer",
        "_transport",
        "_wakeup",
        "_writer",
        "batch",
        "client_id",
        "close_code",
        "codec",
        "credentials",
        "handshake",
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
        direct: DirectWriter | None = None,
        batcher: WriteBatcher | None = None,
        on_close: Callable[[Connection], None] | None = None,
        codec: Codec = V1,
        handshake: Credentials | None = None,
    ) -> None:
        self.client_id = client_id
        self.credentials = credentials
        self.session = session
        self.info = protocol.ClientInfo(client=client_id, user=credentials.user)
        self.max_queue_bytes = max_queue_bytes
        self.batch = batch
        self.queued_bytes = 0
        self.close_code: int | None = None
        self.codec = codec
        # v1 connections take fan-out frames as they are (the fast path).
        self._push_codec: Codec | None = None if codec is V1 else codec
        self.handshake = handshake
        """Credentials the handshake established, for a codec whose connect
        command comes first (:attr:`~hubbub.core.codec.Codec.explicit_connect`)."""
        self._transport = transport
        self._direct = direct
        self._batcher = batcher or WriteBatcher()
        self._pending: list[Frame] = []
        # Only the queued mode has a queue and a writer (idle connections are the
        # memory budget: a direct one keeps neither).
        self._queue: deque[Frame] | None = deque() if direct is None else None
        self._wakeup: asyncio.Event | None = asyncio.Event() if direct is None else None
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
        if self._direct is None:
            self._writer = asyncio.get_running_loop().create_task(
                self._write_loop(), name=f"hubbub-writer-{self.client_id}"
            )

    # -- outbound ---------------------------------------------------------------

    def enqueue(self, frame: Frame) -> None:
        """Send ``frame`` (direct) or queue it for the writer. Never blocks."""
        if self._closed:
            return
        if self._push_codec is not None:
            frame = frame.variant(self._push_codec)
        queue, wakeup = self._queue, self._wakeup
        if queue is None or wakeup is None:  # direct
            pending = self._pending
            if not pending:
                self._batcher.mark(self)
            pending.append(frame)
            return
        self.queued_bytes += frame.size
        if self.queued_bytes > self.max_queue_bytes:
            self.abort(CloseCode.SLOW_CONSUMER, "outbound queue overflow (slow consumer)")
            return
        queue.append(frame)
        wakeup.set()

    def send_text(self, text: str | None) -> None:
        """Send a reply encoded as ``str`` (not the fan-out path); ``None``: nothing
        to send (the codec has no way to say it)."""
        if text is not None:
            self.enqueue(Frame.from_text(text))

    def flush(self) -> None:
        """Direct mode: write what this iteration gathered, in one call."""
        frames, self._pending = self._pending, []
        direct = self._direct
        if self._closed or direct is None or not frames:
            return
        if len(frames) == 1:
            direct.write(frames[0].wire)
        elif self.batch:
            direct.write(frame_text(b"\n".join([f.data for f in frames])))
        else:
            direct.write(b"".join([f.wire for f in frames]))
        if direct.buffered() > self.max_queue_bytes:
            self.abort(CloseCode.SLOW_CONSUMER, "outbound buffer overflow (slow consumer)")

    async def _write_loop(self) -> None:
        queue, wakeup = self._queue, self._wakeup
        assert queue is not None, "the writer is for queued mode"
        assert wakeup is not None
        transport = self._transport
        try:
            while True:
                if not queue:
                    if self._closed:
                        return  # drained for a graceful close
                    wakeup.clear()
                    await wakeup.wait()
                    continue
                if self.batch and len(queue) > 1:
                    texts = []
                    while queue:
                        frame = queue.popleft()
                        self.queued_bytes -= frame.size
                        texts.append(frame.text)
                    await transport.send("\n".join(texts))
                else:
                    frame = queue.popleft()
                    self.queued_bytes -= frame.size
                    await transport.send(frame.text)
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
        if self._queue is not None:
            self._queue.clear()
        self._pending.clear()
        self.queued_bytes = 0
        if self._writer is not None and self._writer is not asyncio.current_task():
            self._writer.cancel()
        if self._direct is not None:
            # A peer that does not read would never see the close frame behind
            # what it left unread: cut it off if it is still there after a grace.
            self._direct.abort_after(ABORT_GRACE)
        self._closer = asyncio.get_running_loop().create_task(self._close_transport(code, reason))

    async def wait_closed(self) -> None:
        """Wait until a close started by :meth:`abort` was handed to the transport."""
        if self._closer is not None:
            await self._closer

    async def close(self, code: int, reason: str) -> None:
        """Close after the queued frames were written (graceful close)."""
        if self._closed:
            return
        if self._direct is not None:
            self.flush()
            self._direct.abort_after(ABORT_GRACE)
        self._mark_closed(code)
        writer = self._writer
        if writer is not None and writer is not asyncio.current_task():
            # The writer flushes what is queued and returns; never wait long for it.
            if self._wakeup is not None:
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
        code, reason = self.codec.close_code(code, reason)  # e.g. 4008 -> Centrifugo's 3008
        try:
            await self._transport.close(code, reason)
        except Exception as exc:  # already gone
            logger.debug("close of %s failed: %r", self.client_id, exc)

    def finished(self) -> None:
        """The transport is gone (peer closed): stop the writer and timers."""
        if not self._closed:
            self._mark_closed(CloseCode.GOING_AWAY)
            if self._queue is not None:
                self._queue.clear()
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()

    # -- timers -----------------------------------------------------------------

    def schedule(self, when: float, callback: Callable[..., None], *args: object) -> None:
        """Run ``callback(*args)`` at loop time ``when`` (one timer per connection)."""
        if self._closed:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_at(when, callback, *args)
