"""Connection and subscription JWTs: HS256, RS256, ES256 and every way to fail."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from hubbub.auth import TokenVerifier, issue_token
from hubbub.core.protocol import parse_raw
from hubbub.errors import AuthError, ConfigError

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


def public_pem(private: Any) -> str:
    return str(
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def test_hs256_connection_token() -> None:
    token = issue_token(SECRET, "alice", channels=["chat:*"], info={"name": "Alice"})
    credentials = TokenVerifier(secret=SECRET).connection(token)
    assert credentials.user == "alice"
    assert credentials.channels == ("chat:*",)
    assert credentials.info is not None
    assert parse_raw(credentials.info) == {"name": "Alice"}
    assert credentials.expires_at is not None
    assert abs(credentials.expires_at - (time.time() + 3600)) < 5


def test_token_without_exp() -> None:
    credentials = TokenVerifier(secret=SECRET).connection(issue_token(SECRET, "bob", ttl=None))
    assert credentials.user == "bob"
    assert credentials.expires_at is None
    assert credentials.channels == ()
    assert credentials.info is None


@pytest.mark.parametrize(
    ("private", "alg"),
    [
        (rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"),
        (ec.generate_private_key(ec.SECP256R1()), "ES256"),
    ],
)
def test_public_key_tokens(private: Any, alg: str) -> None:
    verifier = TokenVerifier(public_key=public_pem(private))
    token = jwt.encode({"sub": "carol", "exp": int(time.time()) + 60}, private, algorithm=alg)
    assert verifier.connection(token).user == "carol"
    # Signed by another key of the same kind: refused.
    other = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if alg == "RS256"
        else ec.generate_private_key(ec.SECP256R1())
    )
    forged = jwt.encode({"sub": "carol"}, other, algorithm=alg)
    with pytest.raises(AuthError, match="invalid token"):
        verifier.connection(forged)
    # An HS256 token cannot pass, whatever its secret (algorithm confusion).
    with pytest.raises(AuthError):
        verifier.connection(issue_token(SECRET, "carol"))


def test_hs256_verifier_refuses_public_key_algorithms() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode({"sub": "x"}, private, algorithm="ES256")
    with pytest.raises(AuthError):
        TokenVerifier(secret=SECRET).connection(token)


def _unsigned(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def test_alg_none_is_refused() -> None:
    with pytest.raises(AuthError, match="invalid token"):
        TokenVerifier(secret=SECRET).connection(_unsigned({"sub": "mallory"}))


def test_wrong_signature() -> None:
    token = issue_token("another-secret-that-is-long-enough-too", "alice")
    with pytest.raises(AuthError, match="invalid token"):
        TokenVerifier(secret=SECRET).connection(token)


def test_expired() -> None:
    token = issue_token(SECRET, "alice", ttl=-10)
    with pytest.raises(AuthError, match="expired"):
        TokenVerifier(secret=SECRET).connection(token)


@pytest.mark.parametrize(
    "claims",
    [{}, {"sub": ""}, {"sub": 42}, {"sub": None}],
)
def test_missing_or_bad_sub(claims: dict[str, Any]) -> None:
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    with pytest.raises(AuthError, match=r"(?i)sub"):
        TokenVerifier(secret=SECRET).connection(token)


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c"])
def test_malformed(token: str) -> None:
    with pytest.raises(AuthError):
        TokenVerifier(secret=SECRET).connection(token)


@pytest.mark.parametrize("channels", ["chat:*", [1], {"a": 1}])
def test_bad_channels_claim(channels: Any) -> None:
    token = jwt.encode({"sub": "a", "channels": channels}, SECRET, algorithm="HS256")
    with pytest.raises(AuthError, match="channels"):
        TokenVerifier(secret=SECRET).connection(token)


def test_subscription_token() -> None:
    verifier = TokenVerifier(secret=SECRET)
    token = issue_token(SECRET, "alice", channel="private:team")
    verifier.subscription(token, channel="private:team", user="alice")
    with pytest.raises(AuthError, match="another channel"):
        verifier.subscription(token, channel="private:other", user="alice")
    with pytest.raises(AuthError, match="another user"):
        verifier.subscription(token, channel="private:team", user="bob")
    with pytest.raises(AuthError, match="another channel"):
        verifier.subscription(issue_token(SECRET, "alice"), channel="private:team", user="alice")
    with pytest.raises(AuthError, match="expired"):
        verifier.subscription(
            issue_token(SECRET, "alice", channel="private:team", ttl=-5),
            channel="private:team",
            user="alice",
        )
    with pytest.raises(AuthError, match="invalid token"):
        verifier.subscription(
            issue_token("another-secret-that-is-long-enough-too", "alice", channel="private:team"),
            channel="private:team",
            user="alice",
        )


def test_verifier_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="secret or a public_key"):
        TokenVerifier()
    with pytest.raises(ConfigError, match="PEM"):
        TokenVerifier(public_key="not a key")
    with pytest.raises(ConfigError, match="RSA or EC"):
        TokenVerifier(public_key=public_pem(ed25519.Ed25519PrivateKey.generate()))
