#!/usr/bin/env bash
# Creates (once) and prints the path of a virtual environment with what users
# run: PyPI's torch 2.x (its Linux build is a CUDA build that runs on the CPU),
# NumPy, Megatron-Core, safetensors and torchtitan (its checkpoint manager),
# pinned, for Debian's Python 3.11, plus the dcp package from build/python on
# its path. Reused by later runs (pip's cache makes a rebuilt
# one quick). Used by the demo's torchrun part and the torch 2.x tests.
#   venv=$(scripts/venv.sh)   then   "$venv/bin/python" ... / "$venv/bin/torchrun" ...
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${DCP_BUILD_DIR:-build}
venv=${DCP_VENV:-$build_dir/venv-torch2}
requirements=(torch==2.11.0 numpy==2.2.6 pytest==8.3.5 megatron-core==0.16.1 packaging==26.4 safetensors==0.7.0
              tyro==1.0.17 spmd_types==0.2.3)
# torchtitan's checkpoint manager, for the test that runs it over dcp's storage. Without its
# dependencies: they are a training stack (datasets, wandb, torchdata, ...); what the checkpoint
# manager imports is above (tyro, spmd_types).
no_deps=(torchtitan==0.3.0)
stamp="$venv/.dcp-requirements"
if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "${requirements[*]} ${no_deps[*]}" ]]; then
  if ! /usr/bin/python3 -c 'import ensurepip' 2>/dev/null; then
    sudo_cmd=()
    [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >&2 ||
      { "${sudo_cmd[@]}" apt-get update -qq >&2 &&
        "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >&2; }
  fi
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "${requirements[@]}" >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps "${no_deps[@]}" >&2
  echo "${requirements[*]} ${no_deps[*]}" > "$stamp"
fi
site=$("$venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')
(cd "$build_dir/python" && pwd) > "$site/dcp.pth"
cd "$venv" && pwd
