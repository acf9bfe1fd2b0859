#!/usr/bin/env bash
# The whole test suite: installs missing packages, builds, runs every test
# (unit, end-to-end, multi-process under mpirun, and the Python package's tests
# on Debian's torch 1.13 and on PyPI's torch 2.x in the venv of scripts/venv.sh)
# with ctest; then the same suite under ASan + UBSan and its threaded parts
# under TSan (scripts/sanitize.sh), and each fuzz target for 30 s on its corpus
# (scripts/fuzz.sh).
#   scripts/test.sh                 everything except tests labelled `slow`
#   DCP_TEST_ARGS="-L mpi" scripts/test.sh    a subset (any ctest arguments;
#                                   the sanitizer runs take them too)
#   DCP_SANITIZERS=0 scripts/test.sh          without the sanitizer and fuzz runs
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
build_dir=${DCP_BUILD_DIR:-build}
# What users run (PyPI's torch 2.x) for the python_torch2 tests: made once, reused.
venv=$(scripts/venv.sh)
cmake -S . -B "$build_dir" -DDCP_TORCH2_PYTHON="$venv/bin/python" > /dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# shellcheck disable=SC2086
ctest --test-dir "$build_dir" --output-on-failure --parallel "$(nproc)" -LE slow ${DCP_TEST_ARGS:-}
if [[ "${DCP_SANITIZERS:-1}" != "0" ]]; then
  scripts/sanitize.sh address
  scripts/sanitize.sh thread
  scripts/fuzz.sh "${DCP_FUZZ_SECONDS:-30}"
fi
