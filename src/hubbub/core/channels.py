"""Channel names, namespaces and the static permission rules.

A channel is ``namespace:name`` or a bare name (the ``default`` namespace). A
``#`` makes it user-limited: the user after the ``#`` is the only one who may
subscribe, so ``#42`` is user 42's personal channel and ``inbox:orders#42`` a
channel of user 42 in the ``inbox`` namespace. (Centrifugo also lists several
users, comma-separated; SPEC's channel grammar has no comma, so hubbub does not.)

Everything here is pure: callers pass in what the user is and what it holds.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import Final

from msgspec import Struct

from hubbub.errors import CommandError, ErrorCode

MAX_CHANNEL_BYTES: Final = 255
DEFAULT_NAMESPACE: Final = "default"
NAMESPACE_SEPARATOR: Final = ":"
USER_SEPARATOR: Final = "#"

_CHANNEL_RE: Final = re.compile(r"[A-Za-z0-9_\-:.#@=]+")


class NamespaceOptions(Struct, frozen=True, forbid_unknown_fields=True):
    """Per-namespace options; the defaults are the built-in ``default`` namespace."""

    subscribe: bool = True
    """Any permitted client may subscribe; ``False``: only with a subscription token
    or a matching ``channels`` claim in the connection token."""
    publish: bool = True
    """Clients may publish; ``False``: only the server (HTTP API, ``hub.publish``)."""
    anonymous: bool = False
    """Connections without a user may subscribe (and publish, if ``publish``)."""
    history_size: int = 100
    history_ttl: float = 3600.0
    presence: bool = True
    join_leave: bool = True

    @property
    def history_enabled(self) -> bool:
        return self.history_size > 0 and self.history_ttl > 0


def validate_channel(channel: str) -> None:
    """Raise a 400 :class:`CommandError` that says what is wrong with ``channel``."""
    if not channel:
        raise CommandError(ErrorCode.BAD_REQUEST, "channel must not be empty")
    if len(channel.encode()) > MAX_CHANNEL_BYTES:
        raise CommandError(
            ErrorCode.BAD_REQUEST,
            f"channel is longer than {MAX_CHANNEL_BYTES} bytes",
        )
    if _CHANNEL_RE.fullmatch(channel) is None:
        raise CommandError(
            ErrorCode.BAD_REQUEST,
            f"channel {channel[:64]!r} has invalid characters: "
            "allowed are letters, digits and _ - : . # @ =",
        )


def namespace_of(channel: str) -> str:
    """The namespace a channel belongs to (``default`` for bare names)."""
    head, sep, _ = channel.partition(NAMESPACE_SEPARATOR)
    if not sep or USER_SEPARATOR in head:
        return DEFAULT_NAMESPACE
    return head


def allowed_user(channel: str) -> str | None:
    """The one user a user-limited channel admits, or ``None`` for ordinary channels."""
    _, sep, user = channel.partition(USER_SEPARATOR)
    return user if sep else None


def personal_channel(user: str) -> str:
    return USER_SEPARATOR + user


def is_personal(channel: str) -> bool:
    """A ``#<user>`` personal channel: every connection of the user is in it, so it
    has no presence and no join/leave events."""
    return channel.startswith(USER_SEPARATOR)


class Namespaces:
    """Resolves a channel to its namespace options."""

    def __init__(
        self,
        namespaces: dict[str, NamespaceOptions] | None = None,
        *,
        strict: bool = False,
    ) -> None:
        self._namespaces = dict(namespaces or {})
        self._default = self._namespaces.setdefault(DEFAULT_NAMESPACE, NamespaceOptions())
        self.strict = strict

    def __contains__(self, name: str) -> bool:
        return name in self._namespaces

    def names(self) -> list[str]:
        return sorted(self._namespaces)

    def resolve(self, channel: str) -> NamespaceOptions:
        """Options for ``channel``; raises 400 for a bad name, 404 for an unknown
        namespace when ``strict``."""
        validate_channel(channel)
        name = namespace_of(channel)
        options = self._namespaces.get(name)
        if options is not None:
            return options
        if self.strict:
            raise CommandError(ErrorCode.UNKNOWN_NAMESPACE, f"unknown namespace {name!r}")
        return self._default


def claims_allow(patterns: tuple[str, ...], channel: str) -> bool:
    """Whether a ``channels`` claim (glob patterns) grants ``channel``."""
    return any(fnmatchcase(channel, pattern) for pattern in patterns)


def check_subscribe(
    channel: str,
    options: NamespaceOptions,
    *,
    user: str,
    granted: bool,
) -> None:
    """Static subscribe rules. ``granted``: a subscription token or a ``channels``
    claim names this channel. Raises 403 when the rules refuse."""
    owner = allowed_user(channel)
    if owner is not None:
        if not user or user != owner:
            raise CommandError(
                ErrorCode.PERMISSION_DENIED, f"channel {channel!r} belongs to another user"
            )
        return
    if granted:
        return
    if not user and not options.anonymous:
        raise CommandError(
            ErrorCode.PERMISSION_DENIED, "anonymous clients may not subscribe to this namespace"
        )
    if not options.subscribe:
        raise CommandError(
            ErrorCode.PERMISSION_DENIED,
            f"channel {channel!r} needs a subscription token",
        )


def check_publish(channel: str, options: NamespaceOptions, *, user: str) -> None:
    """Static client-publish rules (the server may always publish)."""
    if not options.publish:
        raise CommandError(
            ErrorCode.PERMISSION_DENIED,
            "clients may not publish in this namespace (server publish only)",
        )
    if not user and not options.anonymous:
        raise CommandError(ErrorCode.PERMISSION_DENIED, "anonymous clients may not publish")
    owner = allowed_user(channel)
    if owner is not None and user != owner:
        raise CommandError(
            ErrorCode.PERMISSION_DENIED, f"channel {channel!r} belongs to another user"
        )
