"""JWT connection and subscription tokens.

Only the algorithms that match the configured key are accepted (HS256 for a
secret; RS256 or ES256 for a public key, chosen by the key's type), so
``alg: none`` and algorithm-confusion tokens fail like any bad signature.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from msgspec import Raw

from hubbub.core.protocol import raw_json
from hubbub.errors import AuthError, ConfigError, TokenExpired


@dataclass(frozen=True, slots=True)
class Credentials:
    """Who a connection is. ``user == ""`` is an anonymous connection."""

    user: str
    info: Raw | None = None
    channels: tuple[str, ...] = ()
    """Glob patterns this user may subscribe to beyond the namespace rules."""
    expires_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Anything an app's authenticator wants to keep with the connection."""


ANONYMOUS = Credentials(user="")


class TokenVerifier:
    """Verifies connection and subscription JWTs against one key."""

    def __init__(self, *, secret: str | None = None, public_key: str | None = None) -> None:
        if public_key:
            try:
                key = load_pem_public_key(public_key.encode())
            except ValueError as exc:
                raise ConfigError(f"public_key is not a PEM public key: {exc}") from None
            if isinstance(key, rsa.RSAPublicKey):
                self._algorithms = ["RS256"]
            elif isinstance(key, ec.EllipticCurvePublicKey):
                self._algorithms = ["ES256"]
            else:
                raise ConfigError("public_key must be an RSA or EC (P-256) key")
            self._key: Any = key
        elif secret:
            self._algorithms = ["HS256"]
            self._key = secret
        else:
            raise ConfigError("a secret or a public_key is needed to verify tokens")

    def _decode(self, token: str) -> dict[str, Any]:
        if not token:
            raise AuthError("token is missing")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=self._algorithms,
                options={"require": ["sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenExpired("token expired") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"invalid token: {exc}") from None
        sub = claims["sub"]
        if not isinstance(sub, str) or not sub:
            raise AuthError("invalid token: `sub` must be a non-empty string")
        return claims

    def connection(self, token: str) -> Credentials:
        """Verify a connection token and return who it names."""
        claims = self._decode(token)
        channels = claims.get("channels", [])
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            raise AuthError("invalid token: `channels` must be a list of strings")
        info = claims.get("info")
        exp = claims.get("exp")
        return Credentials(
            user=claims["sub"],
            info=None if info is None else raw_json(info),
            channels=tuple(channels),
            expires_at=float(exp) if isinstance(exp, int | float) else None,
        )

    def subscription(self, token: str, *, channel: str, user: str) -> None:
        """Verify a subscription token for ``channel`` held by ``user``."""
        claims = self._decode(token)
        if claims.get("channel") != channel:
            raise AuthError("subscription token is for another channel")
        if claims["sub"] != user:
            raise AuthError("subscription token is for another user")


def issue_token(
    secret: str,
    user: str,
    *,
    ttl: float | None = 3600,
    channels: list[str] | None = None,
    info: Any = None,
    channel: str | None = None,
) -> str:
    """Sign an HS256 token: a connection token, or a subscription token when
    ``channel`` is given. Used by ``hubbub token``, apps and tests."""
    claims: dict[str, Any] = {"sub": user}
    if ttl is not None:
        claims["exp"] = int(time.time() + ttl)
    if channels:
        claims["channels"] = channels
    if info is not None:
        claims["info"] = info
    if channel is not None:
        claims["channel"] = channel
    return jwt.encode(claims, secret, algorithm="HS256")
