#!/usr/bin/env bash
# The soak: Portunus (release build) while rooms open and close for SECONDS (default 1800), its
# resident memory, file descriptors and live tasks sampled every 10 s, one more room open all
# along counting its subscriber's losses; prints the samples and writes them to OUT (default
# soak.json). Standalone by default; CLUSTER=1 runs a cluster instead (redis-server, one media
# node, one gateway; the three processes' memory and descriptors summed, the node's tasks).
# tests/tests/soak.rs is the one-minute version CI runs (and fails on growth).
#
#   [CLUSTER=1] tests/bench/soak.sh [SECONDS] [OUT]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-1800}
out=${2:-soak.json}
cargo build --release --locked -p gateway -p media-node -p portunus-tests --bin portunus-gateway \
    --bin portunus-media-node --bin portunus-loadgen >&2
bin=target/release
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ws=$(port); http=$(port); admin=$(port)
# pids, cleanup (the servers this script started, by PID), wait_port.
. tests/bench/lib.sh
trap cleanup EXIT INT TERM
export PORTUNUS_MEDIA_IPS=127.0.0.1 PORTUNUS_RATE_LIMIT_PER_CONNECTION=0 PORTUNUS_LOG=warn
metrics="http://127.0.0.1:$admin/metrics"
if [ -n "${CLUSTER:-}" ]; then
    redis=$(port); node_admin=$(port)
    redis-server --port "$redis" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
    pids+=($!)
    wait_port "$redis"
    export PORTUNUS_REDIS_URL="redis://127.0.0.1:$redis/"
    PORTUNUS_NODE_ID=soak-node PORTUNUS_BIND=127.0.0.1 PORTUNUS_ADMIN_PORT=$node_admin "$bin/portunus-media-node" &
    pids+=($!)
    metrics="http://127.0.0.1:$node_admin/metrics"
fi
"$bin/portunus-gateway" --bind 127.0.0.1 --ws-port "$ws" --http-port "$http" --admin-port "$admin" &
pids+=($!)
wait_port "$ws"
# A gateway places rooms only on registered nodes.
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$admin/readyz" >/dev/null && break; sleep 0.1; done
pid_args=()
for p in "${pids[@]}"; do pid_args+=(--server-pid "$p"); done
"$bin/portunus-loadgen" soak --ws "ws://127.0.0.1:$ws/" --duration "$seconds" "${pid_args[@]}" \
  --metrics "$metrics" --rooms 3 --subscribers-per-room 3 --json "$out" >/dev/null
python3 - "$out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["result"]
print(f"cycles {r['cycles']}, failed {r['failed_cycles']}")
print(f"the room open all along: {r['long_room']}")
print("t_s rss_mib fds tasks")
for s in r["samples"]:
    print(s["t"], round(s["rss_bytes"] / 2**20, 1), s["fds"], s["tasks"])
PY
