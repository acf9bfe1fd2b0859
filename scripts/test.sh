#!/usr/bin/env bash
# The whole test suite: installs missing packages, builds, runs every test
# (unit, end-to-end, and multi-process under mpirun) with ctest.
#   scripts/test.sh                 everything except tests labelled `slow`
#   DCP_TEST_ARGS="-L mpi" scripts/test.sh    a subset (any ctest arguments)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
build_dir=${DCP_BUILD_DIR:-build}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# shellcheck disable=SC2086
ctest --test-dir "$build_dir" --output-on-failure --parallel "$(nproc)" -LE slow ${DCP_TEST_ARGS:-}
