#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer's coverage instrumentation and runs each for a while.
#
#   tests/fuzz/run.sh [seconds per target] [target ...]     (default: 5 s, every target)
#
# Stable Rust is enough: the sanitizer-coverage options are stable codegen flags (no address
# sanitizer; overflow checks stay on, and a panic is a crash: "panic means bug"). The committed
# corpus (tests/fuzz/corpus/<target>) seeds each run read-only; what a run finds goes to
# target/fuzz/corpus/<target>, crashes to target/fuzz/artifacts/<target>/. A crash fails the run.
# FUZZ_RUNS=N stops each target after N inputs instead (within the time given); FUZZ_MERGE=1
# folds what the run found into the committed corpus (libFuzzer's -merge keeps only inputs that
# add coverage): FUZZ_RUNS=10000000 FUZZ_MERGE=1 tests/fuzz/run.sh 3600.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-5}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(janus_request videoroom_request admin_request signed_token sdp rtp rtcp)
out=${CARGO_TARGET_DIR:-target}/fuzz
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# An explicit --target keeps the flags off build scripts and proc macros (which run on the host).
host=$(rustc -vV | sed -n 's/^host: //p')
cargo build --release --locked --manifest-path tests/fuzz/Cargo.toml --target-dir "$out" --target "$host" --bins
bin="$out/$host/release"
status=0
for t in "${targets[@]}"; do
  mkdir -p "$out/corpus/$t" "$out/artifacts/$t"
  echo "== fuzz $t for ${seconds}s"
  "$bin/$t" "$out/corpus/$t" "tests/fuzz/corpus/$t" -max_total_time="$seconds" -rss_limit_mb=2048 \
    -timeout=10 ${FUZZ_RUNS:+-runs=$FUZZ_RUNS} -print_final_stats=1 -artifact_prefix="$out/artifacts/$t/" 2>&1 \
    | grep -E "^(stat::number_of_executed_units|stat::new_units_added|==|SUMMARY|.*panicked|Done)" || true
  if ls "$out/artifacts/$t"/crash-* "$out/artifacts/$t"/timeout-* "$out/artifacts/$t"/oom-* >/dev/null 2>&1; then
    echo "fuzz $t: FAILED, inputs in $out/artifacts/$t/"
    status=1
  fi
  if [ -n "${FUZZ_MERGE:-}" ]; then
    mkdir -p "tests/fuzz/corpus/$t"
    "$bin/$t" -merge=1 "tests/fuzz/corpus/$t" "$out/corpus/$t" >/dev/null 2>&1
  fi
done
exit "$status"
