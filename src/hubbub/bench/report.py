"""Output: the live status line, the final tables, ``--json`` and ``--plot``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text


class RichUi:
    """A one-line live status (spinner + text) and a log of finished steps."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._spinner = Spinner("dots", text="starting")
        self._live: Live | None = None

    def __enter__(self) -> RichUi:
        self._live = Live(self._spinner, console=self.console, refresh_per_second=4, transient=True)
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def status(self, text: str) -> None:
        self._spinner.update(text=Text(text))

    def log(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)


class QuietUi:
    def status(self, text: str) -> None:
        return None

    def log(self, text: str) -> None:
        return None


def _f(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def step_table(title: str, steps: list[Mapping[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in (
        "msg/s",
        "offered/s",
        "deliv/s",
        "p50",
        "p95",
        "p99 ms",
        "max",
        "lost",
        "dup",
        "closed",
        "srv CPU",
        "µs/del",
        "RSS MB",
        "gen",
        "",
    ):
        table.add_column(column, justify="right")
    for s in steps:
        lat = s["latency_ms"]
        table.add_row(
            _f(s["rate"], 1),
            _f(s["offered_deliveries"]),
            _f(s["delivered_rate"]),
            _f(lat.get("p50"), 1),
            _f(lat.get("p95"), 1),
            _f(lat.get("p99"), 1),
            _f(lat.get("max"), 1),
            _f(s["lost"]),
            _f(s["duplicated"]),
            _f(s["closed"]),
            "-" if s["server_cpu"] is None else f"{s['server_cpu']:.0%}",
            _f(s["server_us_per_delivery"], 1),
            _f(s["server_rss_mb"], 1),
            f"{s['generator_cpu']:.0%}",
            ("ok" if s["ok"] else "[red]FAIL[/]") + (f" {s['note']}" if s["note"] else ""),
        )
    return table


def print_report(console: Console, results: Mapping[str, Any]) -> None:
    """Human-readable tables for every scenario in ``results``."""
    for key, result in results.items():
        name = key.split("-")[0]
        if "error" in result:
            console.print(f"[red]{key.upper()}: {result['error']}[/]")
            continue
        if name in ("s1", "s2"):
            steps = list(result["steps"])
            if name == "s1":
                steps = [result["fixed"], *steps]
            title = {
                "s1": f"S1 fan-out, {result.get('connections')} subscribers",
                "s2": f"S2 chat, {result.get('rooms')} rooms x {result.get('room_size')}",
            }[name]
            console.print(step_table(title, steps))
            line = (
                f"  sustainable: {result['sustainable_deliveries_per_s']:,} deliveries/s "
                f"(p99 {result['sustainable_p99_ms']} ms)"
            )
            if result.get("generator_limited"):
                line += " - every step passed: the offered load, not the server, was the limit"
            if name == "s1" and result.get("cpu_us_per_delivery_at_fixed") is not None:
                line += (
                    f"; server CPU at {result['fixed_deliveries_per_s']:,.0f} deliveries/s: "
                    f"{result['cpu_us_per_delivery_at_fixed']} µs/delivery"
                )
            console.print(line)
            saturated = [s for s in steps if "generator saturated" in s["note"]]
            if saturated:
                console.print(
                    "  [yellow]warning: the generator used > 90% of a core in "
                    f"{len(saturated)} step(s); those numbers measure the generator too[/]"
                )
        elif name == "s3":
            table = Table(title="S3 idle connections", title_justify="left")
            for column in ("connections", "open", "RSS before MB", "RSS after MB", "KB/conn"):
                table.add_column(column, justify="right")
            table.add_row(
                _f(result["connections"]),
                _f(result["open_after_settle"]),
                _f(result.get("server_rss_mb_before"), 1),
                _f(result.get("server_rss_mb_after"), 1),
                _f(result.get("server_rss_kb_per_connection"), 1),
            )
            console.print(table)
        elif name == "s4":
            table = Table(title="S4 connect (handshake + subscribe + round trip)")
            for column in ("connections", "ok", "conn/s", "p50 ms", "p99 ms", "max ms", "fail"):
                table.add_column(column, justify="right")
            lat = result["latency_ms"]
            table.add_row(
                _f(result["connections"]),
                _f(result["succeeded"]),
                _f(result["connections_per_s"], 0),
                _f(lat.get("p50"), 1),
                _f(lat.get("p99"), 1),
                _f(lat.get("max"), 1),
                _f(sum(result["failures"].values())),
            )
            console.print(table)


def plot(results: Mapping[str, Any], path: str) -> bool:
    """Delivered/s and p99 against offered deliveries/s for S1 and S2 (matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name in ("s1", "s2"):
        result = results.get(name)
        if not result or "steps" not in result:
            continue
        steps = result["steps"]
        offered = [s["offered_deliveries"] for s in steps]
        left.plot(offered, [s["delivered_rate"] for s in steps], marker="o", label=name.upper())
        right.plot(
            offered,
            [s["latency_ms"].get("p99") or float("nan") for s in steps],
            marker="o",
            label=f"{name.upper()} p99",
        )
    left.plot(left.get_xlim(), left.get_xlim(), linestyle=":", color="grey", label="offered")
    left.set_xlabel("offered deliveries/s")
    left.set_ylabel("delivered/s")
    left.legend()
    right.set_xlabel("offered deliveries/s")
    right.set_ylabel("latency p99 (ms)")
    right.set_yscale("log")
    right.axhline(100, linestyle=":", color="red")
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True
