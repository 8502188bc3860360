#!/usr/bin/env bash
# Join -> first decoded frame with real browsers, Portunus and Janus 1.1.2 side by side: two
# headless Chromium run the official VideoRoom demo (Debian janus-demos, official janus.js) over
# WebSocket against each server in turn, RUNS times each; each page reports how long after its
# subscriber `join` its first remote frame was decoded (tests/js/videoroom_demo.js). Inside a
# private network namespace (tests/tools/netns-run): Chromium and Janus gather no ICE
# candidates on loopback interfaces, so everything uses 127.0.0.2. Needs root.
#
#   tests/bench/first_frame.sh            (RUNS=5 by default; SERVERS="portunus janus")
#
# Prints one line per page and a summary (median, 90th percentile, min, max per server) of
# the first decoded frame and of the second (when the picture moves).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
netns_run=${NETNS_RUN:-$root/tests/tools/netns-run}

if [ -z "${PORTUNUS_BENCH_INSIDE:-}" ]; then
    bash tests/deps.sh
    command -v janus >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq janus >/dev/null; }
    cargo build --release --locked -p gateway --bin portunus-gateway
    PORTUNUS_BENCH_INSIDE=1 exec "$netns_run" -- "$0"
fi

RUNS=${RUNS:-5}
SERVERS=${SERVERS:-portunus janus}
work=$(mktemp -d)
# cleanup (the servers this script started, by PID), wait_port.
. "$root/tests/bench/lib.sh"
trap 'cleanup; rm -rf "$work"' EXIT INT TERM

# The demos, with settings.js pointing at the server's WebSocket.
site=$work/demos
mkdir -p "$site"
for f in /usr/share/janus/demos/*; do [ "$(basename "$f")" = settings.js ] || ln -s "$f" "$site/"; done
printf 'var server = "ws://" + window.location.hostname + ":8188";\nvar iceServers = null;\nvar token = null;\nvar apisecret = null;\n' >"$site/settings.js"
python3 -m http.server 8000 --bind 127.0.0.1 --directory "$site" >"$work/http.log" 2>&1 &
httpd=$!

start_portunus() {
    printf 'bind = "127.0.0.1"\nmedia_ips = ["127.0.0.2"]\nlog = "warn"\n' >"$work/portunus.toml"
    "$root/target/release/portunus-gateway" --config "$work/portunus.toml" >"$work/portunus.log" 2>&1 &
    pids+=($!)
}

start_janus() {
    local conf=$work/janus
    # Janus's sample demo room, as Portunus ships it.
    janus_conf "$conf" 'room-1234: {
    description = "Demo Room"
    secret = "adminpwd"
    publishers = 6
    bitrate = 128000
    fir_freq = 10
    audiocodec = "opus"
    videocodec = "vp8"
}
'
    janus -C "$conf/janus.jcfg" -F "$conf" -o >"$work/janus.log" 2>&1 &
    pids+=($!)
}

results=$work/results
: >"$results"
for server in $SERVERS; do
    for run in $(seq "$RUNS"); do
        "start_$server"
        wait_port 8188 || { echo "first_frame.sh: $server did not start" >&2; exit 1; }
        out=$(timeout 100 node "$root/tests/js/videoroom_demo.js" http://127.0.0.1:8000/videoroomtest.html \
            "$root/tests/js/node_modules/playwright-core" /usr/bin/chromium 2>/dev/null | sed -n 's/^RESULT //p')
        cleanup
        node -e '
            const r = JSON.parse(process.argv[1] || "{}");
            for (const p of r.peers || []) console.log(process.argv[2], p.joinToFirstFrameMs, JSON.stringify(p.breakdown));
        ' "$out" "$server" | tee -a "$results"
    done
done
kill "$httpd" 2>/dev/null || true
# Median, 90th percentile, min and max of the numbers on standard input.
summary() {
    sort -n | awk -v s="$1" '
        { v[NR] = $1 } END { if (NR) printf "%-9s median %d  p90 %d  min %d  max %d  (n=%d)\n", s, v[int((NR + 1) / 2)], v[int((NR * 9 + 9) / 10)], v[1], v[NR], NR }'
}
echo "== join -> first decoded frame (ms), $RUNS runs x 2 pages per server"
for server in $SERVERS; do
    grep "^$server " "$results" | awk '{print $2}' | summary "$server"
done
echo "== join -> second decoded frame (ms): when the picture moves"
for server in $SERVERS; do
    grep "^$server " "$results" | sed -n 's/.*"secondDecoded":\([0-9]*\).*/\1/p' | summary "$server"
done
