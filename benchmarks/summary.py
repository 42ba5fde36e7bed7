"""Markdown summary of a ``benchmarks.run`` results document (peer x scenario)."""

from __future__ import annotations

import json
import sys
from typing import Any


def _n(value: Any, suffix: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        value = round(value, 1) if value < 100 else round(value)
    return f"{value:,}{suffix}" if isinstance(value, int | float) else str(value)


def _s1(result: dict[str, Any] | None) -> tuple[str, str]:
    if not result:
        return "-", "-"
    if "error" in result:
        return "error", "-"
    best = _n(result["sustainable_deliveries_per_s"])
    if result.get("generator_limited"):
        best = "≥ " + best
    best += f" (p99 {_n(result['sustainable_p99_ms'])} ms)" if result["sustainable_p99_ms"] else ""
    fixed = result.get("fixed") or {}
    cpu = _n(result.get("cpu_us_per_delivery_at_fixed"))
    if fixed and not fixed.get("ok"):
        cpu += " (not sustained)"
    return best, cpu


def _gen(results: dict[str, Any]) -> str:
    shares = []
    for result in results.values():
        if not isinstance(result, dict):
            continue
        for step in result.get("steps", []):
            shares.append(step.get("generator_cpu", 0))
        if "generator_cpu" in result:
            shares.append(result["generator_cpu"])
    return f"{max(shares):.0%}" if shares else "-"


def markdown(document: dict[str, Any]) -> str:
    machine = document["machine"]
    lines = [
        f"# hubbub side-by-side benchmark ({document['mode']})",
        "",
        f"- date: {document['date']}; command: `{document['command']}`; "
        f"took {document.get('seconds', '?')} s",
        f"- machine: {machine.get('cpus')} CPUs ({machine.get('cpu_model', '?')}), "
        f"{machine.get('memory_gb', '?')} GB, {machine.get('platform')}, "
        f"Python {machine.get('python')}; load average at start "
        f"{', '.join(f'{x:.1f}' for x in machine.get('load_average_at_start', []))}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in document["versions"].items()),
        "- generator and servers share the machine; server CPU includes worker processes "
        "and, for Redis peers, redis-server.",
        "",
        "| peer | S1 N=1,000 sustainable deliveries/s | S1 µs CPU/delivery @ 20k/s "
        "| S1 N=5,000 sustainable | S2 chat sustainable | S3 KB RSS/idle conn "
        "| S4 conn/s (p99 ms) | generator CPU (max) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, peer in document["peers"].items():
        results = peer["results"]
        if "skipped" in results:
            lines.append(f"| {name} | skipped: {results['skipped']} |  |  |  |  |  |  |")
            continue
        s1, cpu = _s1(results.get("s1-1000"))
        s1b, _ = _s1(results.get("s1-5000"))
        s2, _ = _s1(results.get("s2"))
        s3 = results.get("s3") or {}
        s4 = results.get("s4") or {}
        s4_text = "-"
        if s4 and "error" not in s4:
            s4_text = f"{_n(s4['connections_per_s'])} ({_n(s4['latency_ms']['p99'])})"
            if s4.get("failures"):
                s4_text += f", {sum(s4['failures'].values())} failed"
        lines.append(
            f"| {name} | {s1} | {cpu} | {s1b} | {s2} "
            f"| {_n(s3.get('server_rss_kb_per_connection'))} | {s4_text} | {_gen(results)} |"
        )
    lines += [
        "",
        "Sustainable = the highest step with nothing lost or duplicated, no connection "
        "closed and p99 < 100 ms; '≥' means every offered step passed (the offered "
        "load, not the server, was the limit). Per-step details are in the JSON file.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        print(markdown(json.load(f)))
