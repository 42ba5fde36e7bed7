"""Presence tables with expiry.

Pure: callers pass ``now``. An entry lives until refreshed or until its ttl
passes, so a client whose node stopped refreshing it disappears on its own.
Reads skip expired entries without dropping them: :meth:`PresenceTable.expire`
removes and returns them (so that the hub can announce their ``leave``, once),
and :meth:`PresenceTable.prune` drops whatever nobody collected. A channel
whose last entry goes is removed, so the table holds only channels that have
someone present.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from hubbub.core.protocol import ClientInfo

__all__ = ["PresenceStats", "PresenceTable"]


@dataclass(frozen=True, slots=True)
class PresenceStats:
    """Counts for ``presence_stats``.

    ``num_users`` counts distinct ``user`` values; every anonymous client has
    user ``""``, so all anonymous clients together count as one user (as in
    Centrifugo), while ``num_clients`` counts each of them.
    """

    num_clients: int
    num_users: int


_Clients: TypeAlias = dict[str, tuple[ClientInfo, float]]


class PresenceTable:
    """channel -> {client id: (info, expires_at)}."""

    __slots__ = ("_channels",)

    def __init__(self) -> None:
        self._channels: dict[str, _Clients] = {}

    def __len__(self) -> int:
        """Number of channels with at least one (possibly expired) entry."""
        return len(self._channels)

    def add(self, channel: str, info: ClientInfo, *, ttl: float, now: float) -> None:
        """Add ``info.client`` to ``channel`` or refresh it (new info, new expiry)."""
        clients = self._channels.get(channel)
        if clients is None:
            clients = self._channels[channel] = {}
        clients[info.client] = (info, now + ttl)

    def remove(self, channel: str, client: str) -> bool:
        """Remove ``client`` from ``channel``; whether it was there."""
        clients = self._channels.get(channel)
        if clients is None or clients.pop(client, None) is None:
            return False
        if not clients:
            del self._channels[channel]
        return True

    def clients(self, channel: str, now: float) -> dict[str, ClientInfo]:
        """The live entries of ``channel``, by client id."""
        clients = self._live(channel, now)
        return {client: info for client, (info, _) in clients.items()}

    def stats(self, channel: str, now: float) -> PresenceStats:
        """Client and distinct-user counts of ``channel`` (see :class:`PresenceStats`)."""
        clients = self._live(channel, now)
        users = {info.user for info, _ in clients.values()}
        return PresenceStats(num_clients=len(clients), num_users=len(users))

    def expire(self, channel: str, now: float) -> list[ClientInfo]:
        """Remove the expired entries of ``channel`` and return them: each
        expired entry is returned by exactly one call."""
        clients = self._channels.get(channel)
        if clients is None:
            return []
        expired = [client for client, (_, expires_at) in clients.items() if expires_at <= now]
        gone = [clients.pop(client)[0] for client in expired]
        if not clients:
            del self._channels[channel]
        return gone

    def prune(self, now: float) -> int:
        """Drop every entry expired at ``now`` (and emptied channels); how many went.

        O(entries): meant for a periodic sweep, not for every call."""
        return sum(len(self.expire(channel, now)) for channel in list(self._channels))

    def _live(self, channel: str, now: float) -> _Clients:
        clients = self._channels.get(channel)
        if clients is None:
            return {}
        return {client: entry for client, entry in clients.items() if entry[1] > now}
