#!/usr/bin/env bash
# The test suite under sanitizers, each in a build directory of its own (clang-16;
# -O1, line tables; Debian's RocksDB, MPI and Python are not instrumented):
#   scripts/sanitize.sh address     ASan + UBSan in build-asan (any finding fails the
#                                   test): every C++ test and the fuzz corpus replays,
#                                   and the Python tests on Debian's torch with the ASan
#                                   runtime preloaded
#   scripts/sanitize.sh thread      TSan in build-tsan: the threaded parts (thread pool,
#                                   async put, assembler, read-once exchange, in-process
#                                   communicators, parallel saves)
#   ... --configure-only            configure, build and run nothing (scripts/fuzz.sh)
# Not under sanitizers: the LibTorch adapter (Debian's LibTorch 1.13 headers do
# not compile with clang 16; its tests run in the normal build), the torch 2.x
# venv's tests and the pip install (same code as the Debian Python tests).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-address}
configure_only=0
[[ "${2:-}" == "--configure-only" ]] && configure_only=1
scripts/deps.sh
flags="-O1 -gline-tables-only -DNDEBUG"
configure=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$flags" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=$flags"
  -DCMAKE_C_COMPILER=clang-16 -DCMAKE_CXX_COMPILER=clang++-16
  -DDCP_WITH_TORCH=OFF -DDCP_BUILD_BENCHMARKS=OFF)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ASAN_SYMBOLIZER_PATH=$(command -v llvm-symbolizer-16 || command -v llvm-symbolizer || true)
export ASAN_SYMBOLIZER_PATH TSAN_SYMBOLIZER_PATH=$ASAN_SYMBOLIZER_PATH
case "$mode" in
  address)
    build_dir=${DCP_ASAN_BUILD_DIR:-build-asan}
    cmake -S . -B "$build_dir" "${configure[@]}" -DDCP_SANITIZE=address,undefined -DDCP_FUZZ=ON > /dev/null
    ((configure_only)) && exit 0
    cmake --build "$build_dir" --parallel "$(nproc)"
    # Leaks are reported (and fail) at exit, except in processes that initialize
    # MPI and in the Python tests (tests/CMakeLists.txt sets detect_leaks=0 there).
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1"
    export LSAN_OPTIONS="suppressions=$PWD/tests/sanitizers/lsan.supp:print_suppressions=0"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    # shellcheck disable=SC2086
    ctest --test-dir "$build_dir" --output-on-failure --parallel "$(nproc)" -LE "slow|torch2" \
      -E "python.pip_install" ${DCP_TEST_ARGS:-}
    ;;
  thread)
    build_dir=${DCP_TSAN_BUILD_DIR:-build-tsan}
    cmake -S . -B "$build_dir" "${configure[@]}" -DDCP_SANITIZE=thread > /dev/null
    ((configure_only)) && exit 0
    targets=(base_test coord_test protocol_test query_test write_test store_test store_parallel_test)
    cmake --build "$build_dir" --parallel "$(nproc)" --target "${targets[@]}"
    export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/sanitizers/tsan.supp"
    regex="^($(IFS='|'; echo "${targets[*]}"))\."
    # shellcheck disable=SC2086
    ctest --test-dir "$build_dir" --output-on-failure --parallel "$(nproc)" -R "$regex" ${DCP_TEST_ARGS:-}
    ;;
  *) echo "usage: scripts/sanitize.sh address|thread [--configure-only]" >&2; exit 2 ;;
esac
