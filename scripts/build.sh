#!/usr/bin/env bash
# Installs missing packages, then configures (Ninja, Release) and builds dcp in
# ${DCP_BUILD_DIR:-build}. Extra arguments go to cmake's configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
build_dir=${DCP_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$build_dir" --parallel "$(nproc)"
