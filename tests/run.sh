#!/usr/bin/env bash
# Runs the whole Portunus test suite on a fresh machine: installs what is missing
# (tests/deps.sh: Debian packages and npm modules; needs root or sudo; the browser tests also need
# root for their network namespace), then runs `cargo test` for the whole workspace. Tests
# start their own redis-server on free ports.
# Extra arguments go to `cargo test` (e.g. `tests/run.sh -- --nocapture`).
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/deps.sh

command -v cargo >/dev/null 2>&1 || { echo "tests/run.sh: cargo not found (install Rust with rustup)"; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
# Every feature works in both modes: the behaviour suites again, each server now a cluster
# (its own redis-server, a media node and a gateway over Redis).
echo "== the same behaviour suites in cluster mode (PORTUNUS_TEST_BACKEND=redis) =="
PORTUNUS_TEST_BACKEND=redis cargo test -p portunus-tests --locked --no-fail-fast \
  --test conformance --test websocket --test http --test reaping --test videoroom --test robustness --test janus_js --test media --test simulcast --test data_channels --test repair --test auth --test admin --test admin_janus --test security --test admin_pages --test forwarders --test recording --test multitrack --test talking --test remote_publishers --test codecs --test extensions --test svc --test svc_janus --test string_ids --test subscriber_options --test room_requests_janus --test tuning --test single_port --test workers --test engine_allocations --test gso --test long_stream \
  "$@" 2>&1 | tee -a "$log" || status=$?
# Media through one UDP port per server (`media_port`): the media suites again.
echo "== the media suites on one UDP port (PORTUNUS_TEST_SINGLE_PORT=1) =="
PORTUNUS_TEST_SINGLE_PORT=1 cargo test -p portunus-tests --locked --no-fail-fast \
  --test media --test simulcast --test data_channels --test repair --test multitrack --test extensions --test svc --test forwarders --test workers --test engine_allocations --test gso --test long_stream \
  "$@" 2>&1 | tee -a "$log" || status=$?
# A cluster's gateway builds without the media stack, and then links none of it.
echo "== the gateway without standalone mode (cargo check -p gateway --no-default-features) =="
{ cargo check -p gateway --no-default-features --locked \
  && ! cargo tree -p gateway --no-default-features --edges normal --prefix none --locked | grep -E '^(webrtc|media-node|rtc) '; } \
  2>&1 | tee -a "$log" || { echo "the media-less gateway build failed or links the media stack"; status=1; }
# Every fuzz target, a few seconds each (its committed corpus replayed first): a crash fails the run.
echo "== fuzz smoke (tests/fuzz/run.sh) =="
bash tests/fuzz/run.sh 5 2>&1 | tee -a "$log" || status=$?
# One closing line with the totals of every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "portunus: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
