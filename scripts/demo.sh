#!/usr/bin/env bash
# The main job: installs missing packages and builds, then saves a synthetic
# GPT-like training state from 4 MPI ranks (TP2 x PP2), loads it into 2 ranks
# in another layout (TP1 x PP2) checking every byte, and shows what the store
# holds with dcp-inspect. Then the same from Python: 4 ranks under torchrun
# (PyPI's torch 2.x, in a virtual environment scripts/venv.sh makes once) save
# a GPT-like Megatron sharded state dict with dcp.save, 2 ranks load it
# resharded with dcp.load, every element checked.
#   DCP_DEMO_PYTHON=0 scripts/demo.sh   skips the Python part
#   DCP_DEMO_ROOT=/path/on/shared/fs scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
build_dir=${DCP_BUILD_DIR:-build}
root=${DCP_DEMO_ROOT:-$build_dir/demo-store}
model=(--hidden 512 --layers 8 --vocab 8192 --ffn 2048)
mpirun=(mpirun --allow-run-as-root --oversubscribe --bind-to none)

rm -rf "$root"
echo "== save: 4 ranks, TP2 x PP2"
"${mpirun[@]}" -np 4 "$build_dir/tools/dcp-demo" save --root "$root" --tp 2 --pp 2 --step 1000 "${model[@]}"
echo "== load: 2 ranks, TP1 x PP2"
"${mpirun[@]}" -np 2 "$build_dir/tools/dcp-demo" load --root "$root" --tp 1 --pp 2 --step 1000 "${model[@]}"
echo "== load: 2 ranks, TP2 x PP1"
"${mpirun[@]}" -np 2 "$build_dir/tools/dcp-demo" load --root "$root" --tp 2 --pp 1 --step 1000 "${model[@]}"
echo "== inspect"
"$build_dir/tools/dcp-inspect" "$root" show 1000 | sed -n 1,24p  # sed reads it all: no SIGPIPE under pipefail

if [[ "${DCP_DEMO_PYTHON:-1}" != "0" ]]; then
  venv=$(scripts/venv.sh)
  py_root=${root}-python
  rm -rf "$py_root"
  echo "== python: 4 ranks under torchrun save TP2 x PP2 through dcp.save (torch $("$venv/bin/python" -c 'import torch; print(torch.__version__)'))"
  OMP_NUM_THREADS=1 "$venv/bin/torchrun" --nproc-per-node 4 tools/dcp-demo/demo.py save --root "$py_root" --tp 2 --pp 2
  echo "== python: 2 ranks under torchrun load TP1 x PP2 through dcp.load (strict=LOG_ALL logs rng_state as"
  echo "   missing: objects do not reshard, so the request leaves it out)"
  OMP_NUM_THREADS=1 "$venv/bin/torchrun" --nproc-per-node 2 tools/dcp-demo/demo.py load --root "$py_root" --tp 1 --pp 2
  echo "== python: python3 -m dcp.inspect"
  /usr/bin/python3 -m dcp.inspect "$py_root" ls
fi
