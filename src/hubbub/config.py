"""Settings: one validated struct, read from a TOML file, ``HUBBUB_*`` variables and flags.

Precedence is flag > environment > file > built-in default. Every value is
validated by msgspec, so a bad setting is refused at start-up with a message
that names it (``hub.max_message_size: Expected int >= 1024``).
"""

from __future__ import annotations

import os
import secrets
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final

import msgspec
from msgspec import Meta, Struct

from hubbub.core.channels import DEFAULT_NAMESPACE, NamespaceOptions, Namespaces
from hubbub.errors import ConfigError

ENV_PREFIX: Final = "HUBBUB_"

Positive = Annotated[float, Meta(gt=0)]


class Settings(Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """Everything a hub can be told. Field names are the config file's keys."""

    secret: str | None = None
    """HS256 secret for connection and subscription tokens."""
    public_key: str | None = None
    """PEM public key (RS256/ES256) instead of ``secret``."""
    api_key: str | None = None
    """Key for the HTTP server API (``Authorization: apikey <key>``)."""
    allowed_origins: list[str] | None = None
    """Browser origins allowed to connect; ``None``: same host only; ``["*"]``: any."""
    allow_anonymous: bool = False
    """Accept connections without a token (user ``""``); namespaces still decide
    what anonymous clients may do."""
    max_message_size: Annotated[int, Meta(ge=256)] = 65536
    ping_interval: Positive = 25.0
    pong_timeout: Positive = 10.0
    auth_timeout: Positive = 10.0
    rate_limit: Positive = 20.0
    rate_burst: Annotated[int, Meta(ge=1)] = 50
    max_queue_bytes: Annotated[int, Meta(ge=1024)] = 1_048_576
    max_connections: Annotated[int, Meta(ge=0)] = 0
    """Per node; 0 means no limit."""
    max_connections_per_user: Annotated[int, Meta(ge=0)] = 0
    """Per node; 0 means no limit."""
    strict_namespaces: bool = False
    compression: bool = False
    data_dir: str | None = None
    demo: bool = True
    engine: str = "memory"
    """``memory`` or a ``redis://`` URL."""
    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=0, le=65535)] = 8000
    workers: Annotated[int, Meta(ge=1)] = 1
    presence_ttl: Positive = 60.0
    """How long a presence entry lives without refresh (covers crashed nodes)."""
    namespaces: dict[str, NamespaceOptions] = {}
    development: bool = False
    """Set when no secret was configured and one was generated (never from files)."""

    def namespace_table(self) -> Namespaces:
        return Namespaces(self.namespaces, strict=self.strict_namespaces)


#: Keys that may not come from the file or the environment.
_INTERNAL: Final = frozenset({"namespaces", "development"})
_LIST_KEYS: Final = frozenset({"allowed_origins"})


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge file, environment and ``overrides`` (flags; ``None`` values are
    ignored) into validated :class:`Settings`."""
    merged: dict[str, Any] = {}
    namespaces: dict[str, Any] = {}
    if config_file is not None:
        document = _read_toml(Path(config_file))
        unknown = set(document) - {"hub", "namespaces"}
        if unknown:
            raise ConfigError(f"{config_file}: unknown table(s) {sorted(unknown)}")
        hub_table = document.get("hub", {})
        if not isinstance(hub_table, dict):
            raise ConfigError(f"{config_file}: [hub] must be a table")
        merged.update(hub_table)
        namespaces = document.get("namespaces", {})
    merged.update(_from_environment(os.environ if environ is None else environ))
    merged.update({k: v for k, v in (overrides or {}).items() if v is not None})
    bad = _INTERNAL & set(merged)
    if bad:
        raise ConfigError(f"{sorted(bad)} cannot be set in [hub]")
    merged["namespaces"] = _namespaces(namespaces)
    try:
        return msgspec.convert(merged, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid setting: {_name_field(str(exc))}") from None


def with_development_defaults(settings: Settings) -> Settings:
    """Fill in a random secret and API key when none is configured.

    This is the development mode of ``hubbub serve``: it just works locally, and
    the caller logs loudly that tokens will not survive a restart."""
    if settings.secret or settings.public_key:
        return settings
    return msgspec.structs.replace(
        settings,
        secret=secrets.token_urlsafe(32),
        api_key=settings.api_key or secrets.token_urlsafe(24),
        development=True,
    )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for field in Settings.__struct_fields__:
        if field in _INTERNAL:
            continue
        raw = environ.get(ENV_PREFIX + field.upper())
        if raw is None:
            continue
        if field in _LIST_KEYS:
            values[field] = [item.strip() for item in raw.split(",") if item.strip()]
        else:
            values[field] = raw
    return values


def _namespaces(table: Any) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError("[namespaces] must be a table of tables")
    # Unlisted options of a named namespace fall back to [namespaces.default].
    default = table.get(DEFAULT_NAMESPACE, {})
    if not isinstance(default, dict):
        raise ConfigError("[namespaces.default] must be a table")
    result: dict[str, Any] = {}
    for name, options in table.items():
        if not isinstance(options, dict):
            raise ConfigError(f"[namespaces.{name}] must be a table")
        result[name] = {**default, **options}
        try:  # validated here too, so that the message names the namespace
            msgspec.convert(result[name], NamespaceOptions, strict=False)
        except msgspec.ValidationError as exc:
            raise ConfigError(
                f"invalid setting: [namespaces.{name}] {_name_field(str(exc))}"
            ) from None
    return result


def _name_field(message: str) -> str:
    # msgspec says "... - at `$.namespaces.news.history_size`"; make it read as a key.
    text, sep, where = message.rpartition(" - at `$.")
    if not sep:
        return message
    return f"{where.rstrip('`')}: {text}"
