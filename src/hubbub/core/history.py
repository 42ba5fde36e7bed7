"""Channel streams: offsets, epochs, bounded history and recovery decisions.

Pure: no I/O and no clock reads; callers pass ``now`` (any clock, as long as
they use the same one throughout). Engines build on :class:`Stream`: the memory
engine keeps one per channel, and a durable engine restores them with
:meth:`Stream.restore`.

Invariant that keeps queries O(answer): the kept entries are a contiguous run
of offsets ending at ``top`` (or nothing). Entries only leave from the oldest
end, by size or by expiry; when a publication's ttl is shorter than older ones',
the older ones are shortened to match (they expire no later than a newer
entry), so expiry also only ever removes a prefix.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice
from typing import TypeAlias

from msgspec import Raw

from hubbub.core.protocol import ClientInfo, Publication, StreamPosition

__all__ = [
    "EpochFactory",
    "HistoryOptions",
    "HistoryResult",
    "Stream",
    "is_recovered",
    "new_epoch",
]

#: Makes a new epoch string; injectable so that tests get predictable epochs.
EpochFactory: TypeAlias = Callable[[], str]


def new_epoch() -> str:
    """A random short epoch: 8 hex characters are plenty to tell two lives of
    one channel apart, and short enough to ride in every message."""
    return secrets.token_hex(4)


@dataclass(frozen=True, slots=True)
class HistoryOptions:
    """How a publication is kept: ``size`` newest entries for ``ttl`` seconds.

    ``size == 0`` (or ``ttl <= 0``) keeps nothing (offsets still advance)."""

    size: int
    ttl: float

    @property
    def keeps(self) -> bool:
        return self.size > 0 and self.ttl > 0


@dataclass(frozen=True, slots=True)
class HistoryResult:
    """Publications (as asked) and the stream's current top: ``offset`` is the
    newest offset assigned, ``epoch`` the stream's current epoch."""

    publications: list[Publication]
    offset: int
    epoch: str

    @property
    def position(self) -> StreamPosition:
        return StreamPosition(offset=self.offset, epoch=self.epoch)


def is_recovered(since: StreamPosition, result: HistoryResult) -> bool:
    """Whether ``result`` (a ``history(since=since.offset)`` answer without limit)
    holds exactly every publication after ``since``: same epoch, no gap at the
    start, not ahead of the top."""
    if since.epoch != result.epoch or since.offset > result.offset:
        return False
    missed = result.offset - since.offset
    pubs = result.publications
    if len(pubs) != missed:
        return False
    return missed == 0 or pubs[0].offset == since.offset + 1


Entry: TypeAlias = tuple[Publication, float]
"""A kept publication and the time (same clock as ``now``) it expires at."""


class Stream:
    """One channel's stream: its epoch, top offset and kept publications.

    ``updated_at`` is when the stream was created or last appended to; engines
    use it to forget idle streams (see :meth:`keep_until`).
    """

    __slots__ = ("_entries", "epoch", "top", "updated_at")

    def __init__(self, epoch: str, *, top: int = 0, updated_at: float = 0.0) -> None:
        self.epoch = epoch
        self.top = top
        self.updated_at = updated_at
        self._entries: deque[Entry] = deque()

    @classmethod
    def new(cls, now: float, epoch_factory: EpochFactory = new_epoch) -> Stream:
        """A never-published stream: top 0 and a fresh epoch."""
        return cls(epoch_factory(), updated_at=now)

    @classmethod
    def restore(
        cls,
        epoch: str,
        top: int,
        entries: Iterable[Entry],
        *,
        updated_at: float,
        now: float,
    ) -> Stream:
        """Rebuild a stream from storage.

        Keeps the unexpired entries that form a contiguous run ending at
        ``top``; anything else (a gap, an offset beyond ``top``) cannot be
        served consistently and is dropped, which recovery then reports as
        ``recovered: false`` rather than as a silent hole.
        """
        stream = cls(epoch, top=top, updated_at=updated_at)
        run: list[Entry] = []
        for entry in sorted(entries, key=lambda e: e[0].offset, reverse=True):
            offset = entry[0].offset
            if offset > top:
                continue
            if offset != top - len(run):
                break
            run.append(entry)
        run.reverse()
        # Normalise expiry so that it only ever removes a prefix.
        floor = float("inf")
        for i in range(len(run) - 1, -1, -1):
            pub, expires_at = run[i]
            floor = min(floor, expires_at)
            run[i] = (pub, floor)
        stream._entries.extend(run)
        stream.prune(now)
        return stream

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        """Number of kept entries (expired ones included until pruned)."""
        return len(self._entries)

    @property
    def position(self) -> StreamPosition:
        return StreamPosition(offset=self.top, epoch=self.epoch)

    @property
    def oldest(self) -> int | None:
        """Offset of the oldest kept publication, ``None`` when none is kept."""
        return self._entries[0][0].offset if self._entries else None

    def entries(self) -> list[Entry]:
        """A copy of the kept entries, oldest first (for storage and tests)."""
        return list(self._entries)

    def keep_until(self, meta_ttl: float) -> float:
        """When this stream may be forgotten: ``meta_ttl`` after its last update,
        but never while a kept publication is still alive."""
        until = self.updated_at + meta_ttl
        if self._entries:
            until = max(until, self._entries[-1][1])
        return until

    def query(
        self,
        *,
        since: int | None = None,
        limit: int | None = None,
        reverse: bool = False,
        now: float,
    ) -> HistoryResult:
        """Kept publications, as ``Engine.history`` defines them.

        ``since=None``: from the oldest kept (``reverse``: from the newest,
        newest first). ``since=N``: offset > N ascending (``reverse``: offset
        < N, newest first). ``limit``: at most that many (``None``: all, a
        value <= 0: none).
        """
        self.prune(now)
        entries = self._entries
        pubs: list[Publication] = []
        if entries and (limit is None or limit > 0):
            count = len(entries)
            first = entries[0][0].offset
            if not reverse:
                start = 0 if since is None else min(count, max(0, since - first + 1))
                stop = count if limit is None else min(count, start + limit)
                pubs = [pub for pub, _ in islice(entries, start, stop)]
            else:
                stop = count if since is None else min(count, max(0, since - first))
                start = 0 if limit is None else max(0, stop - limit)
                pubs = [pub for pub, _ in islice(entries, start, stop)]
                pubs.reverse()
        return HistoryResult(publications=pubs, offset=self.top, epoch=self.epoch)

    # ------------------------------------------------------------------ writing

    def retention_floor(self, options: HistoryOptions, now: float) -> int:
        """The oldest offset still kept after the next :meth:`append` with
        ``options`` at ``now``; storage may delete everything below it in the
        same transaction as it writes the new publication."""
        self.prune(now)
        new_top = self.top + 1
        if not options.keeps:
            return new_top + 1
        oldest = self.oldest
        return max(new_top if oldest is None else oldest, new_top - options.size + 1)

    def append(
        self,
        data: Raw,
        info: ClientInfo | None,
        options: HistoryOptions,
        now: float,
    ) -> Publication:
        """Assign the next offset to ``data`` and keep it as ``options`` say."""
        self.top += 1
        self.updated_at = now
        publication = Publication(offset=self.top, data=data, info=info)
        entries = self._entries
        if not options.keeps:
            entries.clear()
            return publication
        expires_at = now + options.ttl
        if entries and entries[-1][1] > expires_at:
            # A shorter ttl than before: older entries must not outlive this one.
            for i in range(len(entries) - 1, -1, -1):
                pub, old = entries[i]
                if old <= expires_at:
                    break
                entries[i] = (pub, expires_at)
        entries.append((publication, expires_at))
        while len(entries) > options.size:
            entries.popleft()
        self.prune(now)
        return publication

    def prune(self, now: float) -> None:
        """Drop expired entries (always the oldest ones)."""
        entries = self._entries
        while entries and entries[0][1] <= now:
            entries.popleft()
