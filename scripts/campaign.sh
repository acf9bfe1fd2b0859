#!/usr/bin/env bash
# The long corruption campaign (tests/corruption/campaign.cc): damages a saved
# store TRIALS times over every kind of file (flips, truncations, deletions,
# whole rank stores) and checks what loads, puts and garbage collection make
# of it. Prints a table by file kind and fault; exits 1 on any crash, hang,
# wrong data, destroyed data, unloadable put or refused put. CI runs 60 trials.
#   scripts/campaign.sh [TRIALS] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh >/dev/null
build_dir=${DCP_BUILD_DIR:-build}
exec "$build_dir/tests/corruption/corruption_campaign" run --trials "${1:-1000}" --seed "${2:-$(date +%s)}"
