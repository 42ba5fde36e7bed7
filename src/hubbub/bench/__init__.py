"""``hubbub bench``: a load generator for hubbub and for the peers of ``benchmarks/``.

Modules: :mod:`.wsclient` (a minimal WebSocket client), :mod:`.adapters` (the
wire protocols it speaks), :mod:`.loadgen` (connections, counting, pacing),
:mod:`.scenarios` (S1-S4), :mod:`.stats` (percentiles, CPU, RSS),
:mod:`.report` (tables, JSON, plot) and :mod:`.command` (the click command).
"""

from hubbub.bench.scenarios import SCENARIOS, BenchConfig, run_scenarios

__all__ = ["SCENARIOS", "BenchConfig", "run_scenarios"]
