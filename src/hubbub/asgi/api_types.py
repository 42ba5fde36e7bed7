"""Request and response bodies of the HTTP server API, and its table of operations.

The API decodes requests into these structs and encodes answers from them, and
the OpenAPI document (:mod:`hubbub.asgi.openapi`) is generated from the same
structs and :data:`OPERATIONS`, so the document cannot drift from behaviour.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from msgspec import Meta, Raw, Struct

from hubbub.core.protocol import MAX_HISTORY_LIMIT

#: Most channels in one broadcast / commands in one batch.
MAX_ITEMS: Final = 1000

ChannelName = Annotated[str, Meta(max_length=1024)]
IdempotencyKey = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=255,
        description="The same key on the same channel within 5 minutes publishes once "
        "and returns the first result.",
    ),
]

# ------------------------------------------------------------------- request structs


class PublishRequest(Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /api/publish`` (and one command of ``POST /api/batch``)."""

    channel: ChannelName
    data: Raw
    idempotency_key: IdempotencyKey | None = None


class BroadcastRequest(Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /api/broadcast``: the same data to several channels."""

    channels: Annotated[list[ChannelName], Meta(min_length=1, max_length=MAX_ITEMS)]
    data: Raw
    idempotency_key: IdempotencyKey | None = None


class BatchRequest(Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /api/batch``: publishes run one after another, in this order."""

    commands: Annotated[list[PublishRequest], Meta(min_length=1, max_length=MAX_ITEMS)]


class DisconnectRequest(Struct, forbid_unknown_fields=True):
    """``POST /api/users/{user}/disconnect`` takes no fields (empty body or ``{}``)."""


class UnsubscribeRequest(Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /api/users/{user}/unsubscribe``: the channel to unsubscribe the user from."""

    channel: ChannelName


class HistoryQuery(Struct, forbid_unknown_fields=True, kw_only=True):
    """Query parameters of ``GET /api/channels/{channel}/history``."""

    limit: Annotated[int, Meta(ge=0, le=MAX_HISTORY_LIMIT)] | None = None
    since_offset: Annotated[int, Meta(ge=0)] | None = None
    epoch: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    reverse: bool = False


class ChannelsQuery(Struct, forbid_unknown_fields=True, kw_only=True):
    """Query parameters of ``GET /api/channels``."""

    pattern: Annotated[str, Meta(min_length=1, max_length=1024)] | None = None


class NoQuery(Struct, forbid_unknown_fields=True):
    pass


# ------------------------------------------------------------------ response structs


class ErrorDetail(Struct, omit_defaults=True):
    code: str
    """``unauthorized``, ``bad_request``, ``payload_too_large``, ``unknown_namespace``,
    ``engine_unavailable``, ``internal``... (see the OpenAPI document)."""
    message: str


class ErrorResponse(Struct):
    error: ErrorDetail


class PublishResult(Struct):
    """Where the publication went: its offset and the channel's epoch."""

    offset: int
    epoch: str


class ChannelResult(Struct, omit_defaults=True):
    """One channel's outcome in a broadcast or batch: a position or an error."""

    channel: str
    offset: int | None = None
    epoch: str | None = None
    error: ErrorDetail | None = None


class BroadcastResult(Struct):
    results: list[ChannelResult]


class BatchResult(Struct):
    results: list[ChannelResult]


class ChannelStats(Struct):
    num_clients: int
    """Subscribers connected to this node."""


class ChannelsResult(Struct):
    node: str
    channels: dict[str, ChannelStats]


class ClientDetails(Struct, omit_defaults=True):
    client: str
    user: str
    info: Any = None


class HistoryPublication(Struct, omit_defaults=True):
    offset: int
    data: Any
    info: ClientDetails | None = None


class HistoryResult(Struct):
    publications: list[HistoryPublication]
    offset: int
    """The newest offset assigned in the channel."""
    epoch: str


class PresenceResult(Struct):
    clients: dict[str, ClientDetails]


class PresenceStatsResult(Struct):
    num_clients: int
    num_users: int


class DisconnectResult(Struct):
    pass


class UnsubscribeResult(Struct):
    pass


class InfoResult(Struct):
    node: str
    version: str
    engine: str
    uptime: float
    connections: int
    users: int
    channels: int
    subscriptions: int
    development: bool


OPERATIONS: Final[list[tuple[str, str, str, str, type[Struct] | None, type[Struct]]]] = [
    ("/api/publish", "POST", "publish", "Publish to a channel", PublishRequest, PublishResult),
    (
        "/api/broadcast",
        "POST",
        "broadcast",
        "Publish the same data to several channels",
        BroadcastRequest,
        BroadcastResult,
    ),
    ("/api/batch", "POST", "batch", "Run several publishes in order", BatchRequest, BatchResult),
    ("/api/channels", "GET", "channels", "This node's active channels", None, ChannelsResult),
    (
        "/api/channels/{channel}/history",
        "GET",
        "history",
        "A channel's kept publications",
        None,
        HistoryResult,
    ),
    (
        "/api/channels/{channel}/presence",
        "GET",
        "presence",
        "Who is subscribed to a channel",
        None,
        PresenceResult,
    ),
    (
        "/api/channels/{channel}/presence_stats",
        "GET",
        "presence_stats",
        "Client and user counts of a channel",
        None,
        PresenceStatsResult,
    ),
    (
        "/api/users/{user}/disconnect",
        "POST",
        "disconnect",
        "Close every connection of a user, on every node",
        DisconnectRequest,
        DisconnectResult,
    ),
    (
        "/api/users/{user}/unsubscribe",
        "POST",
        "unsubscribe",
        "End a user's subscriptions to a channel, on every node (the clients are told)",
        UnsubscribeRequest,
        UnsubscribeResult,
    ),
    ("/api/info", "GET", "info", "This node's status", None, InfoResult),
]
