#!/usr/bin/env bash
# Autobahn|Testsuite (wstest -m fuzzingclient) against hubbub's WebSocket protocol.
#
#   scripts/autobahn.sh [--worktree] [TARGET...]
#
# TARGET is an implementation, optionally with "-deflate" (permessage-deflate on,
# which adds the 12.* and 13.* cases to 1.* to 10.*):
#   hubbub             hubbub.asgi.wsserver.HubbubWebSocketProtocol behind uvicorn's
#                      httptools protocol (the default target)
#   hubbub-http        the same behind hubbub.asgi.httpserver.HubbubHttpProtocol, which
#                      hands the parsed upgrade request over (as `hubbub serve` runs)
#   wsproto            uvicorn's own ws="wsproto", for comparison
#   websockets-sansio  uvicorn's own ws="websockets-sansio" (the same websockets
#                      sans-I/O parser as hubbub's), for comparison
#   all                every implementation, without and with -deflate
# Each target gets its own echo server (scripts/autobahn_echo.py under uvicorn,
# httptools + uvloop, 127.0.0.1, a free port) and its own wstest run. AUTOBAHN_CASES
# (e.g. '"7.*"') overrides the case list. The reports go to a temp dir (kept; its path
# is printed). Exits 1 if any case's behaviour or closing behaviour is FAILED.
#
# hubbub is tested as committed (HEAD, exported with git archive), so edits in
# progress under src/ do not leak into the result; --worktree tests src/ as it is.
#
# Autobahn|Testsuite 0.8.2 is Python 2 only: a Python 2.7 virtualenv is made in
# $AUTOBAHN_VENV (default /tmp/autobahn-venv) if missing, with the pins below (the
# releases pip 20.3.4 resolves on 2.7 for autobahntestsuite 0.8.2, checked to run).
# Python 2.7 is $PYTHON2, else python2.7 on PATH, else pyenv's 2.7.18.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY3=${PY3:-$ROOT/.venv/bin/python}
AUTOBAHN_VENV=${AUTOBAHN_VENV:-/tmp/autobahn-venv}
PINS=(
  autobahntestsuite==0.8.2 autobahn==0.10.9 txaio==2.1.0 Twisted==20.3.0
  zope.interface==5.5.2 Automat==22.10.0 attrs==21.4.0 constantly==15.1.0
  incremental==22.10.0 hyperlink==21.0.0 idna==2.10 PyHamcrest==1.10.1
  pyOpenSSL==21.0.0 cryptography==3.3.2 cffi==1.15.1 pycparser==2.21 enum34==1.1.10
  ipaddress==1.0.23 service-identity==21.1.0 pyasn1==0.5.1 pyasn1-modules==0.3.0
  klein==20.6.0 Tubes==0.2.1 Werkzeug==1.0.1 Jinja2==2.11.3 MarkupSafe==1.1.1
  six==1.17.0 typing==3.10.0.0 unittest2==1.1.0 linecache2==1.0.0 traceback2==1.4.0
  argparse==1.4.0 wsaccel==0.6.6 ujson==2.0.3
)
IMPLEMENTATIONS=(hubbub hubbub-http wsproto websockets-sansio)

worktree=0
targets=()
for arg in "$@"; do
  case $arg in
    --worktree) worktree=1 ;;
    all) for impl in "${IMPLEMENTATIONS[@]}"; do targets+=("$impl" "$impl-deflate"); done ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *)
      if [[ " ${IMPLEMENTATIONS[*]} " == *" ${arg%-deflate} "* ]]; then
        targets+=("$arg")
      else
        echo "unknown argument: $arg (see --help)" >&2
        exit 2
      fi
      ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(hubbub)

# -- the Python 2.7 virtualenv with wstest ---------------------------------------------
if [ ! -x "$AUTOBAHN_VENV/bin/wstest" ]; then
  PY2=${PYTHON2:-}
  if [ -z "$PY2" ]; then
    for candidate in python2.7 "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")/versions/2.7.18/bin/python" \
      /root/.pyenv/versions/2.7.18/bin/python; do
      # (a pyenv shim may exist without 2.7 being selected: run it to be sure)
      if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (2, 7))' >/dev/null 2>&1; then
        PY2=$(command -v "$candidate")
        break
      fi
    done
  fi
  [ -n "$PY2" ] || { echo "no Python 2.7 found (set PYTHON2)" >&2; exit 2; }
  echo "setting up $AUTOBAHN_VENV with $PY2" >&2
  "$PY2" -m virtualenv --version >/dev/null 2>&1 \
    || "$PY2" -m pip install --quiet --disable-pip-version-check "virtualenv==20.15.1" \
    || "$PY2" -m pip install --quiet --user --disable-pip-version-check "virtualenv==20.15.1"
  "$PY2" -m virtualenv --quiet "$AUTOBAHN_VENV"
  "$AUTOBAHN_VENV/bin/pip" install --quiet --disable-pip-version-check --no-python-version-warning "${PINS[@]}"
fi
WSTEST="$AUTOBAHN_VENV/bin/wstest"
export PYTHONWARNINGS=ignore  # cryptography's "Python 2 is no longer supported" on every start

# -- hubbub's source: HEAD, or the work tree ---------------------------------------
WORK=$(mktemp -d /tmp/hubbub-autobahn.XXXXXX)
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ $worktree -eq 1 ]; then
  src="$ROOT/src"
  dirty=$(git -C "$ROOT" status --porcelain -- src 2>/dev/null | wc -l)
  label="work tree on $commit ($dirty changed paths under src/)"
else
  git -C "$ROOT" archive HEAD src | tar -x -C "$WORK"
  src="$WORK/src"
  label="commit $commit"
fi
echo "hubbub: $label; reports under $WORK" >&2

server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
trap stop_server EXIT

free_port() {
  "$PY3" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {  # up to 15 s
  "$PY3" - "$1" <<'EOF'
import socket, sys, time
deadline = time.monotonic() + 15
while time.monotonic() < deadline:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
EOF
}

status=0
all_start=$(date +%s)
for target in "${targets[@]}"; do
  impl=${target%-deflate}
  flags=()
  case $impl in
    hubbub) flags+=(--ws hubbub) ;;
    hubbub-http) flags+=(--ws hubbub --http hubbub) ;;
    *) flags+=(--ws "$impl") ;;
  esac
  cases='"1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "8.*", "9.*", "10.*"'
  if [ "$target" != "$impl" ]; then
    flags+=(--compression)
    cases="$cases, \"12.*\", \"13.*\""
  fi
  cases=${AUTOBAHN_CASES:-$cases}
  port=$(free_port)
  dir="$WORK/$target"
  mkdir -p "$dir"
  PYTHONPATH="$src${PYTHONPATH:+:$PYTHONPATH}" "$PY3" "$ROOT/scripts/autobahn_echo.py" \
    --port "$port" "${flags[@]}" >"$dir/server.log" 2>&1 &
  server_pid=$!
  if ! wait_port "$port"; then
    echo "$target: the echo server did not start; its log:" >&2
    cat "$dir/server.log" >&2
    exit 2
  fi
  cat >"$dir/fuzzingclient.json" <<EOF
{
  "outdir": "$dir/report",
  "servers": [{"agent": "$target", "url": "ws://127.0.0.1:$port"}],
  "cases": [$cases],
  "exclude-cases": [],
  "exclude-agent-cases": {}
}
EOF
  echo "== $target (echo server ${flags[*]}) on 127.0.0.1:$port" >&2
  echo "   $WSTEST -m fuzzingclient -s $dir/fuzzingclient.json" >&2
  start=$(date +%s)
  (cd "$dir" && "$WSTEST" -m fuzzingclient -s "$dir/fuzzingclient.json" >"$dir/wstest.log" 2>&1) || {
    echo "$target: wstest failed; the end of its log:" >&2
    tail -20 "$dir/wstest.log" >&2
    status=1
  }
  took=$(($(date +%s) - start))
  stop_server
  echo "-- $target ($label): wstest took ${took} s; report $dir/report/index.html"
  if [ -f "$dir/report/index.json" ]; then
    "$PY3" "$ROOT/scripts/autobahn_echo.py" --summary "$dir/report" || status=1
  else
    status=1
  fi
  tracebacks=$(grep -c Traceback "$dir/server.log" || true)
  if [ "$tracebacks" -gt 0 ]; then
    echo "   (the echo server logged $tracebacks tracebacks: $dir/server.log)"
  fi
done
echo "all targets: $(($(date +%s) - all_start)) s; exit status $status"
exit $status
