"""The ``hubbub bench`` click command (registered by :mod:`hubbub.cli`)."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import click

from hubbub.bench.adapters import ADAPTERS


def _floats(ctx: click.Context, param: click.Parameter, value: str | None) -> list[float] | None:
    if not value:
        return None
    try:
        return [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter("a comma-separated list of numbers") from None


def _pids(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int]:
    if not value:
        return []
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter("a comma-separated list of process ids") from None


@click.command()
@click.option("--url", default="ws://127.0.0.1:8000/ws", show_default=True, help="WebSocket URL.")
@click.option(
    "--scenario",
    "scenarios",
    default="s1",
    show_default=True,
    help="Comma-separated: s1 (fan-out), s2 (chat), s3 (idle), s4 (connect).",
)
@click.option(
    "-n",
    "--connections",
    type=int,
    default=1000,
    show_default=True,
    help="Subscribers (S1), idle connections (S3), connections (S4).",
)
@click.option(
    "--secret",
    envvar="HUBBUB_SECRET",
    default=None,
    help="HS256 secret to sign connection tokens (default $HUBBUB_SECRET); "
    "without it connections are anonymous.",
)
@click.option(
    "--protocol",
    type=click.Choice(ADAPTERS),
    default="hubbub",
    show_default=True,
    help="Wire protocol: hubbub v1, the 'mini' subset of the benchmark peers, or socketio.",
)
@click.option(
    "--namespace",
    default="bench",
    show_default=True,
    help="hubbub channel namespace used by the scenarios.",
)
@click.option(
    "--rates",
    callback=_floats,
    default=None,
    help="Offered publications/s per step, e.g. 10,20,40 (deliveries = x receivers). "
    "Default: step up geometrically until a step fails.",
)
@click.option(
    "--step",
    type=float,
    default=1.5,
    show_default=True,
    help="Rate factor between steps when --rates is not given.",
)
@click.option(
    "--start",
    "start_deliveries",
    type=float,
    default=10_000,
    show_default=True,
    help="First step's offered deliveries/s when stepping.",
)
@click.option("--max-steps", type=int, default=12, show_default=True)
@click.option(
    "--duration", type=float, default=5.0, show_default=True, help="Seconds of publishing per step."
)
@click.option(
    "--fixed",
    "fixed_deliveries",
    type=float,
    default=20_000,
    show_default=True,
    help="S1: deliveries/s of the fixed step that measures server CPU per delivery.",
)
@click.option(
    "--p99-limit",
    "p99_limit_ms",
    type=float,
    default=100.0,
    show_default=True,
    help="A step passes with nothing lost and p99 below this (ms).",
)
@click.option("--rooms", type=int, default=100, show_default=True, help="S2 rooms.")
@click.option("--room-size", type=int, default=10, show_default=True, help="S2 members per room.")
@click.option(
    "--sample",
    type=int,
    default=32,
    show_default=True,
    help="Connections that parse every frame (latency, exact sequence checks); "
    "the others only count.",
)
@click.option(
    "--pad", type=int, default=0, show_default=True, help="Extra payload bytes per publication."
)
@click.option(
    "--concurrency", type=int, default=100, show_default=True, help="Handshakes in flight at once."
)
@click.option(
    "--server-pid",
    "server_pids",
    callback=_pids,
    default=None,
    help="Server process id(s), comma-separated: CPU and RSS (children included).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write a latency/throughput chart (PNG; needs matplotlib).",
)
def bench(scenarios: str, as_json: bool, plot_path: str | None, **options: Any) -> None:
    """Load-test a hub: fan-out, chat, idle and connect scenarios.

    Example: hubbub bench --scenario s1 -n 1000 --server-pid $(pgrep -f 'hubbub serve')
    """
    from rich.console import Console

    from hubbub.bench.report import QuietUi, RichUi, plot, print_report
    from hubbub.bench.scenarios import SCENARIOS, BenchConfig, run_scenarios

    names = [s.strip().lower() for s in scenarios.split(",") if s.strip()]
    unknown = [s for s in names if s not in SCENARIOS]
    if unknown:
        raise click.BadParameter(f"unknown scenario(s) {unknown}", param_hint="--scenario")
    config = BenchConfig(**options)
    console = Console(stderr=as_json)
    if as_json and not console.is_terminal:
        ui: Any = QuietUi()
        results = _run(run_scenarios(config, names, ui))
    else:
        with RichUi(console) as rich_ui:
            results = _run(run_scenarios(config, names, rich_ui))
    document = {"config": _public(config), "results": results}
    if as_json:
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_report(console, results)
    if plot_path and not plot(results, plot_path):
        click.echo("--plot needs matplotlib: pip install matplotlib", err=True)


def _public(config: Any) -> dict[str, Any]:
    from dataclasses import asdict

    document = asdict(config)
    document.pop("secret", None)
    document["authenticated"] = bool(config.secret)
    return document


def _run(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)
