"""Which local subscribers each channel has, for fan-out.

A subscriber is first *syncing*: its subscribe is in flight (the engine is
being asked for the channel's position or missed publications) and anything
published meanwhile is buffered for it. Once its ``ack`` is queued it is
*promoted*: the buffered publications after the position it was given are
released in order and it joins the *live* set, which fan-out walks without any
per-subscriber checks. That is how a subscribe, or a recovery, never misses or
repeats a publication while publishers keep publishing.

The registry also keeps, per channel, the last offset and epoch delivered on
this node, so the hub can drop duplicates and notice gaps (a lost engine link).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from hubbub.core.protocol import Publication

T = TypeVar("T")
"""A subscriber (the hub's connection)."""
F = TypeVar("F")
"""An encoded frame (whatever the hub delivers; the registry does not look inside)."""


@dataclass(slots=True)
class Buffered(Generic[F]):
    """A publication that arrived while a subscriber was syncing, as its frame."""

    offset: int
    epoch: str
    frame: F


@dataclass(slots=True)
class ChannelSubscribers(Generic[T, F]):
    live: dict[str, T] = field(default_factory=dict)
    syncing: dict[str, list[Buffered[F]]] = field(default_factory=dict)
    epoch: str = ""
    offset: int = -1
    """Last offset delivered on this node (-1: none seen yet)."""
    held: list[tuple[str, Publication]] | None = None
    """While the hub fetches publications this node missed, newer ones wait here."""

    def __len__(self) -> int:
        return len(self.live) + len(self.syncing)


class Registry(Generic[T, F]):
    """channel -> subscribers; every operation is O(1) (fan-out is O(live))."""

    def __init__(self) -> None:
        self._channels: dict[str, ChannelSubscribers[T, F]] = {}
        self._subscriptions = 0

    def __contains__(self, channel: str) -> bool:
        return channel in self._channels

    def __len__(self) -> int:
        return len(self._channels)

    def get(self, channel: str) -> ChannelSubscribers[T, F] | None:
        return self._channels.get(channel)

    def channels(self) -> dict[str, int]:
        """Active channels with their local subscriber counts."""
        return {name: len(subs) for name, subs in self._channels.items()}

    def subscription_count(self) -> int:
        return self._subscriptions

    def add_syncing(self, channel: str, client: str) -> bool:
        """Start buffering for ``client``; ``True`` when ``channel`` is new here."""
        subs = self._channels.get(channel)
        created = subs is None
        if subs is None:
            subs = self._channels[channel] = ChannelSubscribers()
        if client not in subs.live and client not in subs.syncing:
            self._subscriptions += 1
        subs.syncing[client] = []
        return created

    def promote(
        self, channel: str, client: str, subscriber: T, after: int, epoch: str
    ) -> list[Buffered[F]]:
        """Make ``client`` live; return what was buffered for it after ``after``
        (in ``epoch``; anything from another epoch is newer and is returned too)."""
        subs = self._channels[channel]
        buffered = subs.syncing.pop(client, [])
        subs.live[client] = subscriber
        return [b for b in buffered if b.offset > after or b.epoch != epoch]

    def remove(self, channel: str, client: str) -> bool:
        """Drop ``client``; ``True`` when ``channel`` has no local subscriber left."""
        subs = self._channels.get(channel)
        if subs is None:
            return False
        present = subs.live.pop(client, None) is not None
        present = subs.syncing.pop(client, None) is not None or present
        if present:
            self._subscriptions -= 1
        if subs:
            return False
        del self._channels[channel]
        return True
