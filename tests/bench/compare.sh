#!/usr/bin/env bash
# Portunus standalone, Portunus cluster and Janus 1.1.2 side by side, on this machine, in one run
# (see BENCHMARKS.md). Each server is pinned to CPU 0 and the load generator to CPU 1; the load
# generator reads each server's CPU time and memory from /proc. Everything runs inside a private
# network namespace (tests/tools/netns-run): Janus gathers no ICE candidates on loopback
# interfaces, so all peers use 127.0.0.2 there. Needs root.
#
#   tests/bench/compare.sh [OUT_DIR]        (default tests/bench/results/<date>)
#
# OUT_DIR gets each run's JSON, results.md and the plots; server and load generator output goes
# to OUT_DIR/logs.
#
# Environment: SERVERS (default "portunus-standalone portunus-cluster janus"), SCENARIOS (default
# "signaling rooms fanout"; also "forward": forwarders and recording, and "throughput": the fanout
# with the publisher at 400 video packets/s, THROUGHPUT_STEPS subscribers (default 300,450), for
# the forwarded packets per second one core sustains, in OUT_DIR/throughput), FANOUT_STEPS (default
# 10,25,50,100,150,200,300), FORWARD_STEPS (default 4,16,32), DURATION (seconds per measurement, default 10), ROOMS (default
# 10), CLIENTS (signaling, default 8), SERVER_CPU / LOAD_CPU (default 0 / 1), BIN_DIR (the
# release binaries to run, built beforehand: two builds compared run after run; default: build
# and run target/release).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
netns_run=${NETNS_RUN:-$root/tests/tools/netns-run}

if [ -z "${PORTUNUS_BENCH_INSIDE:-}" ]; then
    out=${1:-tests/bench/results/$(date -u +%Y%m%d-%H%M%S)}
    mkdir -p "$out/logs"
    out=$(cd "$out" && pwd)
    missing=()
    command -v janus >/dev/null 2>&1 || missing+=(janus)
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
    command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
    [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
    if [ ${#missing[@]} -gt 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    if [ -z "${BIN_DIR:-}" ]; then
        cargo build --release --locked -p gateway -p media-node -p portunus-tests --bin portunus-gateway \
            --bin portunus-media-node --bin portunus-loadgen
    fi
    PORTUNUS_BENCH_INSIDE=1 exec "$netns_run" -- "$0" "$out"
fi

out=$1
bin=${BIN_DIR:-$root/target/release}
SERVERS=${SERVERS:-portunus-standalone portunus-cluster janus}
FANOUT_STEPS=${FANOUT_STEPS:-10,25,50,100,150,200,300}
DURATION=${DURATION:-10}
ROOMS=${ROOMS:-10}
CLIENTS=${CLIENTS:-8}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
ICE_IP=127.0.0.2
work=$(mktemp -d)
# cleanup (the servers this script started, by PID), wait_port.
. "$root/tests/bench/lib.sh"
trap 'cleanup; rm -rf "$work"' EXIT

port_free() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null || return 0
        sleep 0.1
    done
    echo "compare.sh: port $1 is still taken" >&2
    return 1
}


# (taskset, not a shell function: a function in the background is a subshell and $! its PID.)

# Portunus settings shared by both modes: media on the namespace's 127.0.0.2.
export PORTUNUS_BIND=127.0.0.1 PORTUNUS_WS_PORT=8188 PORTUNUS_HTTP_PORT=8088 PORTUNUS_ADMIN_PORT=7088 \
    PORTUNUS_MEDIA_IPS=$ICE_IP PORTUNUS_LOG=warn PORTUNUS_WORKERS=1 PORTUNUS_MAX_HANDLES_PER_SESSION=100 \
    PORTUNUS_RATE_LIMIT_PER_CONNECTION=0

start_portunus_standalone() {
    taskset -c "$SERVER_CPU" "$bin/portunus-gateway" >"$out/logs/$1.log" 2>&1 &
    pids+=($!)
    server_pids=("$!")
    wait_port 8188
}

start_portunus_cluster() {
    taskset -c "$SERVER_CPU" redis-server --port 6390 --bind 127.0.0.1 --save '' --appendonly no >"$out/logs/$1-redis.log" 2>&1 &
    pids+=($!)
    local redis=$!
    wait_port 6390
    PORTUNUS_REDIS_URL=redis://127.0.0.1:6390/ PORTUNUS_NODE_ID=node-1 PORTUNUS_ADMIN_PORT=7089 \
        taskset -c "$SERVER_CPU" "$bin/portunus-media-node" >"$out/logs/$1-node.log" 2>&1 &
    pids+=($!)
    local node=$!
    PORTUNUS_REDIS_URL=redis://127.0.0.1:6390/ taskset -c "$SERVER_CPU" "$bin/portunus-gateway" >"$out/logs/$1.log" 2>&1 &
    pids+=($!)
    server_pids=("$!" "$node" "$redis")
    wait_port 8188
    # The gateway places rooms only on registered nodes.
    for _ in $(seq 50); do
        curl -sf http://127.0.0.1:7088/readyz >/dev/null && break
        sleep 0.1
    done
}

start_janus() {
    local conf=$work/janus
    janus_conf "$conf"
    taskset -c "$SERVER_CPU" janus -C "$conf/janus.jcfg" -F "$conf" -o >"$out/logs/$1.log" 2>&1 &
    pids+=($!)
    server_pids=("$!")
    wait_port 8188
}

# loadgen SCENARIO LABEL ARGS...: its JSON into $results (default $out).
loadgen() {
    local scenario=$1 label=$2 dir=${results:-$out}
    shift 2
    local pid_args=()
    for p in "${server_pids[@]}"; do pid_args+=(--server-pid "$p"); done
    taskset -c "$LOAD_CPU" "$bin/portunus-loadgen" "$scenario" --ws ws://127.0.0.1:8188/ --bind "$ICE_IP" \
        --label "$label" --duration "$DURATION" --json "$dir/$label-$scenario.json" "${pid_args[@]}" "$@" \
        >"$dir/logs/$label-$scenario.out" || echo "compare.sh: $label $scenario failed (see $dir/logs/$label-$scenario.out)" >&2
}

for server in $SERVERS; do
    # A fresh server per scenario: no scenario pays for the previous one's leftovers.
    for scenario in ${SCENARIOS:-signaling rooms fanout}; do
        echo "== $server: $scenario"
        port_free 8188
        "start_${server//-/_}" "$server-$scenario"
        case $scenario in
            signaling) loadgen signaling "$server" --clients "$CLIENTS" ;;
            rooms) loadgen rooms "$server" --rooms "$ROOMS" ;;
            fanout) loadgen fanout "$server" --subscribers "$FANOUT_STEPS" ;;
            # A fanout too: its results and report go to a folder of their own.
            throughput)
                mkdir -p "$out/throughput/logs"
                results=$out/throughput loadgen fanout "$server" --subscribers "${THROUGHPUT_STEPS:-300,450}" --video-pps 400 ;;
            forward)
                mkdir -p "$out/recordings"
                loadgen forward "$server" --forwarders "${FORWARD_STEPS:-4,16,32}" --video-pps 1000 --rec-dir "$out/recordings" ;;
        esac
        cleanup
    done
done

for dir in "$out" "$out/throughput"; do
    if compgen -G "$dir/*.json" >/dev/null; then
        "$bin/portunus-loadgen" report --out "$dir" --baseline janus "$dir"/*.json
    fi
done
echo "compare.sh: results in $out (results.md, fanout-*.png)"
