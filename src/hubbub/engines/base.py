"""The engine contract: what the hub needs from a broker, history and presence.

The hub talks only to :class:`Engine`; it never knows which implementation it
has. An engine:

* assigns offsets and appends to history **atomically with** publishing, so
  every node sees one order per channel and recovery works across nodes;
* delivers, through :class:`EngineEvents`, every publication, join and leave of
  the channels this node subscribed to, per channel in offset order;
* keeps presence with expiry, so that a crashed node's clients disappear.

Failures to reach the backing store raise :class:`hubbub.errors.EngineUnavailable`.
The conformance suite in ``tests/engines/conformance.py`` is the executable form
of this contract; every engine passes it unchanged.
"""

from __future__ import annotations

from typing import Final, Protocol

from msgspec import Raw, Struct

from hubbub.core.history import HistoryOptions, HistoryResult
from hubbub.core.presence import PresenceStats
from hubbub.core.protocol import ClientInfo, Publication, StreamPosition

__all__ = [
    "DISCONNECT",
    "IDEMPOTENCY_TTL",
    "UNSUBSCRIBE",
    "Engine",
    "EngineEvents",
    "HistoryOptions",
    "HistoryResult",
    "NodeControl",
    "PresenceStats",
]


#: How long an idempotency key is remembered (SPEC: 5 minutes).
IDEMPOTENCY_TTL = 300.0

#: :attr:`NodeControl.action` values.
DISCONNECT: Final = "disconnect"
UNSUBSCRIBE: Final = "unsubscribe"


class NodeControl(Struct, frozen=True, array_like=True):
    """An order for every node about one user's connections (the server API's
    disconnect and unsubscribe). Engines carry it as it is; the hub ignores an
    ``action`` it does not know (a newer node's), so the set can grow."""

    action: str
    """:data:`DISCONNECT` (close every connection of ``user``) or
    :data:`UNSUBSCRIBE` (end their subscriptions to ``channel``)."""
    user: str
    channel: str = ""


class EngineEvents(Protocol):
    """Callbacks an engine makes into the hub. They never block and never raise."""

    def on_publication(self, channel: str, epoch: str, publication: Publication) -> None: ...

    def on_join(self, channel: str, info: ClientInfo) -> None: ...

    def on_leave(self, channel: str, info: ClientInfo) -> None: ...

    def on_control(self, command: NodeControl) -> None:
        """Carry out ``command`` on this node's connections (see :meth:`Engine.control`)."""
        ...

    def on_engine_state(self, ready: bool) -> None:
        """The engine lost (``False``) or regained (``True``) its link; after
        ``True`` the hub re-checks its channels' positions for gaps."""
        ...


class Engine(Protocol):
    """Broker + history + presence, behind one small interface."""

    async def start(self, events: EngineEvents) -> None:
        """Connect (retrying with backoff where that makes sense) and begin
        delivering events. Raises ``ConfigError`` for unusable settings."""
        ...

    async def close(self) -> None: ...

    async def ready(self) -> bool:
        """Whether publishes can succeed right now (the health of ``/ready``)."""
        ...

    # -- broker + history ---------------------------------------------------

    async def publish(
        self,
        channel: str,
        data: Raw,
        *,
        info: ClientInfo | None,
        history: HistoryOptions,
        idempotency_key: str | None = None,
    ) -> StreamPosition:
        """Assign the next offset, keep it in history, deliver it to every node
        subscribed to ``channel``; return its position once all of that is
        done (and durable, for durable engines).

        With ``idempotency_key``, a second publish with the same key on the same
        channel within :data:`IDEMPOTENCY_TTL` seconds publishes nothing and
        returns the first publish's position."""
        ...

    async def publish_join(self, channel: str, info: ClientInfo) -> None: ...

    async def publish_leave(self, channel: str, info: ClientInfo) -> None: ...

    async def control(self, command: NodeControl) -> None:
        """Deliver ``command`` to every node, this one included (``on_control``).
        Best effort, like pub/sub: a node that is not linked right now misses it."""
        ...

    async def subscribe(self, channel: str) -> None:
        """Start delivering ``channel``'s events to this node. Once this returns,
        no publication assigned afterwards is missed."""
        ...

    async def unsubscribe(self, channel: str) -> None: ...

    async def history(
        self,
        channel: str,
        *,
        since: int | None = None,
        limit: int | None = None,
        reverse: bool = False,
    ) -> HistoryResult:
        """Kept publications of ``channel``.

        ``since=None``: from the oldest kept (``reverse``: from the newest, newest
        first). ``since=N``: those with offset > N in order (``reverse``: offset
        < N, newest first). ``limit`` caps the count (``None``: all kept,
        ``0``: none, only the top position). A channel never published to has
        top offset 0 and a fresh epoch, which the engine remembers.
        """
        ...

    # -- presence -------------------------------------------------------------

    async def add_presence(self, channel: str, info: ClientInfo, ttl: float) -> None:
        """Add or refresh ``info.client`` in ``channel``'s presence for ``ttl`` s."""
        ...

    async def remove_presence(self, channel: str, client: str) -> None: ...

    async def presence(self, channel: str) -> dict[str, ClientInfo]: ...

    async def presence_stats(self, channel: str) -> PresenceStats: ...

    async def expire_presence(self, channel: str) -> list[ClientInfo]:
        """Remove the entries of ``channel`` whose ttl ran out and return them.

        Atomic: each expired entry is returned by exactly one call, on any
        node, so that exactly one ``leave`` is announced for it (the hub calls
        this every ``presence_ttl / 3`` for channels with local subscribers).
        ``presence`` and ``presence_stats`` skip expired entries but leave them
        for this method to collect."""
        ...
