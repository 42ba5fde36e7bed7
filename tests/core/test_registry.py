"""Local subscribers: the syncing buffer and promotion to live."""

from __future__ import annotations

from hubbub.core.registry import Buffered, Registry


def buffer(registry: Registry[str, str], channel: str, offset: int, epoch: str = "e") -> None:
    """What the hub's fan-out does for syncing subscribers."""
    subs = registry.get(channel)
    assert subs is not None
    for items in subs.syncing.values():
        items.append(Buffered(offset, epoch, f"m{offset}{epoch}"))


def test_add_syncing_reports_new_channels() -> None:
    registry: Registry[str, str] = Registry()
    assert registry.add_syncing("c", "a") is True
    assert registry.add_syncing("c", "b") is False
    assert "c" in registry
    assert len(registry) == 1
    assert registry.channels() == {"c": 2}
    assert registry.subscription_count() == 2
    subs = registry.get("c")
    assert subs is not None
    assert subs.live == {}
    assert set(subs.syncing) == {"a", "b"}


def test_promote_releases_only_what_is_after_the_position() -> None:
    registry: Registry[str, str] = Registry()
    registry.add_syncing("c", "a")
    for offset in (3, 4, 5, 6):
        buffer(registry, "c", offset)
    released = registry.promote("c", "a", "conn-a", after=4, epoch="e")
    assert [b.offset for b in released] == [5, 6]
    assert [b.frame for b in released] == ["m5e", "m6e"]
    subs = registry.get("c")
    assert subs is not None
    assert subs.live == {"a": "conn-a"}
    assert subs.syncing == {}
    buffer(registry, "c", 7)  # live subscribers are not buffered any more
    assert registry.get("c").syncing == {}  # type: ignore[union-attr]


def test_promote_releases_everything_from_another_epoch() -> None:
    registry: Registry[str, str] = Registry()
    registry.add_syncing("c", "a")
    buffer(registry, "c", 9, "old")
    buffer(registry, "c", 1, "new")
    released = registry.promote("c", "a", "conn-a", after=9, epoch="old")
    assert [(b.offset, b.epoch) for b in released] == [(1, "new")]


def test_promote_with_nothing_buffered() -> None:
    registry: Registry[str, str] = Registry()
    registry.add_syncing("c", "a")
    assert registry.promote("c", "a", "conn-a", after=-1, epoch="") == []


def test_each_syncing_subscriber_has_its_own_buffer() -> None:
    registry: Registry[str, str] = Registry()
    registry.add_syncing("c", "a")
    buffer(registry, "c", 1)
    registry.add_syncing("c", "b")
    buffer(registry, "c", 2)
    assert [b.offset for b in registry.promote("c", "a", "A", after=0, epoch="e")] == [1, 2]
    assert [b.offset for b in registry.promote("c", "b", "B", after=0, epoch="e")] == [2]


def test_remove() -> None:
    registry: Registry[str, str] = Registry()
    registry.add_syncing("c", "a")
    registry.promote("c", "a", "A", after=0, epoch="e")
    registry.add_syncing("c", "b")
    assert registry.remove("c", "a") is False
    assert registry.remove("c", "b") is True  # syncing ones count too
    assert "c" not in registry
    assert registry.get("c") is None
    assert registry.remove("c", "a") is False
    assert registry.remove("nope", "a") is False
    assert registry.subscription_count() == 0
