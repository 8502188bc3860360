#!/usr/bin/env bash
# The soak: a standalone Portunus (release build) while rooms open and close for SECONDS (default
# 1800), its resident memory, file descriptors and live tasks sampled every 10 s; prints the
# samples and writes them to OUT (default soak.json). tests/tests/soak.rs is the one-minute
# version CI runs (and fails on growth).
#
#   tests/bench/soak.sh [SECONDS] [OUT]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-1800}
out=${2:-soak.json}
cargo build --release --locked -p gateway -p portunus-tests --bin portunus-gateway --bin portunus-loadgen >&2
bin=target/release
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ws=$(port); http=$(port); admin=$(port)
PORTUNUS_MEDIA_IPS=127.0.0.1 PORTUNUS_RATE_LIMIT_PER_CONNECTION=0 PORTUNUS_LOG=warn \
  "$bin/portunus-gateway" --bind 127.0.0.1 --ws-port "$ws" --http-port "$http" --admin-port "$admin" &
server=$!
trap 'kill "$server" 2>/dev/null' EXIT INT TERM
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$ws") 2>/dev/null && break; sleep 0.1; done
"$bin/portunus-loadgen" soak --ws "ws://127.0.0.1:$ws/" --duration "$seconds" --server-pid "$server" \
  --metrics "http://127.0.0.1:$admin/metrics" --rooms 3 --subscribers-per-room 3 --json "$out" >/dev/null
python3 - "$out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["result"]
print(f"cycles {r['cycles']}, failed {r['failed_cycles']}")
print(f"the room open all along: {r['long_room']}")
print("t_s rss_mib fds tasks")
for s in r["samples"]:
    print(s["t"], round(s["rss_bytes"] / 2**20, 1), s["fds"], s["tasks"])
PY
