#!/usr/bin/env bash
# Runs the benchmark suite and prints one results table (Markdown) plus a
# machine-readable file. Installs missing packages and builds first, like the
# other scripts. Every figure is a ratio against a limit measured in the same
# run (these machines are shared and noisy); see README "Measured".
#   scripts/bench.sh                   results in ${DCP_BENCH_OUT:-build/bench-results}
#   DCP_BENCH_ROOT=/fast/disk scripts/bench.sh   where the benchmarks write
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
build_dir=${DCP_BUILD_DIR:-build}
out=${DCP_BENCH_OUT:-$build_dir/bench-results}
scratch=${DCP_BENCH_ROOT:-/tmp/dcp-bench}
bin=$build_dir/bench
mpirun=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
# 2.19 GiB of GPT-like state (bf16 weights, fp32 Adam moments and master weights).
big=(--hidden 1024 --layers 8 --ffn 4096 --vocab 32768)
rm -rf "$out" && mkdir -p "$out"
# On a VM whose balloon reports free pages to the host (virtio-balloon free
# page reporting, as on our Firecracker VMs), memory freed more than about 2 s
# earlier is handed back, and every page the kernel takes again (a cold read's
# page cache, a save's dirty pages) faults through the host: 1 GiB read cold
# by 4 ranks took 0.6-1.9 s on that alone. For the run, no page is reported (an
# order above the largest); the setting is put back at the end. See
# bench/python/bench_common.py, hold_free_pages.
knob=/sys/module/page_reporting/parameters/page_reporting_order
if [[ -w $knob ]] && old_order=$(cat "$knob") && echo 11 >"$knob" 2>/dev/null; then
  trap 'echo "$old_order" >"$knob"' EXIT
  echo "free page reporting held for the run (page_reporting_order $old_order -> 11)"
fi

results=()
run() {  # run NAME COMMAND...: the command writes $out/NAME.json; a failure is reported, not fatal
  local name=$1
  shift
  results+=("$out/$name.json")
  echo "== $name: $*"
  if ! "$@" --json "$out/$name.json"; then
    echo "!! $name failed" >&2
    rm -f "$out/$name.json"
  fi
}

run save_load "${mpirun[@]}" -np 4 "$bin/save_load_bench" --root "$scratch/save_load" "${big[@]}"
# Fully parallel save and read-once load matter with data-parallel replicas:
# the demo's model (scripts/demo.sh) at TP2xPP1xDP2, per-rank byte balance.
run save_load_dp2 "${mpirun[@]}" -np 4 "$bin/save_load_bench" --root "$scratch/save_load_dp2" --tp 2 --pp 1 --dp 2 \
  --hidden 512 --layers 8 --vocab 8192 --ffn 2048
run legacy "${mpirun[@]}" -np 4 "$bin/legacy_bench" --root "$scratch/legacy" "${big[@]}"
run incremental "${mpirun[@]}" -np 4 "$bin/incremental_bench" --root "$scratch/incremental"
run memory "${mpirun[@]}" -np 4 "$bin/memory_bench" --root "$scratch/memory"
# Issue 13's table: save / load / resharded load by record size (16 KiB .. one large tensor) vs raw I/O.
run records "${mpirun[@]}" -np 4 "$bin/records_bench" --root "$scratch/records"
run async "${mpirun[@]}" -np 4 "$bin/async_bench" --root "$scratch/async"
run codec "$bin/codec_bench"
# dcp-import of a 2 GiB sharded safetensors model vs raw read + write+fsync; peak RSS.
run import "$bin/import_bench" --root "$scratch/import"
# Put/get metadata per rank at 1k/4k/16k simulated ranks, 1,000 tensors, no data (~15 s, 0.6 GiB).
run planner "$bin/planner_bench"
[[ -x $bin/torch_bench ]] && run torch_adapter "$bin/torch_bench" --root "$scratch/torch"
if [[ -x $bin/cuda_bench ]] && nvidia-smi -L >/dev/null 2>&1; then
  run cuda "$bin/cuda_bench" --root "$scratch/cuda"
fi
# The Python package against PyTorch's checkpointing (Debian's torch 1.13), and
# the GIL cost of a background put_async; its own output and JSON.
if [[ -f "$build_dir/python/dcp/__init__.py" ]]; then
  echo "== python"
  /usr/bin/python3 bench/python/python_bench.py --root "$scratch/python" --json "$out/python.json" ||
    echo "!! python failed" >&2
  # dcp inside torch.distributed.checkpoint against DCP's FileSystemWriter, on
  # PyPI's torch 2.x (the venv of scripts/venv.sh), with async_save blocking times.
  echo "== torch_dcp"
  venv=$(scripts/venv.sh)
  "$venv/bin/python" bench/python/torch_dcp_bench.py --root "$scratch/torch_dcp" --json "$out/torch_dcp.json" ||
    echo "!! torch_dcp failed" >&2
  # A Megatron torch_dist checkpoint into dcp against PyTorch's own load of it.
  echo "== convert"
  "$venv/bin/python" bench/python/convert_bench.py --root "$scratch/convert" --json "$out/convert.json" ||
    echo "!! convert failed" >&2
fi
rm -rf "$scratch"

machine="$(nproc) cores $(lscpu | sed -n 's/^Model name: *//p' | head -n1), $(free -g | awk '/^Mem:/ {print $2}') GiB"
"$bin/bench_report" --out "$out/results.json" --date "$(date -u +%Y-%m-%d)" --machine "$machine" \
  --command "scripts/bench.sh" "${results[@]}"
