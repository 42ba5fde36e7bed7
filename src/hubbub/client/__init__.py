"""``hubbub.Client``: an asyncio client for protocol v1 (see :mod:`hubbub.client.client`)."""

from hubbub.client.client import Client
from hubbub.client.subscription import Subscription
from hubbub.client.types import (
    ClientError,
    Disconnected,
    Forbidden,
    HistoryResult,
    Message,
    PresenceStats,
    Recovery,
    ServerError,
    Unauthorized,
    Unsubscribed,
)

__all__ = [
    "Client",
    "ClientError",
    "Disconnected",
    "Forbidden",
    "HistoryResult",
    "Message",
    "PresenceStats",
    "Recovery",
    "ServerError",
    "Subscription",
    "Unauthorized",
    "Unsubscribed",
]
