#!/usr/bin/env bash
# Runs the whole Portunus test suite on a fresh machine: installs what is missing (Debian
# packages by name: Node, janus.js, redis-server, nginx, Chromium, the Janus demos; needs root
# or sudo; the browser tests also need root for their network namespace), then runs `cargo test`
# for the whole workspace. Tests start their own redis-server on free ports.
# Extra arguments go to `cargo test` (e.g. `tests/run.sh -- --nocapture`).
set -euo pipefail
cd "$(dirname "$0")/.."

JANUS_JS=/usr/share/javascript/janus-gateway/janus.js
missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
[ -f "$JANUS_JS" ] || missing+=(libjs-janus-gateway)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || missing+=(nginx)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -f /usr/share/janus/demos/videoroomtest.html ] || missing+=(janus-demos)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v unshare >/dev/null 2>&1 && command -v ip >/dev/null 2>&1 || missing+=(util-linux iproute2)
if [ ${#missing[@]} -gt 0 ]; then
  echo "tests/run.sh: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# janus.js needs a WebSocket class under Node: Node >= 22 has one, Node 20 behind a flag;
# older Nodes get the `ws` package from the npm registry.
if ! node -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)' 2>/dev/null \
   && ! node --experimental-websocket -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)' 2>/dev/null \
   && [ ! -d tests/js/node_modules/ws ]; then
  echo "tests/run.sh: this Node has no WebSocket; installing the ws package for the janus.js tests"
  npm install --silent --no-save --prefix tests/js ws@8
fi

# The browser tests drive Chromium with playwright-core (the npm package, not its browser
# download: they use Debian's /usr/bin/chromium).
if [ ! -d tests/js/node_modules/playwright-core ]; then
  echo "tests/run.sh: installing playwright-core for the browser tests"
  npm install --silent --no-save --prefix tests/js playwright-core@1
fi

command -v cargo >/dev/null 2>&1 || { echo "tests/run.sh: cargo not found (install Rust with rustup)"; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
# Every feature works in both modes: the behaviour suites again, each server now a cluster
# (its own redis-server, a media node and a gateway over Redis).
echo "== the same behaviour suites in cluster mode (PORTUNUS_TEST_BACKEND=redis) =="
PORTUNUS_TEST_BACKEND=redis cargo test -p portunus-tests --locked --no-fail-fast \
  --test conformance --test websocket --test http --test reaping --test videoroom --test robustness --test janus_js --test media \
  "$@" 2>&1 | tee -a "$log" || status=$?
# One closing line with the totals of every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "portunus: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
