#!/usr/bin/env bash
# The sans-IO `rtc` core's cost per forwarded packet (tests/src/bin/rtc-cost.rs), for several
# subscriber counts, without sending, with one sendto per datagram and with sendmmsg per burst,
# and the same legs through webrtc-rs's async layer (the media node's path today).
# The measuring thread on CPU 0, the sink's reader on CPU 1 (see BENCHMARKS.md).
#
#   tests/bench/rtc_cost.sh [OUT_DIR]     (default tests/bench/results/<date>-rtc-cost)
#
# Environment: STEPS (default "25 100 300"), PACKETS (per subscriber, default 4000), ROUNDS (2).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-tests/bench/results/$(date -u +%Y%m%d-%H%M%S)-rtc-cost}
mkdir -p "$out"
cargo build --release --locked -p portunus-tests --bin portunus-rtc-cost
for round in $(seq "${ROUNDS:-2}"); do
    for k in ${STEPS:-25 100 300}; do
        for send in none sendto mmsg; do
            taskset -c 0,1 target/release/portunus-rtc-cost --subscribers "$k" --packets "${PACKETS:-4000}" \
                --send "$send" --json "$out/k$k-$send-$round.json" >/dev/null
        done
        taskset -c 0,1 target/release/portunus-rtc-cost --stack async --subscribers "$k" \
            --packets "${PACKETS:-4000}" --json "$out/k$k-async-$round.json" >/dev/null
    done
done
python3 - "$out" <<'PY'
import json, sys, glob, collections
rows = collections.defaultdict(list)
for f in sorted(glob.glob(sys.argv[1] + "/k*.json")):
    v = json.load(open(f))
    path = "webrtc-rs async" if v.get("stack") == "async" else "rtc, " + v["send"]
    rows[(v["subscribers"], path)].append(v)
order = ["rtc, none", "rtc, sendto", "rtc, mmsg", "webrtc-rs async"]
lines = ["| subscribers | path | CPU-µs per forwarded packet (each round) | allocations per packet | received / checked |",
         "|---:|---|---|---:|---|"]
for (k, send), vs in sorted(rows.items(), key=lambda kv: (kv[0][0], order.index(kv[0][1]))):
    us = " / ".join(f'{v["cpu_us_per_forwarded_packet"]:.2f}' for v in vs)
    got = " ".join(f'{v["received"]}/{v["checked"]}' for v in vs)
    lines.append(f'| {k} | {send} | {us} | {vs[0]["allocations_per_forwarded_packet"]} | {got} |')
open(sys.argv[1] + "/results.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
