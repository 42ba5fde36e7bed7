"""Numbers: latency percentiles, CPU and RSS of the server and of the generator."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """p50/p95/p99/max in milliseconds (``None`` when there is no sample)."""
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(values)
    last = len(ordered) - 1

    def at(q: float) -> float:
        return round(ordered[min(last, int(q * len(ordered)))] * 1000, 3)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": round(ordered[-1] * 1000, 3)}


@dataclass(frozen=True, slots=True)
class CpuSample:
    wall: float
    cpu: float  # seconds of user + system time
    rss: int  # bytes


class ProcessProbe:
    """CPU time and RSS of some processes and all their descendants (uvicorn
    workers, Redis): pass the pids the user gave with ``--server-pid``."""

    def __init__(self, pids: Sequence[int]) -> None:
        import psutil  # type: ignore[import-untyped]  # optional: only with --server-pid

        self._psutil = psutil
        self._roots = [psutil.Process(pid) for pid in pids]
        self._dead_cpu = 0.0
        self._seen: dict[int, Any] = {}
        self._last: dict[int, float] = {}

    def _processes(self) -> list[Any]:
        processes = []
        for root in self._roots:
            try:
                processes.append(root)
                processes.extend(root.children(recursive=True))
            except self._psutil.NoSuchProcess:
                continue
        return processes

    def sample(self) -> CpuSample:
        cpu = 0.0
        rss = 0
        alive: dict[int, float] = {}
        for process in self._processes():
            try:
                with process.oneshot():
                    times = process.cpu_times()
                    used = times.user + times.system
                    rss += process.memory_info().rss
            except self._psutil.NoSuchProcess:
                continue
            alive[process.pid] = used
            cpu += used
        # keep the CPU of processes that went away, so totals never go backwards
        for pid, used in self._last.items():
            if pid not in alive:
                self._dead_cpu += used
        self._last = alive
        return CpuSample(time.monotonic(), cpu + self._dead_cpu, rss)


class SelfProbe:
    """The generator's own CPU (this process)."""

    def sample(self) -> CpuSample:
        times = os.times()
        return CpuSample(time.monotonic(), times.user + times.system, 0)


def cpu_share(before: CpuSample, after: CpuSample) -> float:
    """Cores used between two samples (1.0 = one core fully busy)."""
    wall = after.wall - before.wall
    return (after.cpu - before.cpu) / wall if wall > 0 else 0.0


def machine_info() -> dict[str, Any]:
    import platform
    import sys

    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    return info
