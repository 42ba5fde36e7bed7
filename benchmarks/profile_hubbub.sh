#!/usr/bin/env bash
# Profile `hubbub serve` (memory engine) under S1 fan-out load with py-spy.
#   benchmarks/profile_hubbub.sh [WS_IMPL] [RATE_MSGS_PER_S] [N]
# Writes benchmarks/results/profile-<ws>.{svg,txt,top.txt} and the bench JSON.
set -euo pipefail
cd "$(dirname "$0")/.."
WS=${1:-wsproto}; RATE=${2:-40}; N=${3:-1000}
PY=${PY:-.venv/bin/python}; SPY=${SPY:-.venv/bin/py-spy}
OUT=benchmarks/results/profile-$WS
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
$PY -m benchmarks.peers.hubbub_server --ws "$WS" --port "$PORT" > "$OUT.server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 50); do (echo > /dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.2; done
# 6 steps x 4 s at RATE msg/s = RATE*N deliveries/s; py-spy samples the middle 16 s
$PY -m hubbub.cli bench --url "ws://127.0.0.1:$PORT/ws" --secret bench-secret-bench-secret-bench-secret \
  -n "$N" --rates "$RATE,$RATE,$RATE,$RATE,$RATE,$RATE" --duration 4 --fixed $((RATE * N)) \
  --server-pid "$SERVER" --json > "$OUT.bench.json" &
BENCH=$!
sleep 10
$SPY record --pid "$SERVER" --duration 16 --rate 200 --format raw -o "$OUT.txt" --nonblocking >/dev/null 2>&1 || true
$SPY record --pid "$SERVER" --duration 6 --rate 200 -o "$OUT.svg" --nonblocking >/dev/null 2>&1 || true
wait $BENCH || true
$PY -m benchmarks.flame_top "$OUT.txt" 30 > "$OUT.top.txt"
cat "$OUT.top.txt"
