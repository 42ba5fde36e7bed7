"""The per-connection state machine, with no I/O.

A :class:`Session` takes frames and the time, and answers with what to do:
:class:`Execute` a command (the hub does the I/O), :class:`Send` a frame now,
or :class:`Close` the connection. It owns everything about a connection that
needs no engine: the auth state, frame size and rate limits, heartbeats and the
set of subscribed channels. ``tick(now)`` is called at ``next_deadline()``.
The wire format is its :class:`~hubbub.core.codec.Codec`'s business (protocol v1
by default): a message may hold several commands, each handled in order.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass

from hubbub.core import protocol
from hubbub.core.codec import AUTH_COMMANDS, V1, Codec, Command
from hubbub.core.ratelimit import SlidingCounter, TokenBucket
from hubbub.errors import CloseCode, CommandError, ErrorCode


@dataclass(frozen=True, slots=True)
class Limits:
    max_message_size: int = 65536
    rate_limit: float = 20.0
    rate_burst: int = 50
    ping_interval: float = 25.0
    pong_timeout: float = 10.0
    auth_timeout: float = 10.0
    abuse_limit: int = 100
    """More rejected (429) frames than this within ``abuse_window`` closes 4029."""
    abuse_window: float = 10.0


@dataclass(frozen=True, slots=True)
class Execute:
    command: Command


@dataclass(frozen=True, slots=True)
class Send:
    frame: str
    error: ErrorCode | None = None
    """The code when ``frame`` is an ``error`` frame (for metrics)."""


@dataclass(frozen=True, slots=True)
class Close:
    code: CloseCode
    reason: str


Action = Execute | Send | Close


class State(enum.Enum):
    AWAITING_AUTH = "awaiting_auth"
    OPEN = "open"
    CLOSED = "closed"


def error_frame(code: ErrorCode | int, message: str, id: int | None = None) -> str:
    return protocol.encode(protocol.Error(code=int(code), message=message, id=id))


class Session:
    """Protocol state of one connection. Not thread-safe; one per connection."""

    def __init__(
        self, limits: Limits, now: float, *, authenticated: bool, codec: Codec = V1
    ) -> None:
        self.limits = limits
        self.codec = codec
        self.state = State.OPEN if authenticated else State.AWAITING_AUTH
        self.channels: set[str] = set()
        """Channels subscribed or being subscribed (409 on a second subscribe)."""
        self._bucket = TokenBucket(limits.rate_limit, limits.rate_burst, now)
        self._abuse: SlidingCounter | None = None  # made on the first rejection
        self._auth_deadline = now + limits.auth_timeout
        self._next_ping = now + limits.ping_interval
        self._pong_deadline: float | None = None

    # -- frames in --------------------------------------------------------------

    def receive(self, frame: str | bytes, now: float) -> Action | None:
        """Handle one client frame of a one-command-per-frame codec (v1)."""
        return next(self.receive_all(frame, now), None)

    def receive_all(self, frame: str | bytes, now: float) -> Iterator[Action]:
        """Handle one client message: the actions for its commands, in order.

        Lazy on purpose: each command is looked at only once the caller has
        carried out the previous action, so a message holding ``connect`` and then
        ``subscribe`` (as centrifuge-js sends them) finds the session
        authenticated by the time the subscribe is handled. A ``Close`` ends it."""
        if self.state is State.CLOSED:
            return
        if self._too_big(frame):
            yield self._close(
                CloseCode.MESSAGE_TOO_BIG,
                f"frame exceeds max_message_size ({self.limits.max_message_size} bytes)",
            )
            return
        for item in self.codec.decode(frame):
            if self.closed:  # closed by what the caller did with the previous action
                return
            action = self._handle(item, now)
            if action is not None:
                yield action
                if isinstance(action, Close):
                    return

    def _error(self, code: ErrorCode, message: str, id: int | None) -> Send | None:
        frame = self.codec.encode_error(code, message, id)
        return None if frame is None else Send(frame, code)

    def _handle(self, item: Command | protocol.DecodeError, now: float) -> Action | None:
        if isinstance(item, protocol.DecodeError):
            if not self._bucket.take(now):
                return self._rate_limited(item.id, now)
            if self.state is State.AWAITING_AUTH:
                return self._close(CloseCode.UNAUTHORIZED, "first frame must be auth")
            return self._error(ErrorCode.BAD_REQUEST, item.message, item.id)
        command = item
        if isinstance(command, protocol.Pong):
            # Honoured even over the limit (it proves liveness), never answered, but a
            # pong flood counts towards the abuse limit like any other.
            self._pong_deadline = None
            if not self._bucket.take(now) and self._abused(now):
                return self._close(CloseCode.RATE_LIMIT_ABUSE, "sustained rate-limit abuse")
            return None
        if not self._bucket.take(now):
            return self._rate_limited(command.id, now)
        if self.state is State.AWAITING_AUTH:
            if isinstance(command, AUTH_COMMANDS):
                return Execute(command)
            return self._close(CloseCode.UNAUTHORIZED, "first frame must be auth")
        if isinstance(command, protocol.Ping):
            return Send(self.codec.pong_frame)
        if isinstance(command, AUTH_COMMANDS):
            return self._error(ErrorCode.BAD_REQUEST, "already authenticated", command.id)
        return Execute(command)

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    def authenticated(self) -> None:
        """The ``auth`` frame was accepted."""
        if self.state is State.AWAITING_AUTH:
            self.state = State.OPEN

    def _too_big(self, frame: str | bytes) -> bool:
        limit = self.limits.max_message_size
        size = len(frame)
        if size > limit:
            return True
        # A str of n characters is at most 4n UTF-8 bytes: encode only when in doubt.
        return isinstance(frame, str) and size * 4 > limit and len(frame.encode()) > limit

    def _rate_limited(self, id: int | None, now: float) -> Action | None:
        if self._abused(now):
            return self._close(CloseCode.RATE_LIMIT_ABUSE, "sustained rate-limit abuse")
        return self._error(ErrorCode.RATE_LIMITED, "rate limit exceeded", id)

    def _abused(self, now: float) -> bool:
        if self._abuse is None:
            self._abuse = SlidingCounter(self.limits.abuse_limit, self.limits.abuse_window)
        return self._abuse.add(now)

    # -- subscriptions ----------------------------------------------------------

    def begin_subscribe(self, channel: str) -> None:
        """Reserve ``channel``; raises 409 when already subscribed (or subscribing)."""
        if channel in self.channels:
            raise CommandError(ErrorCode.ALREADY_SUBSCRIBED, f"already subscribed to {channel!r}")
        self.channels.add(channel)

    def end_subscribe(self, channel: str) -> None:
        """Forget ``channel`` (unsubscribed, or the subscribe failed)."""
        self.channels.discard(channel)

    # -- time -------------------------------------------------------------------

    def next_deadline(self) -> float:
        if self.state is State.AWAITING_AUTH:
            return min(self._auth_deadline, self._next_ping)
        if self._pong_deadline is not None:
            return min(self._pong_deadline, self._next_ping)
        return self._next_ping

    def tick(self, now: float) -> Action | None:
        """Heartbeat and auth timeouts; call at (or after) ``next_deadline()``."""
        if self.state is State.CLOSED:
            return None
        if self.state is State.AWAITING_AUTH and now >= self._auth_deadline:
            return self._close(CloseCode.UNAUTHORIZED, "auth timeout")
        if self._pong_deadline is not None and now >= self._pong_deadline:
            return self._close(CloseCode.HEARTBEAT_TIMEOUT, "no pong")
        if now >= self._next_ping:
            self._next_ping = now + self.limits.ping_interval
            if self._pong_deadline is None:
                self._pong_deadline = now + self.limits.pong_timeout
            return Send(self.codec.ping_frame)
        return None

    def close(self) -> None:
        self.state = State.CLOSED

    def _close(self, code: CloseCode, reason: str) -> Close:
        self.state = State.CLOSED
        return Close(code, reason)
