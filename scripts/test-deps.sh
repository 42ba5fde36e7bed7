#!/usr/bin/env bash
# System packages the test suite drives for real: redis-server (started by tests on
# free ports) and chromium (the browser tests launch /usr/bin/chromium through
# Playwright; no browser is ever downloaded) and nginx (tests/deploy runs
# deploy/nginx/hubbub.conf for real). Installed only when missing; needs
# root (as on CI) or sudo.
set -euo pipefail
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
{ command -v nginx || test -x /usr/sbin/nginx; } >/dev/null 2>&1 || missing+=(nginx)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
# The real Centrifugo JS SDK for tests/centrifugo (Node 20 + ws), from the committed
# package-lock.json; node_modules is git-ignored. The Python SDK comes with '.[dev]'.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm
fi
if [ ! -d tests/centrifugo/node/node_modules/centrifuge ]; then
  (cd tests/centrifugo/node && npm ci --no-audit --no-fund --ignore-scripts)
fi
