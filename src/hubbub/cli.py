"""The ``hubbub`` command: serve, token, publish, bench."""

from __future__ import annotations

import json
import logging
import signal
import sys
from types import FrameType
from typing import Any

import click
from rich.console import Console

from hubbub.auth import issue_token
from hubbub.bench.command import bench
from hubbub.config import Settings, load_settings, with_development_defaults
from hubbub.engines import FACTORIES, is_single_process, scheme_of
from hubbub.errors import ConfigError

config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    envvar="HUBBUB_CONFIG",
    help="TOML configuration file ([hub] and [namespaces.*] tables).",
)


def _settings(config_file: str | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config_file, overrides=overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
@click.version_option(package_name="hubbub")
def main() -> None:
    """hubbub: a real-time messaging hub for Python web apps."""


@main.command()
@click.option("--host", default=None, help="Interface to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to bind (default 8000).")
@click.option("--engine", default=None, help="'memory' (default) or a redis:// URL.")
@click.option("--workers", type=int, default=None, help="Worker processes (Redis engine only).")
@click.option("--data-dir", default=None, help="Memory engine: keep history in SQLite here.")
@click.option("--log-level", default="info", show_default=True)
@config_option
def serve(
    host: str | None,
    port: int | None,
    engine: str | None,
    workers: int | None,
    data_dir: str | None,
    log_level: str,
    config_file: str | None,
) -> None:
    """Run the hub: WebSocket endpoint /ws, health, metrics, demo."""
    import uvicorn

    from hubbub.asgi.serve import export_settings, uvicorn_options

    settings = _settings(
        config_file, host=host, port=port, engine=engine, workers=workers, data_dir=data_dir
    )
    if scheme_of(settings.engine) not in FACTORIES:
        raise click.ClickException(
            f"unknown engine {settings.engine!r}: use 'memory' or a redis:// URL"
        )
    if settings.workers > 1 and is_single_process(settings.engine):
        raise click.ClickException(
            "--workers > 1 needs a shared engine: with the memory engine each worker "
            "has its own subscribers, so a broadcast would silently reach only one "
            "worker's clients. Use --engine redis://... or a single worker."
        )
    if not (settings.secret or settings.public_key):
        settings = with_development_defaults(settings)
        console = Console(stderr=True, soft_wrap=True)  # keep the commands copyable
        console.print(
            "[bold yellow]DEVELOPMENT MODE[/]: no secret configured, generated for this run:\n"
            f"  secret  = {settings.secret}\n"
            f"  api_key = {settings.api_key}\n"
            "Set HUBBUB_SECRET and HUBBUB_API_KEY (or \\[hub] secret/api_key) in production.\n"
            f"Try: HUBBUB_SECRET={settings.secret} hubbub token --user alice"
        )
    export_settings(settings)
    # uvicorn shuts down gracefully on SIGTERM (clients get 1012), then re-raises
    # the signal with the previous handler restored: make that an exit 0.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s:     %(name)s %(message)s")
    uvicorn.run(
        "hubbub.asgi.serve:create_app",
        factory=True,
        workers=settings.workers,
        log_level=log_level,
        **uvicorn_options(settings),
    )


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    sys.exit(0)


@main.command()
@click.option("--user", required=True, help="User id (the `sub` claim).")
@click.option("--ttl", type=float, default=3600, show_default=True, help="Seconds until expiry.")
@click.option("--channels", default=None, help="Comma-separated glob patterns, e.g. 'chat:*'.")
@click.option("--info", default=None, help='JSON shown in presence, e.g. \'{"name": "Alice"}\'.')
@config_option
def token(
    user: str, ttl: float, channels: str | None, info: str | None, config_file: str | None
) -> None:
    """Print a connection JWT signed with the configured secret."""
    settings = _settings(config_file)
    if not settings.secret:
        raise click.ClickException(
            "no secret configured: set HUBBUB_SECRET or [hub] secret in --config "
            "(tokens for RS256/ES256 keys are signed by your own backend)"
        )
    try:
        info_value = None if info is None else json.loads(info)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--info") from None
    patterns = [p.strip() for p in channels.split(",") if p.strip()] if channels else None
    click.echo(issue_token(settings.secret, user, ttl=ttl, channels=patterns, info=info_value))


@main.command()
@click.argument("channel")
@click.argument("data", metavar="JSON")
@click.option(
    "--url",
    envvar="HUBBUB_URL",
    default="http://127.0.0.1:8000",
    show_default=True,
    help="Where the hub is served (env HUBBUB_URL).",
)
@click.option("--api-key", envvar="HUBBUB_API_KEY", help="Server API key (env HUBBUB_API_KEY).")
@click.option("--idempotency-key", default=None, help="Publish once per key within 5 minutes.")
@click.option("--timeout", type=float, default=5, show_default=True, help="Seconds per attempt.")
def publish(
    channel: str,
    data: str,
    url: str,
    api_key: str | None,
    idempotency_key: str | None,
    timeout: float,
) -> None:
    """Publish JSON to CHANNEL through the HTTP server API; prints offset and epoch."""
    from hubbub.publisher import Publisher, PublishError

    try:
        value = json.loads(data)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="JSON") from None
    if not api_key:
        raise click.UsageError("no API key: pass --api-key or set HUBBUB_API_KEY")
    try:
        with Publisher(url, api_key, timeout=timeout) as publisher:
            result = publisher.publish(channel, value, idempotency_key=idempotency_key)
    except PublishError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps({"offset": result.offset, "epoch": result.epoch}))


main.add_command(bench)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
