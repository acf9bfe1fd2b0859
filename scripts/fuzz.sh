#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-16, ASan + UBSan) in build-asan and runs
# each on its corpus (tests/fuzz/corpus/<target>).
#   scripts/fuzz.sh [seconds per target]     default 30 (CI); e.g. 3600 for a long run
#   scripts/fuzz.sh --runs N                 N executions per target (the long run: 10000000)
#   DCP_FUZZ_PARALLEL=K                      targets run at once (default: one per core)
#   DCP_FUZZ_TARGETS="wire exchange"         only these targets
#   scripts/fuzz.sh --make-corpus            regenerates the seed corpus from real stores
# New inputs that grow coverage go to build-asan/corpus/<target> (not the repo's
# seeds); a crash leaves crash-* in build-asan/findings/<target>: fix it, then
# copy the input to tests/fuzz/regressions/<target>/ (ctest fuzz.<target>
# replays it in every build). Prints executions and coverage per target.
set -euo pipefail
cd "$(dirname "$0")/.."
# The ASan + UBSan build of scripts/sanitize.sh (it has -DDCP_FUZZ=ON).
scripts/sanitize.sh address --configure-only
build_dir=${DCP_ASAN_BUILD_DIR:-build-asan}
if [[ "${1:-}" == "--make-corpus" ]]; then
  cmake --build "$build_dir" --target make_corpus --parallel "$(nproc)"
  rm -rf tests/fuzz/corpus
  "$build_dir/tests/fuzz/make_corpus" tests/fuzz/corpus
  exit 0
fi
limit=(-max_total_time="${1:-30}")
if [[ "${1:-}" == "--runs" ]]; then limit=(-runs="${2:?--runs needs a count}"); fi
parallel=${DCP_FUZZ_PARALLEL:-$(nproc)}
cmake --build "$build_dir" --target fuzzers --parallel "$(nproc)"
# shellcheck disable=SC2206
targets=(${DCP_FUZZ_TARGETS:-manifest common_state chunk_record exchange key_layout region wire safetensors})
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ASAN_SYMBOLIZER_PATH=$(command -v llvm-symbolizer-16 || command -v llvm-symbolizer || true)
export ASAN_SYMBOLIZER_PATH
status=0
run_one() {
  local t=$1 work="$build_dir/corpus/$t" findings="$build_dir/findings/$t"
  mkdir -p "$work" "$findings"
  local start=$SECONDS
  # -rss_limit_mb bounds what one input may allocate; -timeout flags a hang.
  if "$build_dir/tests/fuzz/${t}_fuzz" "$work" "tests/fuzz/corpus/$t" "${limit[@]}" \
       -rss_limit_mb=2048 -timeout=10 -artifact_prefix="$findings/" -print_final_stats=1 \
       > "$findings/log" 2>&1; then
    echo "fuzz $t: $(grep -E '^stat::number_of_executed_units' "$findings/log" | awk '{print $2}') executions in $((SECONDS - start)) s," \
         "coverage $(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$findings/log" | tail -1)"
  else
    echo "fuzz $t: FAILED (see $findings/log)"; tail -40 "$findings/log"; return 1
  fi
}
# One target per core unless DCP_FUZZ_PARALLEL says otherwise.
pids=()
for t in "${targets[@]}"; do
  run_one "$t" & pids+=($!)
  if (( ${#pids[@]} >= parallel )); then wait "${pids[0]}" || status=1; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
