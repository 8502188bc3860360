#!/usr/bin/env bash
# Installs what the test suite needs and a fresh Debian machine lacks: Debian packages by name
# (Node, janus.js, redis-server, nginx, Chromium, Janus and its demos, aiortc, netns tools, nftables,
# kubectl; root or sudo)
# and the npm modules the JavaScript tests load (into tests/js). Does nothing when all is there.
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
# Recordings are checked with Janus's own converter, and forwarded or recorded media decoded.
[ -x /usr/bin/janus-pp-rec ] || missing+=(janus-tools)
# A real Janus runs beside Portunus where a test compares the two live (tests/src/janus_oracle.rs).
[ -x /usr/bin/janus ] || missing+=(janus)
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || missing+=(ffmpeg)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
# jemalloc, the binaries' allocator, is built from C with make.
command -v make >/dev/null 2>&1 || missing+=(make)
# aiortc's Janus client (its janus.py example, run unmodified) for the interop test.
[ -f /usr/share/doc/python3-aiortc/examples/janus/janus.py ] || missing+=(python3-aiortc)
/usr/bin/python3 -c 'import aiohttp' >/dev/null 2>&1 || missing+=(python3-aiohttp)
# The load generator's report draws its plots' text with this font.
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
command -v unshare >/dev/null 2>&1 && command -v ip >/dev/null 2>&1 || missing+=(util-linux iproute2)
# The multi-host tests make links lossy and cut hosts off with nftables.
command -v nft >/dev/null 2>&1 || missing+=(nftables)
# deploy/validate.sh renders the Kustomize layouts (the validators themselves come from PyPI).
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
if [ ${#missing[@]} -gt 0 ]; then
  echo "tests/deps.sh: installing ${missing[*]}"
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
  echo "tests/deps.sh: this Node has no WebSocket; installing the ws package for the janus.js tests"
  npm install --silent --no-save --prefix tests/js ws@8
fi

# The browser tests drive Chromium with playwright-core (the npm package, not its browser
# download: they use Debian's /usr/bin/chromium).
if [ ! -d tests/js/node_modules/playwright-core ]; then
  echo "tests/deps.sh: installing playwright-core for the browser tests"
  npm install --silent --no-save --prefix tests/js playwright-core@1
fi
