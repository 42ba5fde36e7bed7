"""Errors and the code tables of protocol v1.

Every failure a client can cause maps to exactly one of two things:

* an **error frame** (:class:`ErrorCode`): the command failed, the connection stays
  open and keeps working;
* a **close code** (:class:`CloseCode`): the connection is over.

The exception tree mirrors that split::

    HubbubError
    ├── CommandError            -> error frame with .code and .message
    │   └── EngineUnavailable   -> 503, the engine is down (retry later)
    ├── Disconnect              -> close the connection with .code and .reason
    ├── ConfigError             -> bad settings; the server refuses to start
    └── AuthError               -> a token failed verification (becomes 4001 or 403)
        └── TokenExpired        -> ... because it expired (Centrifugo clients fetch a new one)
"""

from __future__ import annotations

from enum import Enum, IntEnum


class ErrorCode(IntEnum):
    """Codes carried by ``error`` frames (SPEC section 2)."""

    BAD_REQUEST = 400
    PERMISSION_DENIED = 403
    UNKNOWN_NAMESPACE = 404
    ALREADY_SUBSCRIBED = 409
    PAYLOAD_TOO_LARGE = 413
    RATE_LIMITED = 429
    INTERNAL = 500
    ENGINE_UNAVAILABLE = 503


class CloseCode(IntEnum):
    """WebSocket close codes used by the server (SPEC section 2)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    MESSAGE_TOO_BIG = 1009
    SERVER_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    """The engine is unavailable, so the connection cannot go live (reconnect later)."""
    UNAUTHORIZED = 4001
    FORBIDDEN = 4003
    SLOW_CONSUMER = 4008
    HEARTBEAT_TIMEOUT = 4009
    RATE_LIMIT_ABUSE = 4029


class ErrorKind(Enum):
    """A finer reason for an error than its v1 code, for codecs whose code tables are
    more detailed than v1's: Centrifugo's SDKs treat "method not found", "not
    available", "token expired" and "unrecoverable position" differently from a
    plain 400/403 (an expired token is fetched again; an unrecoverable position
    makes the app reload its state). Protocol v1 ignores it, so its frames do not change."""

    METHOD_NOT_FOUND = "method_not_found"
    NOT_AVAILABLE = "not_available"
    TOKEN_EXPIRED = "token_expired"
    UNRECOVERABLE_POSITION = "unrecoverable_position"


class HubbubError(Exception):
    """Base class of every error hubbub raises on purpose."""


class CommandError(HubbubError):
    """A command failed; the client gets an ``error`` frame and stays connected."""

    def __init__(self, code: ErrorCode, message: str, *, kind: ErrorKind | None = None) -> None:
        super().__init__(f"{int(code)}: {message}")
        self.code = code
        self.message = message
        self.kind = kind


class EngineUnavailable(CommandError):
    """The engine cannot be reached right now; callers may retry later."""

    def __init__(self, message: str = "engine unavailable, retry later") -> None:
        super().__init__(ErrorCode.ENGINE_UNAVAILABLE, message)


class Disconnect(HubbubError):
    """The connection must be closed with ``code``."""

    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(f"{int(code)}: {reason}")
        self.code = code
        self.reason = reason


class ConfigError(HubbubError):
    """Settings are invalid; the message names the setting and the problem."""


class AuthError(HubbubError):
    """A token is missing, malformed, expired or signed with the wrong key."""


class TokenExpired(AuthError):
    """A token was valid but its ``exp`` has passed."""


def bad_request(message: str) -> CommandError:
    return CommandError(ErrorCode.BAD_REQUEST, message)


def permission_denied(message: str = "permission denied") -> CommandError:
    return CommandError(ErrorCode.PERMISSION_DENIED, message)
